#include "server/acs_service.h"

#include "predictors/predictor.h"
#include "server/farm_service.h"
#include "proto/grpc_status.h"

namespace acs::server {
namespace {

void Fill(const PredictorState& s, acs::v1::PredictorStatus* out) {
  out->set_device_class(s.machine_id);
  out->set_version(s.version);
  out->set_kernel_measurements(s.kernel_measurements);
  out->set_heldout_within10(s.heldout_within10);
  std::string state = s.state;
  if (s.state == "collecting") {
    state += " " + std::to_string(s.tasks_done + s.tasks_failed) + "/" + std::to_string(s.tasks_total);
  }
  if (!s.error.empty()) state += ": " + s.error;
  out->set_state(state);
}

}  // namespace

StatusOr<Principal> AcsService::Caller(grpc::ServerContext* ctx, std::initializer_list<Role> allowed,
                                       const std::string& what) {
  ACS_ASSIGN_OR_RETURN(Principal who, auth_->Authenticate(AuthorizationOf(ctx)));
  ACS_RETURN_IF_ERROR(Authenticator::Require(who, allowed, what));
  return who;
}

grpc::Status AcsService::ListDevices(grpc::ServerContext* ctx, const acs::v1::ListDevicesRequest*,
                                     acs::v1::ListDevicesReply* reply) {
  if (auto who = Caller(ctx, {Role::kAdmin, Role::kUser}, "listing devices"); !who.ok()) return ToGrpc(who.status());
  StatusOr<std::vector<DeviceView>> devices = farm_->Devices();
  if (!devices.ok()) return ToGrpc(devices.status());
  for (const DeviceView& d : *devices) {
    acs::v1::Device* out = reply->add_devices();
    out->set_worker_id(d.worker.id);
    out->set_device_class(d.worker.machine_id);
    out->set_worker_version(d.worker.version);
    out->set_online(d.online);
    out->set_last_seen(std::to_string(d.worker.last_seen_ms));
  }
  return grpc::Status::OK;
}

grpc::Status AcsService::TrainPredictor(grpc::ServerContext* ctx, const acs::v1::TrainPredictorRequest* req,
                                        acs::v1::PredictorStatus* reply) {
  if (auto who = Caller(ctx, {Role::kAdmin}, "starting a measurement campaign"); !who.ok()) {
    return ToGrpc(who.status());
  }
  CampaignOptions options;
  if (req->samples() > 0) {
    options.samples = req->samples();
    options.heldout = std::max(1, req->samples() / 6);
  }
  StatusOr<PredictorState> s = campaigns_->Start(req->device_class(), options);
  if (!s.ok()) return ToGrpc(s.status());
  Fill(*s, reply);
  return grpc::Status::OK;
}

grpc::Status AcsService::GetPredictorStatus(grpc::ServerContext* ctx, const acs::v1::PredictorStatusRequest* req,
                                            acs::v1::PredictorStatus* reply) {
  if (auto who = Caller(ctx, {Role::kAdmin, Role::kUser}, "reading predictor status"); !who.ok()) {
    return ToGrpc(who.status());
  }
  if (req->device_class().empty()) return ToGrpc(Status::InvalidArgument("device_class is required"));
  StatusOr<PredictorState> s = campaigns_->Poll(req->device_class());
  if (!s.ok()) return ToGrpc(s.status());
  Fill(*s, reply);
  return grpc::Status::OK;
}

grpc::Status AcsService::EvaluatePredictor(grpc::ServerContext* ctx, const acs::v1::EvaluatePredictorRequest* req,
                                           acs::v1::PredictorEvaluation* reply) {
  if (auto who = Caller(ctx, {Role::kAdmin, Role::kUser}, "evaluating a predictor"); !who.ok()) {
    return ToGrpc(who.status());
  }
  StatusOr<std::vector<predictors::KernelRecord>> kernels = measurements_->Kernels(req->device_class());
  StatusOr<std::vector<predictors::ModelRecord>> models = measurements_->Models(req->device_class());
  if (!kernels.ok()) return ToGrpc(kernels.status());
  if (!models.ok()) return ToGrpc(models.status());
  if (kernels->empty()) {
    return ToGrpc(Status::FailedPrecondition("no kernel measurements of device class '" + req->device_class() + "'"));
  }
  StatusOr<predictors::EvalReport> report = predictors::EvaluatePredictors(*kernels, *models, {});
  if (!report.ok()) return ToGrpc(report.status());
  reply->set_device_class(req->device_class());
  for (const predictors::EvalRow& r : report->rows) {
    acs::v1::PredictorEvaluationRow* out = reply->add_rows();
    out->set_predictor(r.model);
    out->set_scope(r.scope);
    out->set_count(r.metrics.count);
    out->set_mape(r.metrics.mape);
    out->set_within5(r.metrics.within5);
    out->set_within10(r.metrics.within10);
    out->set_spearman(r.metrics.spearman);
  }
  return grpc::Status::OK;
}

}  // namespace acs::server
