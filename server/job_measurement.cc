// What a latency job measures on its device class besides its result (part of
// JobScheduler, server/jobs.h): before the search (the preparing phase), a predictor
// campaign when the class has none, the model's own layers (a campaign that retrains the
// class's predictor) and the dense model end to end (which anchors the budget); after a verification that missed the
// budget, the verified policies' layers, before the search continues (the closed loop).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include "agents/latency_cost.h"
#include "agents/search_session.h"
#include "core/importer.h"
#include "devices/measure/harness.h"
#include "server/jobs.h"
#include "server/worker_wait.h"

namespace acs::server {
namespace {

// Profiled runs of the uncompressed model in the calibration task (its share of time
// outside the layers is the budget's per-model overhead).
constexpr int kCalibrationProfileRuns = 20;

// The fastest run of `part` ("dense": the baseline, "runtime") in a measure-model result
// (its median when the result has no minimum); 0 when absent.
double FastestUs(const nlohmann::json& result, const char* part) {
  if (!result.is_object() || !result.contains(part) || !result[part].is_object()) return 0;
  const double min_us = result[part].value("min_us", 0.0);
  return min_us > 0 ? min_us : result[part].value("median_us", 0.0);
}

// The runtime's median over the dense baseline's, timed alternately in one task; 0 without
// both.
double MedianRatio(const nlohmann::json& result) {
  auto median = [&](const char* part) {
    return result.is_object() && result.contains(part) && result[part].is_object()
               ? result[part].value("median_us", 0.0)
               : 0.0;
  };
  const double runtime_median = median("runtime"), dense_median = median("dense");
  return runtime_median > 0 && dense_median > 0 ? runtime_median / dense_median : 0.0;
}

}  // namespace

StatusOr<std::string> JobScheduler::EnqueueModelTask(const JobRecord& job, const JobRequest& request,
                                                     const std::string& device_class, const std::string& policy_json,
                                                     int rank, const std::string& policy_hash, int profile_runs) {
  TaskRecord t;
  t.job_id = job.id;
  t.kind = kTaskMeasureModel;
  t.machine_id = device_class;
  t.spec_json = nlohmann::json{{"policy", nlohmann::json::parse(policy_json)},
                               {"input_shape", request.input_shape},
                               {"threads", request.threads},
                               {"model_sha256", request.model_sha256},
                               {"rank", rank},
                               {"policy_hash", policy_hash},
                               {"profile_runs", profile_runs}}
                    .dump();
  ACS_ASSIGN_OR_RETURN(TaskRecord stored, host_->EnqueueTask(t));
  return stored.id;
}

Status JobScheduler::Prepare(JobRecord& job, const JobRequest& request, JobProgress& progress) {
  if (request.budget_kind != "latency") return SetState(job, kJobSearching, "searching");
  const std::string& device_class = progress.device_class;
  std::string last, last_state;
  auto last_event = std::chrono::steady_clock::now();
  WorkerWait workers(host_, device_class, options_.no_worker_seconds);
  while (!Interrupted(job.id)) {
    if (Status online = workers.Check("preparing (measuring for the latency predictor)"); !online.ok()) {
      ACS_RETURN_IF_ERROR(host_->FailOpenTasksOfJob(job.id, online.message()).status());
      return online;
    }
    ACS_ASSIGN_OR_RETURN(PredictorState state, host_->PollCampaign(device_class));
    if (state.version > 0) {
      ACS_ASSIGN_OR_RETURN(bool ready, MeasureModelOnClass(job, request, progress, state));
      if (ready) {
        return SetState(job, kJobSearching,
                        "searching with latency predictor v" + std::to_string(state.version) + " of " + device_class);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(options_.poll_seconds * 1000)));
      continue;
    }
    if (state.state == "failed") {
      return Status::FailedPrecondition("the measurement campaign for device class '" + device_class +
                                        "' failed: " + state.error);
    }
    if (state.state == "none") {
      StatusOr<PredictorState> started = host_->StartCampaign(device_class, options_.measurement_campaign);
      if (!started.ok() && started.status().code() != StatusCode::kFailedPrecondition) return started.status();
    }
    const std::string message =
        state.state == "none" ? "starting a measurement campaign on " + device_class + " for its latency predictor"
        : state.state == "collecting"
            ? "measuring kernels on " + device_class +
                  " for its latency predictor: " + std::to_string(state.tasks_done + state.tasks_failed) + "/" +
                  std::to_string(state.tasks_total)
            : "training the latency predictor of " + device_class;
    // Campaign progress at most every 5 s, and on every change of its state.
    const auto now = std::chrono::steady_clock::now();
    if (job.state != kJobPreparing) {
      ACS_RETURN_IF_ERROR(SetState(job, kJobPreparing, message));
      last_event = now;
    } else if (message != last && state.state != "none" &&
               (state.state != last_state || now - last_event >= std::chrono::seconds(5))) {
      ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobPreparing}, {"message", message}}));
      last_event = now;
    }
    last = message;
    last_state = state.state;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(options_.poll_seconds * 1000)));
  }
  return Status::Ok();
}

StatusOr<bool> JobScheduler::MeasureModelOnClass(JobRecord& job, const JobRequest& request, JobProgress& progress,
                                                 const PredictorState& predictor) {
  if (!options_.measure_model_layers || progress.layers_measured) return true;
  const std::string& device_class = progress.device_class;
  std::shared_ptr<ImportedModel> model;
  auto import = [&]() -> Status {
    if (model) return Status::Ok();
    ACS_ASSIGN_OR_RETURN(std::string path, blobs_->PathOf(request.model_sha256));
    ACS_ASSIGN_OR_RETURN(model, ImportTorchScript(path, {request.input_shape}));
    return Status::Ok();
  };
  ACS_ASSIGN_OR_RETURN(SearchSpace space, SearchSpaceOf(request));
  if (progress.calibration_task.empty()) {
    // The dense model, and the probes that give the layers on the runtime's own kernels
    // their scale (ModelCalibration::probes).
    ACS_RETURN_IF_ERROR(import());
    const Policy dense;
    // Each measured verify_runs times, in separate tasks, as a verified policy is: one
    // process's ratios drift by several percent from the next one's, and these anchor
    // every prediction of the model.
    ACS_ASSIGN_OR_RETURN(progress.calibration_task, EnqueueModelTask(job, request, device_class, dense.ToJson(-1), -1,
                                                                     dense.Hash(), kCalibrationProfileRuns));
    for (int run = 1; run < options_.verify_runs; ++run) {
      ACS_ASSIGN_OR_RETURN(std::string id,
                           EnqueueModelTask(job, request, device_class, dense.ToJson(-1), -1, dense.Hash(), 0));
      progress.calibration_repeats.push_back(id);
    }
    const std::vector<Policy> probes = ProbePolicies(model->graph, space);
    for (int run = 0; run < options_.verify_runs; ++run) {
      for (const Policy& probe : probes) {
        ACS_ASSIGN_OR_RETURN(std::string id,
                             EnqueueModelTask(job, request, device_class, probe.ToJson(-1), -1, probe.Hash(), 0));
        progress.probe_tasks.push_back(id);
      }
    }
    ACS_RETURN_IF_ERROR(Save(job, progress));
  }
  if (!progress.layers_campaign_started) {
    if (predictor.state == "collecting" || predictor.state == "training") return false;  // another campaign first
    ACS_RETURN_IF_ERROR(import());
    MeasurementCampaignOptions campaign;
    campaign.samples = 0;
    campaign.heldout = 0;
    campaign.specs = LayerSpecsOf(model->graph, GridPolicies(model->graph, space), request.threads);
    campaign.specs_source = "job";
    StatusOr<PredictorState> started = host_->StartCampaign(device_class, campaign);
    if (!started.ok() && started.status().code() == StatusCode::kFailedPrecondition) return false;  // busy
    ACS_RETURN_IF_ERROR(started.status());
    progress.layers_campaign_started = true;
    ACS_RETURN_IF_ERROR(Save(job, progress));
    ACS_RETURN_IF_ERROR(SetState(job, kJobPreparing,
                                 "measuring this model on " + device_class + ": its dense latency end to end and " +
                                     std::to_string(campaign.specs.size()) +
                                     " kernels of its layers under the search space, for the predictor"));
    return false;
  }
  if (predictor.state == "collecting" || predictor.state == "training") return false;
  if (predictor.state == "failed") {
    return Status::FailedPrecondition("measuring the model's layers on '" + device_class +
                                      "' failed: " + predictor.error);
  }
  // Every task ended (done or failed), or not ready yet.
  auto ended = [&](const std::vector<std::string>& ids) -> StatusOr<std::optional<std::vector<TaskRecord>>> {
    std::vector<TaskRecord> tasks;
    for (const std::string& id : ids) {
      ACS_ASSIGN_OR_RETURN(TaskRecord t, host_->GetTask(id));
      if (t.state != kTaskDone && t.state != kTaskFailed) return std::optional<std::vector<TaskRecord>>();
      tasks.push_back(std::move(t));
    }
    return std::optional<std::vector<TaskRecord>>(std::move(tasks));
  };
  std::vector<std::string> dense_ids = {progress.calibration_task};
  dense_ids.insert(dense_ids.end(), progress.calibration_repeats.begin(), progress.calibration_repeats.end());
  ACS_ASSIGN_OR_RETURN(std::optional<std::vector<TaskRecord>> dense_tasks, ended(dense_ids));
  ACS_ASSIGN_OR_RETURN(std::optional<std::vector<TaskRecord>> probes, ended(progress.probe_tasks));
  if (!dense_tasks || !probes) return false;
  const TaskRecord& task = dense_tasks->front();
  // The dense model: the medians over its tasks of the fastest run and of the ratio. The
  // uncompressed runtime in the dense baseline's units is their product (steadier than the
  // runtime's own fastest run, which drifted 3-19% from the dense one's on this host).
  std::string baseline = "dense";
  std::vector<double> fastest_us, runtime_ratios;
  for (const TaskRecord& t : *dense_tasks) {
    if (t.state != kTaskDone) continue;
    const nlohmann::json result = nlohmann::json::parse(t.result_json, nullptr, false);
    const double fastest = FastestUs(result, "dense"), ratio = MedianRatio(result);
    if (fastest > 0) fastest_us.push_back(fastest);
    if (ratio > 0) runtime_ratios.push_back(ratio);
    if (!result.is_object()) continue;
    if (result.contains("outside_layers_share") && result["outside_layers_share"].is_number()) {
      progress.outside_layers_share = std::clamp(result["outside_layers_share"].get<double>(), 0.0, 1.0);
    }
    if (&t == &task) baseline = result.value("dense_baseline", baseline);
  }
  progress.dense_calibration_us = fastest_us.empty() ? 0 : measure::Summarize(fastest_us).median_us;
  progress.runtime_calibration_us =
      runtime_ratios.empty() ? 0 : progress.dense_calibration_us * measure::Summarize(runtime_ratios).median_us;
  // Each probe's median ratio over its tasks; a task that failed, or ran without a dense
  // model to compare with, is left out.
  progress.probe_policies.clear();
  std::vector<std::vector<double>> probe_runs;
  for (const TaskRecord& probe : *probes) {
    const nlohmann::json spec = nlohmann::json::parse(probe.spec_json, nullptr, false);
    const double ratio =
        probe.state == kTaskDone ? MedianRatio(nlohmann::json::parse(probe.result_json, nullptr, false)) : 0.0;
    if (!(ratio > 0) || progress.dense_calibration_us <= 0 || !spec.is_object() || !spec.contains("policy")) continue;
    const std::string policy = spec["policy"].dump();
    auto same = std::find_if(progress.probe_policies.begin(), progress.probe_policies.end(),
                             [&](const auto& p) { return p.first == policy; });
    if (same == progress.probe_policies.end()) {
      progress.probe_policies.emplace_back(policy, 0);
      probe_runs.emplace_back();
      same = progress.probe_policies.end() - 1;
    }
    probe_runs[same - progress.probe_policies.begin()].push_back(ratio);
  }
  std::string probe_ratios;
  for (size_t i = 0; i < progress.probe_policies.size(); ++i) {
    progress.probe_policies[i].second = measure::Summarize(probe_runs[i]).median_us;
    char part[64];
    std::snprintf(part, sizeof part, "%s%.2fx", probe_ratios.empty() ? "" : ", ", progress.probe_policies[i].second);
    probe_ratios += part;
  }
  char line[400];
  if (progress.dense_calibration_us > 0) {
    std::snprintf(line, sizeof line,
                  "measured on %s: the dense model %.1f us (fastest run, %s; median of %zu tasks), uncompressed in "
                  "the runtime %.1f us (at their median ratio), %.1f%% of a run outside its layers, its layers in "
                  "predictor v%lld",
                  device_class.c_str(), progress.dense_calibration_us, baseline.c_str(), fastest_us.size(),
                  progress.runtime_calibration_us, 100 * progress.outside_layers_share,
                  static_cast<long long>(predictor.version));
  } else {
    std::snprintf(line, sizeof line,
                  "the dense model could not be measured on %s (%s): the budget rests on predictions alone",
                  device_class.c_str(), task.error.empty() ? "no measurement in the result" : task.error.c_str());
  }
  std::string message = line;
  if (!probe_ratios.empty()) {
    message += "; " + std::to_string(progress.probe_policies.size()) +
               " probe policies measured at " + probe_ratios + " of the dense latency";
  }
  progress.layers_measured = true;
  ACS_RETURN_IF_ERROR(Save(job, progress));
  ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobPreparing}, {"message", message}}));
  return true;
}

StatusOr<PredictorState> JobScheduler::WaitForMeasurementCampaign(const std::string& job_id,
                                                                  const std::string& device_class) {
  WorkerWait workers(host_, device_class, options_.no_worker_seconds);
  while (true) {
    ACS_RETURN_IF_ERROR(workers.Check("measuring kernels for the latency predictor"));
    ACS_ASSIGN_OR_RETURN(PredictorState state, host_->PollCampaign(device_class));
    if (state.state == "failed") {
      return Status::FailedPrecondition("measuring kernels on '" + device_class + "' failed: " + state.error);
    }
    if ((state.state != "collecting" && state.state != "training") || Interrupted(job_id)) return state;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(options_.poll_seconds * 1000)));
  }
}

Status JobScheduler::StartNextRound(JobRecord& job, const JobRequest& request, JobProgress& progress,
                                    const nlohmann::json& outcome) {
  const std::string& device_class = progress.device_class;
  if (!progress.round_campaign_started) {
    ACS_ASSIGN_OR_RETURN(std::string path, blobs_->PathOf(request.model_sha256));
    ACS_ASSIGN_OR_RETURN(std::shared_ptr<ImportedModel> model, ImportTorchScript(path, {request.input_shape}));
    std::vector<Policy> verified;
    for (const std::string& text : progress.verify_policies) {
      ACS_ASSIGN_OR_RETURN(Policy p, Policy::FromJson(text));
      verified.push_back(std::move(p));
    }
    MeasurementCampaignOptions campaign;
    campaign.samples = 0;
    campaign.heldout = 0;
    campaign.specs = LayerSpecsOf(model->graph, verified, request.threads);
    campaign.specs_source = "verified";
    // Another campaign of the class may be running: wait for it, then start this one.
    while (true) {
      ACS_ASSIGN_OR_RETURN(PredictorState before, WaitForMeasurementCampaign(job.id, device_class));
      (void)before;
      if (Interrupted(job.id)) return Status::Ok();
      StatusOr<PredictorState> started = host_->StartCampaign(device_class, campaign);
      if (started.ok()) break;
      if (started.status().code() != StatusCode::kFailedPrecondition) return started.status();
    }
    progress.round_campaign_started = true;
    ACS_RETURN_IF_ERROR(Save(job, progress));
    ACS_RETURN_IF_ERROR(Event(job.id, kEventState,
                              {{"state", kJobVerifying},
                               {"message", outcome.value("message", std::string()) + "; measuring the " +
                                               std::to_string(campaign.specs.size()) +
                                               " kernels of the verified policies' layers to retrain the predictor"}}));
  }
  ACS_ASSIGN_OR_RETURN(PredictorState trained, WaitForMeasurementCampaign(job.id, device_class));
  if (Interrupted(job.id)) return Status::Ok();
  progress.round_campaign_started = false;
  progress.budget_outcome = outcome.value("message", std::string());
  return NextRound(job, progress, "searching again with latency predictor v" + std::to_string(trained.version));
}

Status JobScheduler::StartAccuracyRound(JobRecord& job, JobProgress& progress, const nlohmann::json& outcome) {
  JobProgress kept = progress;
  kept.kept_result.clear();
  progress.kept_result = kept.ToJson().dump();
  char line[300];
  std::snprintf(line, sizeof line,
                "measured %.2fx of dense latency at %.2f%%, well under the budget of %.2fx: keeping this result "
                "and searching on for accuracy",
                outcome.value("measured_ratio", 0.0), 100 * progress.best_accuracy, outcome.value("budget_ratio", 0.0));
  return NextRound(job, progress, line);
}

Status JobScheduler::NextRound(JobRecord& job, JobProgress& progress, const std::string& message) {
  for (size_t rank = 0; rank < progress.verify_policies.size(); ++rank) {
    const Verification* median = MedianRun(progress, static_cast<int>(rank));
    if (median == nullptr) continue;
    progress.measured_policies.emplace_back(progress.verify_policies[rank],
                                            median->measured_us / median->dense_measured_us);
  }
  progress.round += 1;
  progress.verifications.clear();
  progress.verify_policies.clear();  // the last measured latencies stay until the next verification
  ACS_RETURN_IF_ERROR(Save(job, progress));
  return SetState(job, kJobSearching,
                  message + ", the layers' predictions refitted on " +
                      std::to_string(progress.measured_policies.size()) + " measured policies (round " +
                      std::to_string(progress.round + 1) + " of at most " + std::to_string(options_.budget_rounds + 1) +
                      ")");
}

}  // namespace acs::server
