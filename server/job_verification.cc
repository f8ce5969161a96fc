// The verifying phase of a job: the top-k policies measured end to end on workers of the
// device class (part of JobScheduler, server/jobs.h).
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "agents/latency_cost.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/runtime/runtime.h"
#include "server/jobs.h"
#include "server/worker_wait.h"

namespace acs::server {
namespace {

// "measured 263 us vs dense 515 us (1.96x speedup) on CLASS[, the median of 3 runs
// (0.49-0.53x of dense latency)][; compressed.pt in stock PyTorch 290 us (1.78x)]
// [; compressed.acs.pt with libacs_ops 270 us (1.91x)]
// [; compressed.pt scores 90.20% on the validation samples (dense 91.40%)]" of the exported
// policy's median run: the first figure is the acs runtime's.
std::string MeasuredLine(const JobProgress& progress, const nlohmann::json& outcome) {
  char line[300];
  std::snprintf(line, sizeof line, "measured %.0f us vs dense %.0f us (%.2fx speedup) on %s", progress.best_measured_us,
                progress.dense_measured_us, progress.dense_measured_us / progress.best_measured_us,
                progress.device_class.c_str());
  std::string measured = line;
  if (outcome.value("runs", 1) > 1) {
    std::snprintf(line, sizeof line, ", the median of %d runs (%.2f-%.2fx of dense latency)", outcome.value("runs", 1),
                  outcome.value("ratio_min", 0.0), outcome.value("ratio_max", 0.0));
    measured += line;
  }
  if (progress.stock_measured_us > 0) {
    std::snprintf(line, sizeof line, "; compressed.pt in stock PyTorch %.0f us (%.2fx)", progress.stock_measured_us,
                  progress.dense_measured_us / progress.stock_measured_us);
    measured += line;
  }
  if (progress.acs_file_measured_us > 0) {
    std::snprintf(line, sizeof line, "; compressed.acs.pt with libacs_ops %.0f us (%.2fx)",
                  progress.acs_file_measured_us, progress.dense_measured_us / progress.acs_file_measured_us);
    measured += line;
  }
  if (progress.exported_accuracy > 0) {
    std::snprintf(line, sizeof line, "; compressed.pt scores %.2f%% on the validation samples (dense %.2f%%)",
                  100 * progress.exported_accuracy, 100 * progress.dense_accuracy);
    measured += line;
  }
  if (progress.test_samples > 0) {
    std::snprintf(line, sizeof line, " and %.2f%% on the test set (dense %.2f%%)", 100 * progress.test_accuracy,
                  100 * progress.dense_test_accuracy);
    measured += line;
  }
  return measured;
}

}  // namespace

std::string ServerRuntimeVersion() { return runtime::RuntimeVersion(); }
std::string ServerAcsVersion() { return measure::ProjectVersion(); }

StatusOr<std::vector<std::string>> JobScheduler::EnqueueRemeasure(const JobRecord& job, int runs,
                                                                  std::string* device_class) {
  ACS_ASSIGN_OR_RETURN(JobRequest request, JobRequest::FromJson(job.request_json));
  const JobProgress progress = JobProgress::FromJson(job.progress_json);
  const Verification* exported = nullptr;
  for (const Verification& v : progress.verifications) {
    if (v.rank == 0) {
      exported = &v;
      break;
    }
  }
  if (progress.device_class.empty() || exported == nullptr || progress.verify_policies.empty()) {
    return Status::FailedPrecondition("job " + job.id + " has no verified exported policy to measure again");
  }
  *device_class = progress.device_class;
  std::vector<std::string> ids;
  for (int i = 0; i < runs; ++i) {
    ACS_ASSIGN_OR_RETURN(std::string id, EnqueueModelTask(job, request, progress.device_class,
                                                          progress.verify_policies.at(0), 0, exported->policy_hash));
    ids.push_back(id);
  }
  return ids;
}

Status JobScheduler::Verify(JobRecord& job, const JobRequest& request, JobProgress& progress) {
  if (progress.device_class.empty() || progress.verifications.empty()) return SetState(job, kJobSucceeded, "done");
  for (size_t i = 0; i < progress.verifications.size(); ++i) {
    Verification& v = progress.verifications[i];
    if (!v.task_id.empty()) continue;
    ACS_ASSIGN_OR_RETURN(v.task_id, EnqueueModelTask(job, request, progress.device_class,
                                                     progress.verify_policies.at(v.rank), v.rank, v.policy_hash));
  }
  ACS_RETURN_IF_ERROR(Save(job, progress));

  std::set<std::string> recorded;
  for (const Verification& v : progress.verifications) {
    if (v.measured_us > 0 || !v.error.empty()) recorded.insert(v.task_id);
  }
  WorkerWait workers(host_, progress.device_class, options_.no_worker_seconds);
  while (recorded.size() < progress.verifications.size()) {
    if (Interrupted(job.id)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(options_.poll_seconds * 1000)));
    if (Status online = workers.Check("verifying"); !online.ok()) {
      ACS_RETURN_IF_ERROR(host_->FailOpenTasksOfJob(job.id, online.message()).status());
    }
    ACS_ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, host_->TasksOfJob(job.id));
    bool changed = false;
    for (const TaskRecord& t : tasks) {
      if (recorded.count(t.id) || (t.state != kTaskDone && t.state != kTaskFailed)) continue;
      for (Verification& v : progress.verifications) {
        if (v.task_id != t.id) continue;
        if (t.state == kTaskDone) {
          const nlohmann::json r = nlohmann::json::parse(t.result_json, nullptr, false);
          if (r.is_object() && r.contains("runtime") && r.contains("dense")) {
            v.measured_us = r["runtime"].value("median_us", 0.0);
            v.dense_measured_us = r["dense"].value("median_us", 0.0);
            if (r.contains("stock") && r["stock"].is_object()) v.stock_us = r["stock"].value("median_us", 0.0);
            if (r.contains("acs_file") && r["acs_file"].is_object()) {
              v.acs_file_us = r["acs_file"].value("median_us", 0.0);
            }
          }
          if (v.measured_us <= 0) {
            v.error = "the worker's result has no runtime measurement";
          } else {
            ACS_RETURN_IF_ERROR(RecordModelMeasurement(request, progress, v, r));
          }
        } else {
          v.error = t.error;
        }
        recorded.insert(t.id);
        changed = true;
        ACS_RETURN_IF_ERROR(Event(job.id, kEventVerified,
                                  {{"rank", v.rank},
                                   {"run", v.run},
                                   {"policy_hash", v.policy_hash},
                                   {"accuracy", v.accuracy},
                                   {"predicted_us", v.predicted_us},
                                   {"dense_predicted_us", progress.dense_predicted_us},
                                   {"measured_us", v.measured_us},
                                   {"dense_measured_us", v.dense_measured_us},
                                   {"stock_us", v.stock_us},
                                   {"acs_file_us", v.acs_file_us},
                                   {"error", v.error}}));
      }
    }
    if (changed) ACS_RETURN_IF_ERROR(Save(job, progress));
  }

  std::string first_error;
  bool any_measured = false;
  for (const Verification& v : progress.verifications) {
    any_measured |= v.dense_measured_us > 0 && v.measured_us > 0;
    if (!v.error.empty() && first_error.empty()) first_error = v.error;
  }
  if (!any_measured) {
    return Status::Unavailable("no policy could be measured on " + progress.device_class + ": " + first_error);
  }
  // The exported policy against the dense model timed alternately with it in its own
  // task: the run with the median ratio.
  const Verification* median = MedianRun(progress, 0);
  const Verification& exported = median != nullptr ? *median : progress.verifications[0];
  progress.best_measured_us = exported.measured_us;
  progress.dense_measured_us = exported.dense_measured_us;
  progress.stock_measured_us = exported.stock_us;
  progress.acs_file_measured_us = exported.acs_file_us;

  // The report gets the measurements.
  for (ArtifactRef& a : progress.artifacts) {
    if (a.name != "report.json") continue;
    ACS_ASSIGN_OR_RETURN(std::string text, host_->ReadBlob(a.sha256));
    nlohmann::json report = nlohmann::json::parse(text, nullptr, false);
    if (!report.is_object()) break;
    report["verification"] = progress.ToJson()["verifications"];
    report["verification_device_class"] = progress.device_class;
    report["budget_outcome"] = MeasuredBudgetOutcome(request, progress);
    ACS_ASSIGN_OR_RETURN(BlobWriter::Committed blob, host_->PutBlob(job.id, report.dump(2) + "\n"));
    a.sha256 = blob.sha256;
    a.bytes = blob.bytes;
  }
  ACS_RETURN_IF_ERROR(Save(job, progress));
  const nlohmann::json outcome = MeasuredBudgetOutcome(request, progress);
  const bool measured = exported.measured_us > 0 && exported.dense_measured_us > 0;
  const bool round_left = progress.round < options_.budget_rounds && !job.checkpoint.empty();
  const AfterVerification next = NextAfterVerification(progress, outcome, round_left);
  if ((next == AfterVerification::kSearchForAccuracy || next == AfterVerification::kSearchForBudget) &&
      AddRunsOfEveryRank(progress, options_.verify_runs)) {
    // The next round refits on every rank's median: the other ranks get their runs too.
    ACS_RETURN_IF_ERROR(Save(job, progress));
    return Verify(job, request, progress);
  }
  switch (next) {
    case AfterVerification::kSucceed:
      progress.kept_result.clear();
      ACS_RETURN_IF_ERROR(Save(job, progress));
      return SetState(
          job, kJobSucceeded,
          measured ? MeasuredLine(progress, outcome) : "the exported policy could not be measured: " + exported.error);
    case AfterVerification::kKeepEarlier: {
      char line[300];
      std::snprintf(line, sizeof line, "round %d's result, measured %.2fx of dense latency at %.2f%%, %s",
                    progress.round + 1, outcome.value("measured_ratio", 0.0), 100 * exported.accuracy,
                    outcome.value("met", true) ? "is less accurate" : "does not meet the budget");
      const std::string why =
          measured ? line : "round " + std::to_string(progress.round + 1) + "'s result could not be measured";
      ACS_RETURN_IF_ERROR(RestoreKeptResult(job, progress));
      return SetState(
          job, kJobSucceeded,
          why + "; the earlier result stands: " + MeasuredLine(progress, MeasuredBudgetOutcome(request, progress)));
    }
    case AfterVerification::kSearchForAccuracy:
      return StartAccuracyRound(job, progress, outcome);
    case AfterVerification::kSearchForBudget:
      return StartNextRound(job, request, progress, outcome);
    case AfterVerification::kBudgetNotMet:
      break;
  }
  job.error = outcome.value("message", "");
  if (progress.round > 0) job.error += " after " + std::to_string(progress.round + 1) + " search rounds";
  return SetState(job, kJobBudgetNotMet,
                  job.error + "; " +
                      (measured                 ? MeasuredLine(progress, outcome)
                       : exported.error.empty() ? std::string("no run of it was measured")
                                                : exported.error));
}

Status JobScheduler::RecordModelMeasurement(const JobRequest& request, const JobProgress& progress,
                                            const Verification& v, const nlohmann::json& result) {
  if (!measurements_) return Status::Ok();
  ACS_ASSIGN_OR_RETURN(std::string path, blobs_->PathOf(request.model_sha256));
  ACS_ASSIGN_OR_RETURN(std::shared_ptr<ImportedModel> model, ImportTorchScript(path, {request.input_shape}));
  ACS_ASSIGN_OR_RETURN(Policy policy, Policy::FromJson(progress.verify_policies.at(v.rank)));
  predictors::ModelRecord r;
  r.device_class = progress.device_class;
  r.model = "model-" + request.model_sha256.substr(0, 12);
  r.policy_hash = v.policy_hash;
  r.policy_json = policy.ToJson(-1);
  r.shape = ModelShapeOf(model->graph, policy, request.threads);
  r.median_us = v.measured_us;
  r.iqr_us = result["runtime"].value("iqr_us", 0.0);
  r.min_us = result["runtime"].value("min_us", 0.0);
  nlohmann::json record = result;
  record["job"] = {{"model_sha256", request.model_sha256}, {"input_shape", request.input_shape}};
  r.record_json = record.dump();
  return measurements_->AddModel(r);
}

StatusOr<std::vector<std::pair<std::string, double>>> EarlierMeasuredPolicies(
    predictors::MeasurementStore& measurements, const JobRequest& request, const std::string& device_class) {
  std::vector<std::pair<std::string, double>> out;
  ACS_ASSIGN_OR_RETURN(std::vector<predictors::ModelRecord> records,
                       measurements.ModelsOfModel(device_class, request.model_sha256));
  std::map<std::string, std::vector<double>> ratios;          // by policy hash
  std::vector<std::pair<std::string, std::string>> policies;  // (hash, JSON), most recent first
  for (auto r = records.rbegin(); r != records.rend(); ++r) {
    if (r->shape.threads != request.threads) continue;
    const nlohmann::json j = nlohmann::json::parse(r->record_json, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("job") || !j["job"].is_object() || !j.contains("dense") ||
        !j["dense"].is_object()) {
      continue;  // not a job's verification (or recorded before jobs said whose)
    }
    // Of this model (the lookup's); of this input shape.
    if (j["job"].value("input_shape", nlohmann::json()) != nlohmann::json(request.input_shape)) continue;
    const double dense_us = j["dense"].value("median_us", 0.0);
    if (!(r->median_us > 0) || !(dense_us > 0)) continue;
    std::vector<double>& runs = ratios[r->policy_hash];
    if (runs.empty()) {
      if (policies.size() == kEarlierPoliciesMax) continue;
      policies.emplace_back(r->policy_hash, r->policy_json);
    }
    runs.push_back(r->median_us / dense_us);
  }
  for (auto p = policies.rbegin(); p != policies.rend(); ++p) {
    std::vector<double>& runs = ratios[p->first];
    std::nth_element(runs.begin(), runs.begin() + runs.size() / 2, runs.end());
    out.emplace_back(p->second, runs[runs.size() / 2]);
  }
  return out;
}

}  // namespace acs::server
