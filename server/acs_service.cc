#include "server/acs_service.h"

#include "proto/grpc_status.h"
#include "server/acs_messages.h"
#include "server/farm_service.h"

namespace acs::server {
namespace {

// The service's answer as the call's reply: `fill(value, reply)` when OK.
template <typename T, typename Reply, typename Fill>
grpc::Status Answer(const StatusOr<T>& result, Reply* reply, Fill fill) {
  if (!result.ok()) return ToGrpc(result.status());
  fill(*result, reply);
  return grpc::Status::OK;
}

}  // namespace

StatusOr<Principal> AcsService::Caller(grpc::ServerContext* ctx) const {
  return auth_->Authenticate(AuthorizationOf(ctx));
}

grpc::Status AcsService::Upload(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                                acs::v1::UploadReply* reply, const std::string& what) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  acs::v1::UploadChunk chunk;
  auto next = [&](UploadPiece* piece) {
    if (!reader->Read(&chunk)) return false;
    piece->total_bytes = chunk.total_bytes();
    piece->data = std::move(*chunk.mutable_data());
    return true;
  };
  auto gone = [ctx] { return ctx->IsCancelled(); };
  return Answer(service_->Upload(*who, what, next, gone), reply,
                [](const BlobWriter::Committed& blob, acs::v1::UploadReply* out) {
                  out->set_sha256(blob.sha256);
                  out->set_bytes(blob.bytes);
                  out->set_deduplicated(blob.deduplicated);
                });
}

grpc::Status AcsService::UploadModel(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                                     acs::v1::UploadReply* reply) {
  return Upload(ctx, reader, reply, "model");
}

grpc::Status AcsService::UploadDataset(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                                       acs::v1::UploadReply* reply) {
  return Upload(ctx, reader, reply, "dataset");
}

grpc::Status AcsService::SubmitJob(grpc::ServerContext* ctx, const acs::v1::SubmitJobRequest* req,
                                   acs::v1::Job* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->Submit(*who, RequestOf(*req)), reply, FillJob);
}

grpc::Status AcsService::GetJob(grpc::ServerContext* ctx, const acs::v1::GetJobRequest* req, acs::v1::Job* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->Get(*who, req->id()), reply, FillJob);
}

grpc::Status AcsService::ListJobs(grpc::ServerContext* ctx, const acs::v1::ListJobsRequest* req,
                                  acs::v1::ListJobsReply* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  JobListQuery query;
  query.state = StoredJobState(req->state());
  query.page_size = req->page_size();
  query.page_token = req->page_token();
  return Answer(service_->List(*who, query), reply, [](const JobPage& page, acs::v1::ListJobsReply* out) {
    for (const JobRecord& j : page.jobs) FillJob(j, out->add_jobs());
    out->set_next_page_token(page.next_page_token);
  });
}

grpc::Status AcsService::WatchJob(grpc::ServerContext* ctx, const acs::v1::WatchJobRequest* req,
                                  grpc::ServerWriter<acs::v1::JobEvent>* writer) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  auto send = [writer](const JobEventView& event) {
    acs::v1::JobEvent out;
    FillEvent(event, &out);
    return writer->Write(out);
  };
  return ToGrpc(service_->Watch(*who, req->id(), req->after_seq(), send, [ctx] { return ctx->IsCancelled(); }));
}

grpc::Status AcsService::CancelJob(grpc::ServerContext* ctx, const acs::v1::CancelJobRequest* req,
                                   acs::v1::Job* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->Cancel(*who, req->id()), reply, FillJob);
}

grpc::Status AcsService::DownloadArtifact(grpc::ServerContext* ctx, const acs::v1::DownloadArtifactRequest* req,
                                          grpc::ServerWriter<acs::v1::ArtifactChunk>* writer) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  auto send = [writer](const ArtifactPiece& piece) {
    acs::v1::ArtifactChunk chunk;
    chunk.set_data(piece.data);
    if (piece.first) {
      chunk.set_total_bytes(piece.total_bytes);
      chunk.set_sha256(piece.sha256);
    }
    return writer->Write(chunk);
  };
  return ToGrpc(service_->DownloadArtifact(*who, req->job_id(), req->name(), send));
}

grpc::Status AcsService::ListDevices(grpc::ServerContext* ctx, const acs::v1::ListDevicesRequest*,
                                     acs::v1::ListDevicesReply* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->Devices(*who), reply,
                [](const std::vector<DeviceView>& devices, acs::v1::ListDevicesReply* out) {
                  for (const DeviceView& d : devices) FillDevice(d, out->add_devices());
                });
}

grpc::Status AcsService::TrainPredictor(grpc::ServerContext* ctx, const acs::v1::TrainPredictorRequest* req,
                                        acs::v1::PredictorStatus* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->TrainPredictor(*who, req->device_class(), req->samples()), reply, FillPredictorStatus);
}

grpc::Status AcsService::GetPredictorStatus(grpc::ServerContext* ctx, const acs::v1::PredictorStatusRequest* req,
                                            acs::v1::PredictorStatus* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->PredictorStatus(*who, req->device_class()), reply, FillPredictorStatus);
}

grpc::Status AcsService::EvaluatePredictor(grpc::ServerContext* ctx, const acs::v1::EvaluatePredictorRequest* req,
                                           acs::v1::PredictorEvaluation* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->EvaluatePredictor(*who, req->device_class()), reply,
                [&](const predictors::EvalReport& report, acs::v1::PredictorEvaluation* out) {
                  FillEvaluation(req->device_class(), report, out);
                });
}

grpc::Status AcsService::GetSearchSpace(grpc::ServerContext* ctx, const acs::v1::GetSearchSpaceRequest*,
                                        acs::v1::SearchSpaceChoices* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return Answer(service_->Choices(*who), reply, FillChoices);
}

}  // namespace acs::server
