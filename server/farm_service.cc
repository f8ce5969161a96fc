#include "server/farm_service.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "proto/grpc_status.h"

namespace acs::server {

namespace fv1 = acs::farm::v1;

std::string AuthorizationOf(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

StatusOr<Principal> FarmService::Check(grpc::ServerContext* ctx) const {
  ACS_ASSIGN_OR_RETURN(Principal who, auth_->Authenticate(AuthorizationOf(ctx)));
  ACS_RETURN_IF_ERROR(Authenticator::Require(who, {Role::kWorker, Role::kAdmin}, "the farm protocol"));
  return who;
}

grpc::Status FarmService::Register(grpc::ServerContext* ctx, const fv1::RegisterRequest* req,
                                   fv1::RegisterReply* reply) {
  StatusOr<Principal> who = Check(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<WorkerRecord> w = farm_->Register(
      {req->worker_name(), req->machine_id(), req->device_class_json(), req->worker_version(), who->token_id});
  if (!w.ok()) return ToGrpc(w.status());
  reply->set_worker_id(w->id);
  reply->set_heartbeat_seconds(farm_->options().heartbeat_seconds);
  return grpc::Status::OK;
}

grpc::Status FarmService::Lease(grpc::ServerContext* ctx, const fv1::LeaseRequest* req, fv1::LeaseReply* reply) {
  StatusOr<Principal> who = Check(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<std::vector<TaskRecord>> tasks = farm_->Lease(req->worker_id(), who->token_id, req->max_tasks());
  if (!tasks.ok()) return ToGrpc(tasks.status());
  for (const TaskRecord& t : *tasks) {
    fv1::Task* out = reply->add_tasks();
    out->set_id(t.id);
    out->set_kind(t.kind);
    out->set_spec_json(t.spec_json);
    out->set_lease_seconds(static_cast<int32_t>(farm_->options().lease_ms / 1000));
    out->set_attempt(t.attempts);
    if (t.kind == kTaskMeasureModel) {
      // The worker fetches the model with FetchModel.
      const nlohmann::json spec = nlohmann::json::parse(t.spec_json, nullptr, false);
      if (spec.is_object() && spec.contains("model_sha256") && spec["model_sha256"].is_string()) {
        out->set_model_sha256(spec["model_sha256"].get<std::string>());
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status FarmService::Heartbeat(grpc::ServerContext* ctx, const fv1::HeartbeatRequest* req,
                                    fv1::HeartbeatReply* reply) {
  StatusOr<Principal> who = Check(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<std::vector<std::string>> lost = farm_->Heartbeat(
      req->worker_id(), who->token_id, std::vector<std::string>(req->task_ids().begin(), req->task_ids().end()));
  if (!lost.ok()) return ToGrpc(lost.status());
  for (const std::string& id : *lost) reply->add_cancelled_task_ids(id);
  return grpc::Status::OK;
}

grpc::Status FarmService::Report(grpc::ServerContext* ctx, const fv1::ReportRequest* req, fv1::ReportReply* reply) {
  StatusOr<Principal> who = Check(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<bool> accepted =
      farm_->Report(req->worker_id(), who->token_id, req->task_id(), req->ok(), req->result_json(), req->error());
  if (!accepted.ok()) return ToGrpc(accepted.status());
  reply->set_accepted(*accepted);
  return grpc::Status::OK;
}

grpc::Status FarmService::FetchModel(grpc::ServerContext* ctx, const fv1::FetchModelRequest* req,
                                     grpc::ServerWriter<fv1::ModelChunk>* writer) {
  StatusOr<Principal> who = Check(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<std::string> sha = farm_->ModelOfLeasedTask(req->worker_id(), who->token_id, req->task_id());
  if (!sha.ok()) return ToGrpc(sha.status());
  StatusOr<std::string> path = blobs_->PathOf(*sha);
  if (!path.ok()) return ToGrpc(Status::NotFound("the model " + *sha + " of task " + req->task_id() + " is gone"));
  std::ifstream in(*path, std::ios::binary);
  std::error_code ec;
  const auto size = std::filesystem::file_size(*path, ec);
  if (!in || ec) return ToGrpc(Status::DataLoss("the model " + *sha + " cannot be read on the server"));
  std::string buffer(1 << 20, '\0');
  bool first = true;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    fv1::ModelChunk chunk;
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    if (first) {
      chunk.set_total_bytes(static_cast<int64_t>(size));
      chunk.set_sha256(*sha);
    }
    if ((in.gcount() > 0 || first) && !writer->Write(chunk)) return grpc::Status::OK;  // the worker went away
    first = false;
  }
  if (in.bad()) return ToGrpc(Status::DataLoss("the model " + *sha + " cannot be read on the server"));
  return grpc::Status::OK;
}

}  // namespace acs::server
