#include "server/farm_service.h"

#include <nlohmann/json.hpp>

#include "proto/grpc_status.h"

namespace acs::server {

namespace fv1 = acs::farm::v1;

std::string AuthorizationOf(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

Status FarmService::Check(grpc::ServerContext* ctx) const {
  ACS_ASSIGN_OR_RETURN(Principal who, auth_->Authenticate(AuthorizationOf(ctx)));
  return Authenticator::Require(who, {Role::kWorker, Role::kAdmin}, "the farm protocol");
}

grpc::Status FarmService::Register(grpc::ServerContext* ctx, const fv1::RegisterRequest* req,
                                   fv1::RegisterReply* reply) {
  if (Status s = Check(ctx); !s.ok()) return ToGrpc(s);
  StatusOr<WorkerRecord> w =
      farm_->Register({req->worker_name(), req->machine_id(), req->device_class_json(), req->worker_version()});
  if (!w.ok()) return ToGrpc(w.status());
  reply->set_worker_id(w->id);
  reply->set_heartbeat_seconds(farm_->options().heartbeat_seconds);
  return grpc::Status::OK;
}

grpc::Status FarmService::Lease(grpc::ServerContext* ctx, const fv1::LeaseRequest* req, fv1::LeaseReply* reply) {
  if (Status s = Check(ctx); !s.ok()) return ToGrpc(s);
  StatusOr<std::vector<TaskRecord>> tasks = farm_->Lease(req->worker_id(), req->max_tasks());
  if (!tasks.ok()) return ToGrpc(tasks.status());
  for (const TaskRecord& t : *tasks) {
    fv1::Task* out = reply->add_tasks();
    out->set_id(t.id);
    out->set_kind(t.kind);
    out->set_spec_json(t.spec_json);
    out->set_lease_seconds(static_cast<int32_t>(farm_->options().lease_ms / 1000));
    out->set_attempt(t.attempts);
    if (t.kind == kTaskMeasureModel) {
      // The model travels with the task; a missing blob leaves it empty and the worker's
      // report names that.
      const nlohmann::json spec = nlohmann::json::parse(t.spec_json, nullptr, false);
      const std::string sha = spec.is_object() ? spec.value("model_sha256", "") : "";
      StatusOr<std::string> bytes = blobs_->Read(sha);
      out->set_model_sha256(sha);
      if (bytes.ok()) out->set_model(std::move(*bytes));
    }
  }
  return grpc::Status::OK;
}

grpc::Status FarmService::Heartbeat(grpc::ServerContext* ctx, const fv1::HeartbeatRequest* req,
                                    fv1::HeartbeatReply* reply) {
  if (Status s = Check(ctx); !s.ok()) return ToGrpc(s);
  StatusOr<std::vector<std::string>> lost = farm_->Heartbeat(
      req->worker_id(), std::vector<std::string>(req->task_ids().begin(), req->task_ids().end()));
  if (!lost.ok()) return ToGrpc(lost.status());
  for (const std::string& id : *lost) reply->add_cancelled_task_ids(id);
  return grpc::Status::OK;
}

grpc::Status FarmService::Report(grpc::ServerContext* ctx, const fv1::ReportRequest* req, fv1::ReportReply* reply) {
  if (Status s = Check(ctx); !s.ok()) return ToGrpc(s);
  StatusOr<bool> accepted = farm_->Report(req->worker_id(), req->task_id(), req->ok(), req->result_json(), req->error());
  if (!accepted.ok()) return ToGrpc(accepted.status());
  reply->set_accepted(*accepted);
  return grpc::Status::OK;
}

}  // namespace acs::server
