// The client API over gRPC (proto/acs.proto): a thin adapter over the job service
// (server/job_service.h). Each call authenticates the caller, translates the request,
// calls the service and translates its answer; statuses convert in ToGrpc alone.
#pragma once

#include <string>

#include "proto/acs.grpc.pb.h"
#include "server/auth.h"
#include "server/campaign_runs.h"
#include "server/job_service.h"

namespace acs::server {

class AcsService final : public acs::v1::Acs::Service {
 public:
  // Both must outlive the adapter.
  AcsService(JobService* service, const Authenticator* auth)
      : service_(service), auth_(auth), campaigns_(service->store(), service) {}
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
  grpc::Status GetSearchSpace(grpc::ServerContext* ctx, const acs::v1::GetSearchSpaceRequest* req,
                              acs::v1::SearchSpaceChoices* reply) override;
  // Campaign runs (server/acs_service_campaigns.cc).
  grpc::Status StartCampaignRun(grpc::ServerContext* ctx, const acs::v1::StartCampaignRunRequest* req,
                                acs::v1::CampaignRun* reply) override;
  grpc::Status GetCampaignRun(grpc::ServerContext* ctx, const acs::v1::GetCampaignRunRequest* req,
                              acs::v1::CampaignRun* reply) override;
  grpc::Status ListCampaignRuns(grpc::ServerContext* ctx, const acs::v1::ListCampaignRunsRequest* req,
                                acs::v1::ListCampaignRunsReply* reply) override;
  grpc::Status RecordCampaignCell(grpc::ServerContext* ctx, const acs::v1::RecordCampaignCellRequest* req,
                                  acs::v1::CampaignRun* reply) override;
  grpc::Status RemeasureJob(grpc::ServerContext* ctx, const acs::v1::RemeasureJobRequest* req,
                            acs::v1::RemeasureJobReply* reply) override;

 private:
  // The caller named by the call's bearer token; Unauthenticated without a valid one.
  StatusOr<Principal> Caller(grpc::ServerContext* ctx) const;
  // An upload stream into the service; `what` ("model", "dataset") names it in messages.
  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                      acs::v1::UploadReply* reply, const std::string& what);

  JobService* service_;
  const Authenticator* auth_;
  CampaignRuns campaigns_;
};

}  // namespace acs::server
