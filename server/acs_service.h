// The client API over gRPC (proto/acs.proto): a thin adapter over the server core (blob
// store, job scheduler, farm, campaigns). Users see and change their own jobs, admins all.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "proto/acs.grpc.pb.h"
#include "server/auth.h"
#include "server/campaign.h"
#include "server/blob_store.h"
#include "server/farm.h"
#include "server/jobs.h"

namespace acs::server {

// Everything the service adapts; all must outlive it.
struct AcsServiceParts {
  ServerStore* store = nullptr;
  BlobStore* blobs = nullptr;
  JobScheduler* jobs = nullptr;
  Farm* farm = nullptr;
  Campaigns* campaigns = nullptr;
  predictors::MeasurementStore* measurements = nullptr;
  const Authenticator* auth = nullptr;
  int64_t max_upload_bytes = int64_t{1} << 30;  // larger uploads: RESOURCE_EXHAUSTED
  int64_t max_user_upload_bytes = int64_t{20} << 30;  // all of a user's uploads; past it:
                                                       // RESOURCE_EXHAUSTED (0: no quota)
  int max_watchers_per_user = 16;               // concurrent WatchJob streams; more: RESOURCE_EXHAUSTED
};

class AcsService final : public acs::v1::Acs::Service {
 public:
  explicit AcsService(AcsServiceParts parts) : p_(parts) {}
  grpc::Status UploadModel(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                           acs::v1::UploadReply* reply) override;
  grpc::Status UploadDataset(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                             acs::v1::UploadReply* reply) override;
  grpc::Status SubmitJob(grpc::ServerContext* ctx, const acs::v1::SubmitJobRequest* req, acs::v1::Job* reply) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const acs::v1::GetJobRequest* req, acs::v1::Job* reply) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const acs::v1::ListJobsRequest* req,
                        acs::v1::ListJobsReply* reply) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const acs::v1::WatchJobRequest* req,
                        grpc::ServerWriter<acs::v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const acs::v1::CancelJobRequest* req, acs::v1::Job* reply) override;
  grpc::Status DownloadArtifact(grpc::ServerContext* ctx, const acs::v1::DownloadArtifactRequest* req,
                                grpc::ServerWriter<acs::v1::ArtifactChunk>* writer) override;
  grpc::Status ListDevices(grpc::ServerContext* ctx, const acs::v1::ListDevicesRequest* req,
                           acs::v1::ListDevicesReply* reply) override;
  grpc::Status TrainPredictor(grpc::ServerContext* ctx, const acs::v1::TrainPredictorRequest* req,
                              acs::v1::PredictorStatus* reply) override;
  grpc::Status GetPredictorStatus(grpc::ServerContext* ctx, const acs::v1::PredictorStatusRequest* req,
                                  acs::v1::PredictorStatus* reply) override;
  grpc::Status EvaluatePredictor(grpc::ServerContext* ctx, const acs::v1::EvaluatePredictorRequest* req,
                                 acs::v1::PredictorEvaluation* reply) override;

 private:
  StatusOr<Principal> Caller(grpc::ServerContext* ctx, std::initializer_list<Role> allowed, const std::string& what);
  // One upload stream into the blob store, for a caller who may upload; `what` names it.
  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                      acs::v1::UploadReply* reply, const std::string& what);
  // An upload's chunks into the blob store; nothing is stored unless every announced byte
  // arrived and the client finished the stream.
  // An upload of `owner`, within the size limit and the owner's quota, stored and recorded.
  StatusOr<BlobWriter::Committed> Receive(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                                          const std::string& owner);
  // The job if the caller may see it: NotFound for an unknown id and for another user's job.
  StatusOr<JobRecord> VisibleJob(const Principal& who, const std::string& id);
  // Counts a watch of `who` while it lasts; ResourceExhausted naming the limit past it.
  class WatchSlot;
  AcsServiceParts p_;
  std::mutex watch_mu_;
  std::map<std::string, int> watchers_;  // per user
};

}  // namespace acs::server
