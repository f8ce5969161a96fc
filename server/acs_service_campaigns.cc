// AcsService's campaign-run calls: translation only, the rules are CampaignRuns'.
#include "proto/grpc_status.h"
#include "server/acs_service.h"
#include "server/campaign_messages.h"

namespace acs::server {
namespace {

grpc::Status AnswerRun(const StatusOr<CampaignRunRecord>& run, acs::v1::CampaignRun* reply) {
  if (!run.ok()) return ToGrpc(run.status());
  FillCampaignRun(*run, reply);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AcsService::StartCampaignRun(grpc::ServerContext* ctx, const acs::v1::StartCampaignRunRequest* req,
                                          acs::v1::CampaignRun* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  CampaignRunRecord run;
  run.campaign = req->campaign();
  run.date = req->date();
  run.spec_hash = req->spec_hash();
  run.spec_json = req->spec_json();
  for (const std::string& key : req->cell_keys()) run.cells.push_back({key, "", "", "", ""});
  bool created = false;
  grpc::Status s = AnswerRun(campaigns_.Start(*who, std::move(run), &created), reply);
  reply->set_created_now(created);
  return s;
}

grpc::Status AcsService::GetCampaignRun(grpc::ServerContext* ctx, const acs::v1::GetCampaignRunRequest* req,
                                        acs::v1::CampaignRun* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  if (req->id().empty()) return AnswerRun(campaigns_.Find(*who, req->campaign(), req->date()), reply);
  return AnswerRun(campaigns_.Get(*who, req->id()), reply);
}

grpc::Status AcsService::ListCampaignRuns(grpc::ServerContext* ctx, const acs::v1::ListCampaignRunsRequest* req,
                                          acs::v1::ListCampaignRunsReply* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  CampaignRunQuery query;
  query.campaign = req->campaign();
  query.before_date = req->before_date();
  query.limit = req->page_size();
  StatusOr<std::vector<CampaignRunRecord>> runs = campaigns_.List(*who, query);
  if (!runs.ok()) return ToGrpc(runs.status());
  for (const CampaignRunRecord& r : *runs) FillCampaignRun(r, reply->add_runs());
  return grpc::Status::OK;
}

grpc::Status AcsService::RecordCampaignCell(grpc::ServerContext* ctx, const acs::v1::RecordCampaignCellRequest* req,
                                            acs::v1::CampaignRun* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  return AnswerRun(
      campaigns_.RecordCell(*who, req->run_id(), req->key(), req->job_id(), req->note(), req->remeasure_json()), reply);
}

grpc::Status AcsService::RemeasureJob(grpc::ServerContext* ctx, const acs::v1::RemeasureJobRequest* req,
                                      acs::v1::RemeasureJobReply* reply) {
  StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return ToGrpc(who.status());
  const std::vector<std::string> ids(req->task_ids().begin(), req->task_ids().end());
  StatusOr<JobService::RemeasureResult> r = service_->Remeasure(*who, req->id(), req->runs(), ids, req->cancel());
  if (!r.ok()) return ToGrpc(r.status());
  reply->set_device_class(r->device_class);
  reply->set_done(r->done);
  for (const JobService::RemeasureRun& run : r->runs) {
    acs::v1::Remeasurement* m = reply->add_runs();
    m->set_task_id(run.task_id);
    m->set_state(run.state);
    m->set_worker_id(run.worker_id);
    m->set_measured_us(run.measured_us);
    m->set_dense_measured_us(run.dense_measured_us);
    m->set_error(run.error);
  }
  return grpc::Status::OK;
}

}  // namespace acs::server
