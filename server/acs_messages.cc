#include "server/acs_messages.h"

#include <map>

#include "proto/request_json.h"

namespace acs::server {
namespace {

const std::map<std::string, acs::v1::JobState> kStates = {
    {kJobQueued, acs::v1::QUEUED},       {kJobPreparing, acs::v1::PREPARING},
    {kJobSearching, acs::v1::SEARCHING}, {kJobVerifying, acs::v1::VERIFYING},
    {kJobSucceeded, acs::v1::SUCCEEDED}, {kJobFailed, acs::v1::FAILED},
    {kJobCancelled, acs::v1::CANCELLED}, {kJobBudgetNotMet, acs::v1::BUDGET_NOT_MET}};

}  // namespace

acs::v1::JobState JobStateOf(const std::string& stored) {
  auto state = kStates.find(stored);
  return state == kStates.end() ? acs::v1::JOB_STATE_UNSPECIFIED : state->second;
}

std::string StoredJobState(acs::v1::JobState state) {
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
  out.time_limit_seconds = r.time_limit_seconds();
  return out;
}

namespace {

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
  out->set_time_limit_seconds(r.time_limit_seconds);
}

}  // namespace

void FillJob(const JobRecord& j, acs::v1::Job* out) {
  out->set_id(j.id);
  out->set_owner(j.owner);
  out->set_state(JobStateOf(j.state));
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

void FillEvent(const JobEventView& e, acs::v1::JobEvent* out) {
  if (e.kind == kEventState) out->set_kind(acs::v1::JobEvent::STATE);
  if (e.kind == kEventEpisode) out->set_kind(acs::v1::JobEvent::EPISODE);
  if (e.kind == kEventVerified) out->set_kind(acs::v1::JobEvent::VERIFIED);
  out->set_seq(e.seq);
  out->set_time_ms(e.time_ms);
  out->set_state(JobStateOf(e.state));
  out->set_episode(e.episode);
  out->set_reward(e.reward);
  out->set_accuracy(e.accuracy);
  out->set_cost_ratio(e.cost_ratio);
  out->set_message(e.message);
  if (e.verification) {
    const VerificationView& v = *e.verification;
    acs::v1::Verification* m = out->mutable_verification();
    m->set_rank(v.rank);
    m->set_run(v.run);
    m->set_policy_hash(v.policy_hash);
    m->set_accuracy(v.accuracy);
    m->set_predicted_latency_us(v.predicted_us);
    m->set_dense_predicted_latency_us(v.dense_predicted_us);
    m->set_measured_latency_us(v.measured_us);
    m->set_dense_measured_latency_us(v.dense_measured_us);
    m->set_stock_measured_latency_us(v.stock_us);
    m->set_acs_file_measured_latency_us(v.acs_file_us);
    m->set_measured_speedup(v.measured_speedup);
    m->set_predicted_speedup(v.predicted_speedup);
    m->set_prediction_error(v.prediction_error);
    m->set_error(v.error);
  }
  FillJob(e.job, out->mutable_job());
}

void FillChoices(const SubmitChoices& c, acs::v1::SearchSpaceChoices* out) {
  for (const std::string& a : c.agents) out->add_agents(a);
  out->set_default_agent(c.default_agent);
  for (const std::string& b : c.budget_kinds) out->add_budget_kinds(b);
  for (const std::string& p : c.patterns) out->add_patterns(p);
  for (const std::string& p : c.precisions) out->add_precisions(p);
  acs::v1::SearchSpace* d = out->mutable_defaults();
  for (Pattern p : c.defaults.patterns) d->add_patterns(PatternName(p));
  for (int b : c.defaults.block_sizes) d->add_block_sizes(b);
  for (Precision p : c.defaults.precisions) d->add_precisions(PrecisionName(p));
  d->set_max_sparsity(c.defaults.max_sparsity);
}

void FillPredictorStatus(const PredictorState& s, acs::v1::PredictorStatus* out) {
  out->set_device_class(s.machine_id);
  out->set_version(s.version);
  out->set_kernel_measurements(s.kernel_measurements);
  out->set_heldout_within10(s.heldout_within10);
  out->set_repeated_kernels(s.repeated_kernels);
  out->set_repeat_within10(s.repeat_within10);
  out->set_state(PredictorStateText(s));
}

void FillDevice(const DeviceView& d, acs::v1::Device* out) {
  out->set_worker_id(d.worker.id);
  out->set_device_class(d.worker.machine_id);
  out->set_worker_version(d.worker.version);
  out->set_online(d.online);
  out->set_last_seen(std::to_string(d.worker.last_seen_ms));
}

void FillEvaluation(const std::string& device_class, const predictors::EvalReport& report,
                    acs::v1::PredictorEvaluation* out) {
  out->set_device_class(device_class);
  for (const predictors::EvalRow& r : report.rows) {
    acs::v1::PredictorEvaluationRow* row = out->add_rows();
    row->set_predictor(r.model);
    row->set_scope(r.scope);
    row->set_count(r.metrics.count);
    row->set_mape(r.metrics.mape);
    row->set_within5(r.metrics.within5);
    row->set_within10(r.metrics.within10);
    row->set_spearman(r.metrics.spearman);
  }
  for (const predictors::EvalPoint& p : report.points) {
    acs::v1::PredictorPoint* point = out->add_points();
    point->set_kind(p.kind);
    point->set_flops(p.flops);
    point->set_measured_us(p.measured_us);
    point->set_predicted_us(p.predicted_us);
    point->set_held_out(p.held_out);
  }
  out->set_train_kernels(report.train_kernels);
  out->set_heldout_kernels(report.heldout_kernels);
}

}  // namespace acs::server
