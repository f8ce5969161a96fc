#include "server/acs_service.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "predictors/predictor.h"
#include "proto/grpc_status.h"
#include "proto/request_json.h"
#include "server/farm_service.h"

namespace acs::server {
namespace {

void Fill(const PredictorState& s, acs::v1::PredictorStatus* out) {
  out->set_device_class(s.machine_id);
  out->set_version(s.version);
  out->set_kernel_measurements(s.kernel_measurements);
  out->set_heldout_within10(s.heldout_within10);
  out->set_repeated_kernels(s.repeated_kernels);
  out->set_repeat_within10(s.repeat_within10);
  std::string state = s.state;
  if (s.state == "collecting") {
    state += " " + std::to_string(s.tasks_done + s.tasks_failed) + "/" + std::to_string(s.tasks_total);
  }
  if (!s.error.empty()) state += ": " + s.error;
  out->set_state(state);
}

const std::map<std::string, acs::v1::JobState> kStates = {
    {kJobQueued, acs::v1::QUEUED},       {kJobPreparing, acs::v1::PREPARING},
    {kJobSearching, acs::v1::SEARCHING}, {kJobVerifying, acs::v1::VERIFYING},
    {kJobSucceeded, acs::v1::SUCCEEDED}, {kJobFailed, acs::v1::FAILED},
    {kJobCancelled, acs::v1::CANCELLED}, {kJobBudgetNotMet, acs::v1::BUDGET_NOT_MET}};

std::string StateName(acs::v1::JobState state) {
  for (const auto& [name, value] : kStates) {
    if (value == state) return name;
  }
  return "";
}

JobRequest RequestOf(const acs::v1::SubmitJobRequest& r) {
  JobRequest out;
  out.model_sha256 = r.model_sha256();
  out.input_shape.assign(r.input_shape().begin(), r.input_shape().end());
  out.dataset_sha256 = r.dataset_sha256();
  out.dataset_name = r.dataset_name();
  out.device_class = r.device_class();
  if (r.has_budget()) {
    out.budget_kind = r.budget().kind();
    out.budget_ratio = r.budget().ratio();
  }
  if (!r.agent().empty()) out.agent = r.agent();
  out.patterns.assign(r.space().patterns().begin(), r.space().patterns().end());
  out.block_sizes.assign(r.space().block_sizes().begin(), r.space().block_sizes().end());
  out.precisions.assign(r.space().precisions().begin(), r.space().precisions().end());
  out.max_sparsity = r.space().max_sparsity();
  out.skip_layers.assign(r.space().skip_layers().begin(), r.space().skip_layers().end());
  if (r.episodes() != 0) out.episodes = r.episodes();
  out.seed = r.seed();
  out.fine_tune = r.fine_tune();
  if (r.threads() != 0) out.threads = r.threads();
  if (r.top_k() != 0) out.top_k = r.top_k();
  out.preprocess = PreprocessStepsJson(r.preprocess());
  out.split = DataSplitJson(r.split());
  out.test_dataset_sha256 = r.test_dataset_sha256();
  out.test_dataset_name = r.test_dataset_name();
  return out;
}

void FillRequest(const JobRequest& r, acs::v1::SubmitJobRequest* out) {
  out->set_model_sha256(r.model_sha256);
  for (int64_t d : r.input_shape) out->add_input_shape(d);
  out->set_dataset_sha256(r.dataset_sha256);
  out->set_dataset_name(r.dataset_name);
  out->set_device_class(r.device_class);
  out->mutable_budget()->set_kind(r.budget_kind);
  out->mutable_budget()->set_ratio(r.budget_ratio);
  out->set_agent(r.agent);
  for (const std::string& p : r.patterns) out->mutable_space()->add_patterns(p);
  for (int b : r.block_sizes) out->mutable_space()->add_block_sizes(b);
  for (const std::string& p : r.precisions) out->mutable_space()->add_precisions(p);
  out->mutable_space()->set_max_sparsity(r.max_sparsity);
  for (const std::string& l : r.skip_layers) out->mutable_space()->add_skip_layers(l);
  out->set_episodes(r.episodes);
  out->set_seed(r.seed);
  out->set_fine_tune(r.fine_tune);
  out->set_threads(r.threads);
  out->set_top_k(r.top_k);
  AddPreprocessSteps(r.preprocess, out->mutable_preprocess());
  SetDataSplit(r.split, out->mutable_split());
  out->set_test_dataset_sha256(r.test_dataset_sha256);
  out->set_test_dataset_name(r.test_dataset_name);
}

void FillJob(const JobRecord& j, acs::v1::Job* out) {
  out->set_id(j.id);
  out->set_owner(j.owner);
  auto state = kStates.find(j.state);
  out->set_state(state == kStates.end() ? acs::v1::JOB_STATE_UNSPECIFIED : state->second);
  if (StatusOr<JobRequest> r = JobRequest::FromJson(j.request_json); r.ok()) FillRequest(*r, out->mutable_request());
  const JobProgress p = JobProgress::FromJson(j.progress_json);
  out->set_episodes_done(p.episodes_done);
  out->set_best_reward(p.best_reward);
  out->set_best_accuracy(p.best_accuracy);
  out->set_dense_accuracy(p.dense_accuracy);
  out->set_exported_accuracy(p.exported_accuracy);
  out->set_test_accuracy(p.test_accuracy);
  out->set_dense_test_accuracy(p.dense_test_accuracy);
  out->set_test_samples(p.test_samples);
  out->set_best_predicted_latency_us(p.best_predicted_us);
  out->set_dense_predicted_latency_us(p.dense_predicted_us);
  out->set_best_measured_latency_us(p.best_measured_us);
  out->set_dense_measured_latency_us(p.dense_measured_us);
  out->set_stock_measured_latency_us(p.stock_measured_us);
  out->set_acs_file_measured_latency_us(p.acs_file_measured_us);
  out->set_error(j.error);
  out->set_created(j.created);
  out->set_updated(j.updated);
  out->set_eta_seconds(IsTerminalJobState(j.state) ? 0.0 : p.eta_seconds);
  for (const ArtifactRef& a : p.artifacts) {
    acs::v1::Artifact* art = out->add_artifacts();
    art->set_name(a.name);
    art->set_sha256(a.sha256);
    art->set_bytes(a.bytes);
  }
}

void FillEvent(const JobEventRecord& e, acs::v1::JobEvent* out) {
  const nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
  if (e.kind == kEventState) out->set_kind(acs::v1::JobEvent::STATE);
  if (e.kind == kEventEpisode) out->set_kind(acs::v1::JobEvent::EPISODE);
  if (e.kind == kEventVerified) out->set_kind(acs::v1::JobEvent::VERIFIED);
  if (!j.is_object()) return;
  if (auto state = kStates.find(j.value("state", "")); e.kind == kEventState && state != kStates.end()) {
    out->set_state(state->second);
  }
  out->set_episode(j.value("episode", 0));
  out->set_reward(j.value("reward", 0.0));
  out->set_accuracy(j.value("accuracy", 0.0));
  out->set_cost_ratio(j.value("cost_ratio", 0.0));
  std::string message = j.value("message", "");
  if (e.kind == kEventVerified) {
    char line[240];
    const std::string which = "policy #" + std::to_string(j.value("rank", 0) + 1) +
                              (j.value("run", 0) > 0 ? " (run " + std::to_string(j.value("run", 0) + 1) + ")" : "");
    if (j.value("error", "").empty()) {
      std::snprintf(line, sizeof line, "%s %s: measured %.0f us (dense %.0f us), predicted %.0f us", which.c_str(),
                    j.value("policy_hash", "").c_str(), j.value("measured_us", 0.0), j.value("dense_measured_us", 0.0),
                    j.value("predicted_us", 0.0));
      message = line;
      if (j.value("stock_us", 0.0) > 0) {
        std::snprintf(line, sizeof line, "; compressed.pt in stock PyTorch %.0f us", j.value("stock_us", 0.0));
        message += line;
      }
      if (j.value("acs_file_us", 0.0) > 0) {
        std::snprintf(line, sizeof line, "; compressed.acs.pt %.0f us", j.value("acs_file_us", 0.0));
        message += line;
      }
    } else {
      message = which + " could not be measured: " + j.value("error", "");
    }
  }
  out->set_message(message);
}

}  // namespace

StatusOr<Principal> AcsService::Caller(grpc::ServerContext* ctx, std::initializer_list<Role> allowed,
                                       const std::string& what) {
  ACS_ASSIGN_OR_RETURN(Principal who, p_.auth->Authenticate(AuthorizationOf(ctx)));
  ACS_RETURN_IF_ERROR(Authenticator::Require(who, allowed, what));
  return who;
}

grpc::Status AcsService::Upload(grpc::ServerContext* ctx, grpc::ServerReader<acs::v1::UploadChunk>* reader,
                                acs::v1::UploadReply* reply, const std::string& what) {
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "uploading a " + what);
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<BlobWriter::Committed> blob = Receive(ctx, reader, who->name);
  if (!blob.ok()) return ToGrpc(blob.status());
  reply->set_sha256(blob->sha256);
  reply->set_bytes(blob->bytes);
  reply->set_deduplicated(blob->deduplicated);
  return grpc::Status::OK;
}

StatusOr<BlobWriter::Committed> AcsService::Receive(grpc::ServerContext* ctx,
                                                    grpc::ServerReader<acs::v1::UploadChunk>* reader,
                                                    const std::string& owner) {
  // The quota bounds what this upload may bring (a blob the owner has already counts again
  // here, and is not counted twice once stored).
  ACS_ASSIGN_OR_RETURN(int64_t used, p_.store->UploadedBytes(owner));
  const int64_t left =
      p_.max_user_upload_bytes > 0 ? std::max<int64_t>(0, p_.max_user_upload_bytes - used) : p_.max_upload_bytes;
  auto over_quota = [&](int64_t bytes) {
    return Status::ResourceExhausted(owner + " has uploaded " + std::to_string(used) + " bytes of a quota of " +
                                     std::to_string(p_.max_user_upload_bytes) + "; this upload of " +
                                     std::to_string(bytes) + " bytes would pass it (ask an admin to raise " +
                                     "--max-user-upload-mb)");
  };
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, p_.blobs->NewWriter(std::min(p_.max_upload_bytes, left)));
  acs::v1::UploadChunk chunk;
  bool first = true;
  int64_t announced = 0, received = 0;
  while (reader->Read(&chunk)) {
    if (first) {
      announced = chunk.total_bytes();
      if (announced > p_.max_upload_bytes) {
        return Status::ResourceExhausted("upload of " + std::to_string(announced) + " bytes exceeds the limit of " +
                                         std::to_string(p_.max_upload_bytes) + " bytes");
      }
      if (announced > left) return over_quota(announced);
    }
    if (received + static_cast<int64_t>(chunk.data().size()) > left && left < p_.max_upload_bytes) {
      return over_quota(received + static_cast<int64_t>(chunk.data().size()));
    }
    first = false;
    ACS_RETURN_IF_ERROR(writer->Append(chunk.data()));
    received += static_cast<int64_t>(chunk.data().size());
  }
  if (ctx->IsCancelled()) return Status::Cancelled("the upload was interrupted; nothing was stored");
  if (first) return Status::InvalidArgument("an upload needs at least one chunk");
  if (announced > 0 && received != announced) {
    return Status::InvalidArgument("the upload announced " + std::to_string(announced) + " bytes and sent " +
                                   std::to_string(received) + "; nothing was stored");
  }
  ACS_ASSIGN_OR_RETURN(BlobWriter::Committed committed, writer->Commit());
  ACS_RETURN_IF_ERROR(p_.store->RecordUpload(owner, committed.sha256, committed.bytes));
  return committed;
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
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "submitting a job");
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<JobRecord> job = p_.jobs->Submit(who->name, RequestOf(*req));
  if (!job.ok()) return ToGrpc(job.status());
  FillJob(*job, reply);
  return grpc::Status::OK;
}

StatusOr<JobRecord> AcsService::VisibleJob(const Principal& who, const std::string& id) {
  if (id.empty()) return Status::InvalidArgument("a job id is required");
  StatusOr<JobRecord> job = p_.store->GetJob(id);
  if (job.ok() && who.role != Role::kAdmin && job->owner != who.name) return Status::NotFound("no job '" + id + "'");
  return job;
}

grpc::Status AcsService::GetJob(grpc::ServerContext* ctx, const acs::v1::GetJobRequest* req, acs::v1::Job* reply) {
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "reading a job");
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<JobRecord> job = VisibleJob(*who, req->id());
  if (!job.ok()) return ToGrpc(job.status());
  FillJob(*job, reply);
  return grpc::Status::OK;
}

grpc::Status AcsService::ListJobs(grpc::ServerContext* ctx, const acs::v1::ListJobsRequest* req,
                                  acs::v1::ListJobsReply* reply) {
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "listing jobs");
  if (!who.ok()) return ToGrpc(who.status());
  JobFilter filter;
  if (who->role != Role::kAdmin) filter.owner = who->name;
  filter.state = StateName(req->state());
  filter.page_size = req->page_size();
  filter.page_token = req->page_token();
  std::string next;
  StatusOr<std::vector<JobRecord>> jobs = p_.store->ListJobs(filter, &next);
  if (!jobs.ok()) return ToGrpc(jobs.status());
  for (const JobRecord& j : *jobs) FillJob(j, reply->add_jobs());
  reply->set_next_page_token(next);
  return grpc::Status::OK;
}

class AcsService::WatchSlot {
 public:
  WatchSlot(AcsService* service, const std::string& user) : service_(service), user_(user) {
    std::lock_guard<std::mutex> lock(service_->watch_mu_);
    held_ = service_->watchers_[user_] < service_->p_.max_watchers_per_user;
    if (held_) ++service_->watchers_[user_];
  }
  ~WatchSlot() {
    if (!held_) return;
    std::lock_guard<std::mutex> lock(service_->watch_mu_);
    if (--service_->watchers_[user_] == 0) service_->watchers_.erase(user_);
  }
  Status status() const {
    if (held_) return Status::Ok();
    return Status::ResourceExhausted(user_ + " is watching " + std::to_string(service_->p_.max_watchers_per_user) +
                                     " jobs already, this server's limit per user");
  }

 private:
  AcsService* service_;
  std::string user_;
  bool held_ = false;
};

grpc::Status AcsService::WatchJob(grpc::ServerContext* ctx, const acs::v1::WatchJobRequest* req,
                                  grpc::ServerWriter<acs::v1::JobEvent>* writer) {
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "watching a job");
  if (!who.ok()) return ToGrpc(who.status());
  WatchSlot slot(this, who->name);
  if (!slot.status().ok()) return ToGrpc(slot.status());
  StatusOr<JobRecord> job = VisibleJob(*who, req->id());
  if (!job.ok()) return ToGrpc(job.status());
  int64_t seq = 0;
  bool ended = false;  // the event of a terminal state was sent
  while (!ctx->IsCancelled() && !ended) {
    StatusOr<std::vector<JobEventRecord>> events = p_.store->EventsAfter(req->id(), seq);
    if (!events.ok()) return ToGrpc(events.status());
    job = p_.store->GetJob(req->id());
    if (!job.ok()) return ToGrpc(job.status());
    for (const JobEventRecord& e : *events) {
      acs::v1::JobEvent out;
      FillEvent(e, &out);
      FillJob(*job, out.mutable_job());
      if (!writer->Write(out)) return grpc::Status::OK;  // the client went away
      seq = e.seq;
      const nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
      if (e.kind == kEventState && j.is_object() && IsTerminalJobState(j.value("state", ""))) ended = true;
    }
    if (events->empty()) p_.jobs->WaitForEvents(1.0);
  }
  return grpc::Status::OK;
}

grpc::Status AcsService::CancelJob(grpc::ServerContext* ctx, const acs::v1::CancelJobRequest* req,
                                   acs::v1::Job* reply) {
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "cancelling a job");
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<JobRecord> job = VisibleJob(*who, req->id());
  if (!job.ok()) return ToGrpc(job.status());
  job = p_.jobs->Cancel(req->id());
  if (!job.ok()) return ToGrpc(job.status());
  FillJob(*job, reply);
  return grpc::Status::OK;
}

grpc::Status AcsService::DownloadArtifact(grpc::ServerContext* ctx, const acs::v1::DownloadArtifactRequest* req,
                                          grpc::ServerWriter<acs::v1::ArtifactChunk>* writer) {
  StatusOr<Principal> who = Caller(ctx, {Role::kAdmin, Role::kUser}, "downloading an artifact");
  if (!who.ok()) return ToGrpc(who.status());
  StatusOr<JobRecord> job = VisibleJob(*who, req->job_id());
  if (!job.ok()) return ToGrpc(job.status());
  const JobProgress progress = JobProgress::FromJson(job->progress_json);
  std::string names;
  for (const ArtifactRef& a : progress.artifacts) {
    names += (names.empty() ? "" : ", ") + a.name;
    if (a.name != req->name()) continue;
    StatusOr<std::string> path = p_.blobs->PathOf(a.sha256);
    if (!path.ok()) return ToGrpc(path.status());
    // A blob damaged on the server's disk is refused, never sent as the artifact.
    if (Status verified = p_.blobs->Verify(a.sha256); !verified.ok()) {
      return ToGrpc(Status::DataLoss("artifact " + a.name + " of job " + job->id +
                                     " is damaged on the server: " + verified.message()));
    }
    std::ifstream in(*path, std::ios::binary);
    if (!in) return ToGrpc(Status::DataLoss("artifact " + a.name + " of job " + job->id + " cannot be opened"));
    std::string buffer(1 << 20, '\0');
    bool first = true;
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      acs::v1::ArtifactChunk chunk;
      chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
      if (first) {
        chunk.set_total_bytes(a.bytes);
        chunk.set_sha256(a.sha256);
      }
      if ((in.gcount() > 0 || first) && !writer->Write(chunk)) return grpc::Status::OK;
      first = false;
    }
    if (in.bad()) return ToGrpc(Status::DataLoss("artifact " + a.name + " of job " + job->id + " cannot be read"));
    return grpc::Status::OK;
  }
  return ToGrpc(Status::NotFound(
      "job " + req->job_id() + " has no artifact '" + req->name() + "'" +
      (names.empty() ? std::string(" (it has none yet: state ") + job->state + ")" : " (it has " + names + ")")));
}

grpc::Status AcsService::ListDevices(grpc::ServerContext* ctx, const acs::v1::ListDevicesRequest*,
                                     acs::v1::ListDevicesReply* reply) {
  if (auto who = Caller(ctx, {Role::kAdmin, Role::kUser}, "listing devices"); !who.ok()) return ToGrpc(who.status());
  StatusOr<std::vector<DeviceView>> devices = p_.farm->Devices();
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
  StatusOr<PredictorState> s = p_.campaigns->Start(req->device_class(), options);
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
  StatusOr<PredictorState> s = p_.campaigns->Poll(req->device_class());
  if (!s.ok()) return ToGrpc(s.status());
  Fill(*s, reply);
  return grpc::Status::OK;
}

grpc::Status AcsService::EvaluatePredictor(grpc::ServerContext* ctx, const acs::v1::EvaluatePredictorRequest* req,
                                           acs::v1::PredictorEvaluation* reply) {
  if (auto who = Caller(ctx, {Role::kAdmin, Role::kUser}, "evaluating a predictor"); !who.ok()) {
    return ToGrpc(who.status());
  }
  StatusOr<std::vector<predictors::KernelRecord>> kernels = p_.measurements->Kernels(req->device_class());
  StatusOr<std::vector<predictors::ModelRecord>> models = p_.measurements->Models(req->device_class());
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
