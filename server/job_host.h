// What a running job reads and changes outside its own directory (server/jobs.h): its job
// record, events, episode log and measurement tasks, the device farm's workers, the
// predictor measurement campaigns and new blobs. In the serving process (and with
// --in-process) LocalJobHost applies each call to the store directly; a job runner child
// has no access to the SQLite file and sends each call to the server over its channel
// (RemoteJobHost, server/job_channel.h), where JobChannelServer checks it against the job
// the server started the child for before applying it with a LocalJobHost.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/blob_store.h"
#include "server/farm.h"
#include "server/measurement_campaign.h"
#include "server/server_store.h"

namespace acs::server {

// What a job's export (a compressed model, its runtime file) may be at most.
inline constexpr int64_t kMaxArtifactBytes = int64_t{4} << 30;

class JobHost {
 public:
  virtual ~JobHost() = default;
  // As ServerStore's methods of the same names.
  virtual StatusOr<JobRecord> GetJob(const std::string& id) = 0;
  virtual Status UpdateJob(const JobRecord& job) = 0;
  virtual Status UpdateJobProgress(const std::string& id, const std::string& progress_json) = 0;
  virtual StatusOr<int64_t> AddEvent(const std::string& job_id, const std::string& kind, const std::string& json) = 0;
  virtual Status PutJobEpisodes(const std::string& job_id, int64_t first_seq,
                                const std::vector<std::string>& episodes_json) = 0;
  virtual StatusOr<std::vector<std::string>> JobEpisodes(const std::string& job_id, int64_t limit) = 0;
  virtual StatusOr<int64_t> TruncateJobEpisodes(const std::string& job_id, int64_t first_seq) = 0;
  virtual StatusOr<TaskRecord> EnqueueTask(TaskRecord task) = 0;
  virtual StatusOr<TaskRecord> GetTask(const std::string& id) = 0;
  virtual StatusOr<std::vector<TaskRecord>> TasksOfJob(const std::string& job_id) = 0;
  virtual StatusOr<int> FailOpenTasksOfJob(const std::string& job_id, const std::string& error) = 0;
  // Farm::Devices.
  virtual StatusOr<std::vector<DeviceView>> Devices() = 0;
  // MeasurementCampaigns::Poll and Start.
  virtual StatusOr<PredictorState> PollCampaign(const std::string& machine_id) = 0;
  virtual StatusOr<PredictorState> StartCampaign(const std::string& machine_id,
                                                 const MeasurementCampaignOptions& options) = 0;
  // The Put* calls store a blob for job `job_id`: once committed it counts for the job's
  // owner's storage quota (ServerStore::RecordJobBlob), listed by the job's progress or not.
  // PutBlobFile: a file of the job's own directory (an export) into the blob store.
  virtual StatusOr<BlobWriter::Committed> PutBlobFile(const std::string& job_id, const std::string& path) = 0;
  // The bytes of an open file streamed into the blob store (BlobStore::PutFromFd): how the
  // server stores a runner's export; a runner's own host refuses it (FailedPrecondition).
  virtual StatusOr<BlobWriter::Committed> PutBlobFromFd(const std::string& job_id, int fd, int64_t limit_bytes) = 0;
  virtual StatusOr<BlobWriter::Committed> PutBlob(const std::string& job_id, const std::string& bytes) = 0;
  virtual StatusOr<std::string> ReadBlob(const std::string& sha256) = 0;
};

// The calls applied to the stores of this process. Everything passed must outlive it.
class LocalJobHost : public JobHost {
 public:
  LocalJobHost(ServerStore* store, BlobStore* blobs, Farm* farm, MeasurementCampaigns* campaigns)
      : store_(store), blobs_(blobs), farm_(farm), campaigns_(campaigns) {}

  StatusOr<JobRecord> GetJob(const std::string& id) override { return store_->GetJob(id); }
  Status UpdateJob(const JobRecord& job) override { return store_->UpdateJob(job); }
  Status UpdateJobProgress(const std::string& id, const std::string& progress_json) override {
    return store_->UpdateJobProgress(id, progress_json);
  }
  StatusOr<int64_t> AddEvent(const std::string& job_id, const std::string& kind, const std::string& json) override {
    return store_->AddEvent(job_id, kind, json);
  }
  Status PutJobEpisodes(const std::string& job_id, int64_t first_seq,
                        const std::vector<std::string>& episodes_json) override {
    return store_->PutJobEpisodes(job_id, first_seq, episodes_json);
  }
  StatusOr<std::vector<std::string>> JobEpisodes(const std::string& job_id, int64_t limit) override {
    return store_->JobEpisodes(job_id, limit);
  }
  StatusOr<int64_t> TruncateJobEpisodes(const std::string& job_id, int64_t first_seq) override {
    return store_->TruncateJobEpisodes(job_id, first_seq);
  }
  StatusOr<TaskRecord> EnqueueTask(TaskRecord task) override { return store_->EnqueueTask(std::move(task)); }
  StatusOr<TaskRecord> GetTask(const std::string& id) override { return store_->GetTask(id); }
  StatusOr<std::vector<TaskRecord>> TasksOfJob(const std::string& job_id) override {
    return store_->TasksOfJob(job_id);
  }
  StatusOr<int> FailOpenTasksOfJob(const std::string& job_id, const std::string& error) override {
    return store_->FailOpenTasksOfJob(job_id, error);
  }
  StatusOr<std::vector<DeviceView>> Devices() override { return farm_->Devices(); }
  StatusOr<PredictorState> PollCampaign(const std::string& machine_id) override { return campaigns_->Poll(machine_id); }
  StatusOr<PredictorState> StartCampaign(const std::string& machine_id,
                                         const MeasurementCampaignOptions& options) override {
    return campaigns_->Start(machine_id, options);
  }
  StatusOr<BlobWriter::Committed> PutBlobFile(const std::string& job_id, const std::string& path) override;
  StatusOr<BlobWriter::Committed> PutBlobFromFd(const std::string& job_id, int fd, int64_t limit_bytes) override {
    return Recorded(job_id, blobs_->PutFromFd(fd, limit_bytes));
  }
  StatusOr<BlobWriter::Committed> PutBlob(const std::string& job_id, const std::string& bytes) override {
    return Recorded(job_id, blobs_->Put(bytes));
  }
  StatusOr<std::string> ReadBlob(const std::string& sha256) override { return blobs_->Read(sha256); }

 private:
  // The put's blob recorded for the job's owner; the put's error, or the record's. No
  // exception for predictor campaigns' jobs (kCampaignOwner): no runner runs them, so they
  // store no blob here, and one rule is simpler than a skip nothing would take.
  StatusOr<BlobWriter::Committed> Recorded(const std::string& job_id, StatusOr<BlobWriter::Committed> put);

  ServerStore* store_;
  BlobStore* blobs_;
  Farm* farm_;
  MeasurementCampaigns* campaigns_;
};

}  // namespace acs::server
