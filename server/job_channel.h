// The channel between the server and a job runner child (`acs-server run-job ID`,
// `acs-server check-job`): a socket pair, the child's descriptor 3. The child asks, the
// server answers, one message at a time: a 4-byte little-endian length, then a MessagePack
// map, {"op": NAME, "args": {...}} from the child and {"code": N, "message": TEXT,
// "value": ...} back. The child never opens the SQLite file: every read and write of the
// store a job makes (JobHost, server/job_host.h) is such a call, and the server applies it
// only after checking it against the job it started the child for (JobChannelServer):
// the job id is the server's, tasks and measurements must be this job's, new blobs come
// from files of the job's own directory, and the blobs it may read back are its own and
// its request's. A message past kMaxChildMessageBytes, one that does not parse, an
// unknown operation or one about another job is a protocol violation: the server kills
// the child and fails that job alone, with the reason.
// Sources: job_channel.cc (framing), job_channel_codec.{h,cc} (the messages' encoding),
// remote_job_host.cc (the child's side), job_channel_server.cc (the server's checks).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "predictors/store.h"
#include "server/job_host.h"
#include "server/job_records.h"
#include "server/job_run_time.h"

namespace acs::server {

// The largest message a child may send (a checkpoint of the agent and its episode rows
// fit well within it); larger ones are refused before they are read.
inline constexpr uint32_t kMaxChildMessageBytes = 64u << 20;
// The largest answer the server sends (an episode log, a predictor).
inline constexpr uint32_t kMaxServerMessageBytes = 1024u << 20;
// The descriptor a child finds its channel on.
inline constexpr int kJobChannelFd = 3;

// One frame. ReadFrame: NotFound at a clean end of the stream (the other side closed it
// between messages), ResourceExhausted for a length past max_bytes (nothing more is read),
// Aborted when a started message does not arrive within timeout_seconds (< 0:
// wait forever), Unavailable for other errors. WriteFrame: Unavailable or Aborted.
Status ReadFrame(int fd, uint32_t max_bytes, double timeout_seconds, std::string* out);
Status WriteFrame(int fd, const std::string& bytes, double timeout_seconds);

// The child's side: every call over the channel, one at a time (thread-safe). Also the
// measurement store of a child (its latest predictor, device, the job's model
// measurements; nothing else).
class RemoteJobHost : public JobHost, public predictors::MeasurementStore {
 public:
  // `fd`: the channel (kJobChannelFd); closed by the destructor. `job_dir`: where PutBlob
  // writes its bytes before sending the file's path.
  RemoteJobHost(int fd, std::string job_dir) : fd_(fd), job_dir_(std::move(job_dir)) {}
  ~RemoteJobHost() override;

  StatusOr<JobRecord> GetJob(const std::string& id) override;
  Status UpdateJob(const JobRecord& job) override;
  Status UpdateJobProgress(const std::string& id, const std::string& progress_json) override;
  StatusOr<int64_t> AddEvent(const std::string& job_id, const std::string& kind, const std::string& json) override;
  Status PutJobEpisodes(const std::string& job_id, int64_t first_seq,
                        const std::vector<std::string>& episodes_json) override;
  StatusOr<std::vector<std::string>> JobEpisodes(const std::string& job_id, int64_t limit) override;
  StatusOr<int64_t> TruncateJobEpisodes(const std::string& job_id, int64_t first_seq) override;
  StatusOr<TaskRecord> EnqueueTask(TaskRecord task) override;
  StatusOr<TaskRecord> GetTask(const std::string& id) override;
  StatusOr<std::vector<TaskRecord>> TasksOfJob(const std::string& job_id) override;
  StatusOr<int> FailOpenTasksOfJob(const std::string& job_id, const std::string& error) override;
  StatusOr<std::vector<DeviceView>> Devices() override;
  StatusOr<PredictorState> PollCampaign(const std::string& machine_id) override;
  StatusOr<PredictorState> StartCampaign(const std::string& machine_id,
                                         const MeasurementCampaignOptions& options) override;
  StatusOr<BlobWriter::Committed> PutBlobFile(const std::string& job_id, const std::string& path) override;
  StatusOr<BlobWriter::Committed> PutBlobFromFd(const std::string& job_id, int fd, int64_t limit_bytes) override;
  StatusOr<BlobWriter::Committed> PutBlob(const std::string& job_id, const std::string& bytes) override;
  StatusOr<std::string> ReadBlob(const std::string& sha256) override;

  // predictors::MeasurementStore: LatestPredictor, Device, Models and ModelsOfModel (this
  // job's model's only; another model's is a violation) and AddModel go to the server; the
  // others are PermissionDenied (ModelOfTask too: the server looks its tasks up itself).
  Status AddKernels(std::vector<predictors::KernelRecord>& records) override;
  StatusOr<std::vector<predictors::KernelRecord>> Kernels(const std::string& device_class) override;
  Status AddModel(predictors::ModelRecord& record) override;
  StatusOr<std::vector<predictors::ModelRecord>> Models(const std::string& device_class) override;
  StatusOr<std::optional<predictors::ModelRecord>> ModelOfTask(const std::string& device_class,
                                                               const std::string& task_id) override;
  StatusOr<std::vector<predictors::ModelRecord>> ModelsOfModel(const std::string& device_class,
                                                               const std::string& model_sha256) override;
  StatusOr<int64_t> AddPredictor(const predictors::PredictorRecord& record) override;
  StatusOr<std::optional<predictors::PredictorRecord>> LatestPredictor(const std::string& device_class,
                                                                       const std::string& name) override;
  Status PutDevice(const std::string& device_class, const std::string& json) override;
  StatusOr<std::optional<std::string>> Device(const std::string& device_class) override;
  StatusOr<std::vector<std::string>> DeviceClasses() override;

  // One call: the answer's value, or its error.
  StatusOr<nlohmann::json> Call(const std::string& op, nlohmann::json args);

 private:
  int fd_;
  std::string job_dir_;
  std::mutex mu_;
  int64_t blob_files_ = 0;
};

// The server's side for one child: checks and applies its calls.
class JobChannelServer {
 public:
  // job_id empty: a check-job child, which may only read the farm's devices and
  // predictors. `request`: the job's (its model, data and device class bound what it may
  // ask). `job_dir`: the only directory PutBlobFile takes files from. `campaign`: the
  // server's own campaign options (a child chooses only samples 0 or these, and specs).
  JobChannelServer(std::string job_id, JobRequest request, std::string job_dir, JobHost* host,
                   predictors::MeasurementStore* measurements, MeasurementCampaignOptions campaign);

  // The answer to one message of the child (a frame to send back), whose operation's own
  // error is inside the answer. Errors (InvalidArgument, PermissionDenied) are protocol
  // violations naming what was wrong: the child must be stopped and its job failed.
  StatusOr<std::string> Handle(const std::string& frame);
  // How many calls were applied.
  int64_t calls() const { return calls_; }
  // A job runner's: the job's time run stored again (with the progress it last wrote) when
  // it has written no progress for kRunTimePersistSeconds, e.g. while it waits on workers
  // (JobRunTime); the store's error. Called by the thread that calls Handle, between calls.
  Status PersistRunTime();
  // The largest export it stores (kMaxArtifactBytes unless set); a larger one is refused
  // with ResourceExhausted naming the file and the limit, and nothing is stored.
  void set_max_export_bytes(int64_t bytes) { max_export_bytes_ = bytes; }

 private:
  // The answer to `op`; throws Violation (job_channel_codec.h) for a call the child may
  // not make. Each ApplyX takes the operations of one kind, nullopt for the others.
  nlohmann::json Apply(const std::string& op, const nlohmann::json& args);
  std::optional<nlohmann::json> ApplyFarmRead(const std::string& op, const nlohmann::json& args);
  std::optional<nlohmann::json> ApplyJobRecord(const std::string& op, const nlohmann::json& args);
  std::optional<nlohmann::json> ApplyTask(const std::string& op, const nlohmann::json& args);
  std::optional<nlohmann::json> ApplyCampaign(const std::string& op, const nlohmann::json& args);
  std::optional<nlohmann::json> ApplyModels(const std::string& op, const nlohmann::json& args);
  std::optional<nlohmann::json> ApplyBlob(const std::string& op, const nlohmann::json& args);
  void CheckOwnJob(const std::string& id) const;
  // add_model: the record rebuilt from a finished measure-model task of this job whose
  // stored result, policy, threads and figures it matches (stored once per task); a
  // Violation when it matches none.
  nlohmann::json AddTaskMeasurement(const predictors::ModelRecord& sent);
  // The child's progress JSON with what the server owns kept: how often its runners died,
  // and how long they ran, as the server counts it: the stored time plus this runner's so
  // far (a child cannot reset them to be resumed forever or to outrun its time limit; each
  // progress write persists the time run, so a server killed mid-run loses only the time
  // since the runner's last one); its artifacts must be readable_blobs_
  // (else a Violation: downloads serve artifacts).
  std::string GuardProgress(const std::string& progress_json);

  std::string job_id_;
  JobRequest request_;
  std::string job_dir_;
  JobHost* host_;
  predictors::MeasurementStore* measurements_;
  MeasurementCampaignOptions campaign_;
  std::set<std::string> readable_blobs_;  // the request's, the job's artifacts, those the child put
  int runner_deaths_ = 0;                 // the stored count when the runner started
  JobRunTime run_time_{0, "{}"};          // from the stored time run when the runner started
  int64_t max_export_bytes_ = kMaxArtifactBytes;
  int64_t calls_ = 0;
};

}  // namespace acs::server
