#include "server/job_records.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>
#include <type_traits>

namespace acs::server {
namespace {

// A JSON value as T; an integer T takes only integers in its range (a float such as
// 1e95 is no integer). Throws std::invalid_argument otherwise; the readers catch it.
template <typename T>
T As(const nlohmann::json& v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (v.is_number_unsigned() && v.get<uint64_t>() <= kMax) return static_cast<T>(v.get<uint64_t>());
    if (v.is_number_integer() && !v.is_number_unsigned()) {
      const int64_t i = v.get<int64_t>();
      bool fits = false;
      if constexpr (std::is_unsigned_v<T>) {
        fits = i >= 0 && static_cast<uint64_t>(i) <= kMax;
      } else {
        fits = i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
               i <= static_cast<int64_t>(std::numeric_limits<T>::max());
      }
      if (fits) return static_cast<T>(i);
    }
    throw std::invalid_argument("'" + v.dump() + "' is not an integer in range");
  } else {
    return v.get<T>();
  }
}

// j[key] as T, `fallback` when absent.
template <typename T>
T Field(const nlohmann::json& j, const char* key, T fallback) {
  return j.contains(key) ? As<T>(j[key]) : fallback;
}

template <typename T>
std::vector<T> ListOf(const nlohmann::json& j, const char* key) {
  std::vector<T> out;
  if (j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) out.push_back(As<T>(v));
  }
  return out;
}

}  // namespace

nlohmann::json JobRequest::ToJson() const {
  return {{"model_sha256", model_sha256},
          {"input_shape", input_shape},
          {"dataset_sha256", dataset_sha256},
          {"dataset_name", dataset_name},
          {"device_class", device_class},
          {"budget_kind", budget_kind},
          {"budget_ratio", budget_ratio},
          {"agent", agent},
          {"patterns", patterns},
          {"block_sizes", block_sizes},
          {"precisions", precisions},
          {"max_sparsity", max_sparsity},
          {"skip_layers", skip_layers},
          {"episodes", episodes},
          {"seed", seed},
          {"fine_tune", fine_tune},
          {"threads", threads},
          {"top_k", top_k},
          {"preprocess", preprocess},
          {"split", split},
          {"test_dataset_sha256", test_dataset_sha256},
          {"test_dataset_name", test_dataset_name},
          {"time_limit_seconds", time_limit_seconds}};
}

StatusOr<JobRequest> JobRequest::FromJson(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("a job request is not a JSON object");
  JobRequest r;
  try {
    r.model_sha256 = j.value("model_sha256", "");
    r.input_shape = ListOf<int64_t>(j, "input_shape");
    r.dataset_sha256 = j.value("dataset_sha256", "");
    r.dataset_name = j.value("dataset_name", "");
    r.device_class = j.value("device_class", "");
    r.budget_kind = j.value("budget_kind", r.budget_kind);
    r.budget_ratio = j.value("budget_ratio", r.budget_ratio);
    r.agent = j.value("agent", r.agent);
    r.patterns = ListOf<std::string>(j, "patterns");
    r.block_sizes = ListOf<int>(j, "block_sizes");
    r.precisions = ListOf<std::string>(j, "precisions");
    r.max_sparsity = j.value("max_sparsity", 0.0);
    r.skip_layers = ListOf<std::string>(j, "skip_layers");
    r.episodes = Field(j, "episodes", r.episodes);
    if (j.contains("preprocess") && j["preprocess"].is_array()) r.preprocess = j["preprocess"];
    if (j.contains("split") && j["split"].is_object()) r.split = j["split"];
    r.test_dataset_sha256 = j.value("test_dataset_sha256", "");
    r.test_dataset_name = j.value("test_dataset_name", "");
    r.time_limit_seconds = Field(j, "time_limit_seconds", r.time_limit_seconds);
    r.seed = Field(j, "seed", r.seed);
    r.fine_tune = j.value("fine_tune", false);
    r.threads = Field(j, "threads", r.threads);
    r.top_k = Field(j, "top_k", r.top_k);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed job request: ") + e.what());
  }
  return r;
}

nlohmann::json JobProgress::ToJson() const {
  nlohmann::json j = {{"episodes_done", episodes_done},
                      {"best_reward", best_reward},
                      {"best_accuracy", best_accuracy},
                      {"dense_accuracy", dense_accuracy},
                      {"exported_accuracy", exported_accuracy},
                      {"test_accuracy", test_accuracy},
                      {"dense_test_accuracy", dense_test_accuracy},
                      {"test_samples", test_samples},
                      {"best_cost_ratio", best_cost_ratio},
                      {"best_predicted_us", best_predicted_us},
                      {"dense_predicted_us", dense_predicted_us},
                      {"best_measured_us", best_measured_us},
                      {"dense_measured_us", dense_measured_us},
                      {"stock_measured_us", stock_measured_us},
                      {"acs_file_measured_us", acs_file_measured_us},
                      {"eta_seconds", eta_seconds},
                      {"device_class", device_class},
                      {"verify_policies", verify_policies},
                      {"layers_campaign_started", layers_campaign_started},
                      {"layers_measured", layers_measured},
                      {"calibration_task", calibration_task},
                      {"calibration_repeats", calibration_repeats},
                      {"dense_calibration_us", dense_calibration_us},
                      {"runtime_calibration_us", runtime_calibration_us},
                      {"outside_layers_share", outside_layers_share},
                      {"probe_tasks", probe_tasks},
                      {"round", round},
                      {"round_campaign_started", round_campaign_started},
                      {"budget_outcome", budget_outcome},
                      {"runner_deaths", runner_deaths},
                      {"run_seconds", run_seconds},
                      {"kept_result", kept_result}};
  for (const auto* list : {&measured_policies, &earlier_policies, &probe_policies}) {
    nlohmann::json& out = j[list == &measured_policies  ? "measured_policies"
                            : list == &earlier_policies ? "earlier_policies"
                                                        : "probe_policies"];
    out = nlohmann::json::array();
    for (const auto& [policy, ratio] : *list) out.push_back({{"policy", policy}, {"ratio", ratio}});
  }
  j["earlier_policies_looked_up"] = earlier_policies_looked_up;
  j["artifacts"] = nlohmann::json::array();
  for (const ArtifactRef& a : artifacts)
    j["artifacts"].push_back({{"name", a.name}, {"sha256", a.sha256}, {"bytes", a.bytes}});
  j["verifications"] = nlohmann::json::array();
  for (const Verification& v : verifications) {
    j["verifications"].push_back({{"rank", v.rank},
                                  {"run", v.run},
                                  {"policy_hash", v.policy_hash},
                                  {"task_id", v.task_id},
                                  {"accuracy", v.accuracy},
                                  {"predicted_us", v.predicted_us},
                                  {"measured_us", v.measured_us},
                                  {"dense_measured_us", v.dense_measured_us},
                                  {"stock_us", v.stock_us},
                                  {"acs_file_us", v.acs_file_us},
                                  {"error", v.error}});
  }
  return j;
}

JobProgress JobProgress::FromJson(const std::string& text) {
  JobProgress p;
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return p;
  try {
    p.episodes_done = Field(j, "episodes_done", 0);
    p.best_reward = j.value("best_reward", 0.0);
    p.best_accuracy = j.value("best_accuracy", 0.0);
    p.dense_accuracy = j.value("dense_accuracy", 0.0);
    p.exported_accuracy = j.value("exported_accuracy", 0.0);
    p.test_accuracy = j.value("test_accuracy", 0.0);
    p.dense_test_accuracy = j.value("dense_test_accuracy", 0.0);
    p.test_samples = Field(j, "test_samples", int64_t{0});
    p.best_cost_ratio = j.value("best_cost_ratio", 0.0);
    p.best_predicted_us = j.value("best_predicted_us", 0.0);
    p.dense_predicted_us = j.value("dense_predicted_us", 0.0);
    p.best_measured_us = j.value("best_measured_us", 0.0);
    p.dense_measured_us = j.value("dense_measured_us", 0.0);
    p.stock_measured_us = j.value("stock_measured_us", 0.0);
    p.acs_file_measured_us = j.value("acs_file_measured_us", 0.0);
    p.eta_seconds = j.value("eta_seconds", 0.0);
    p.device_class = j.value("device_class", "");
    p.verify_policies = ListOf<std::string>(j, "verify_policies");
    p.layers_campaign_started = j.value("layers_campaign_started", false);
    p.layers_measured = j.value("layers_measured", false);
    p.calibration_task = j.value("calibration_task", "");
    p.calibration_repeats = ListOf<std::string>(j, "calibration_repeats");
    p.dense_calibration_us = j.value("dense_calibration_us", 0.0);
    p.runtime_calibration_us = j.value("runtime_calibration_us", 0.0);
    p.outside_layers_share = j.value("outside_layers_share", 0.0);
    p.probe_tasks = ListOf<std::string>(j, "probe_tasks");
    p.round = Field(j, "round", 0);
    p.round_campaign_started = j.value("round_campaign_started", false);
    p.budget_outcome = j.value("budget_outcome", "");
    p.runner_deaths = Field(j, "runner_deaths", 0);
    p.run_seconds = std::max(0.0, j.value("run_seconds", 0.0));
    p.kept_result = j.value("kept_result", "");
    if (j.contains("artifacts")) {
      for (const auto& a : j["artifacts"]) {
        p.artifacts.push_back({a.value("name", ""), a.value("sha256", ""), Field(a, "bytes", int64_t{0})});
      }
    }
    for (auto* list : {&p.measured_policies, &p.earlier_policies, &p.probe_policies}) {
      const char* key = list == &p.measured_policies  ? "measured_policies"
                        : list == &p.earlier_policies ? "earlier_policies"
                                                      : "probe_policies";
      if (!j.contains(key) || !j[key].is_array()) continue;
      for (const auto& m : j[key]) {
        if (m.is_object()) list->emplace_back(m.value("policy", ""), m.value("ratio", 0.0));
      }
    }
    p.earlier_policies_looked_up = j.value("earlier_policies_looked_up", false);
    if (j.contains("verifications")) {
      for (const auto& v : j["verifications"]) {
        Verification x;
        x.rank = Field(v, "rank", 0);
        x.run = Field(v, "run", 0);
        x.policy_hash = v.value("policy_hash", "");
        x.task_id = v.value("task_id", "");
        x.accuracy = v.value("accuracy", 0.0);
        x.predicted_us = v.value("predicted_us", 0.0);
        x.measured_us = v.value("measured_us", 0.0);
        x.dense_measured_us = v.value("dense_measured_us", 0.0);
        x.stock_us = v.value("stock_us", 0.0);
        x.acs_file_us = v.value("acs_file_us", 0.0);
        x.error = v.value("error", "");
        p.verifications.push_back(x);
      }
    }
  } catch (const std::exception&) {
  }
  return p;
}

void JobProgress::TakeResultOf(const JobProgress& kept) {
  artifacts = kept.artifacts;
  verifications = kept.verifications;
  verify_policies = kept.verify_policies;
  best_reward = kept.best_reward;
  best_accuracy = kept.best_accuracy;
  exported_accuracy = kept.exported_accuracy;
  test_accuracy = kept.test_accuracy;
  dense_test_accuracy = kept.dense_test_accuracy;
  test_samples = kept.test_samples;
  best_cost_ratio = kept.best_cost_ratio;
  best_predicted_us = kept.best_predicted_us;
  best_measured_us = kept.best_measured_us;
  dense_measured_us = kept.dense_measured_us;
  stock_measured_us = kept.stock_measured_us;
  acs_file_measured_us = kept.acs_file_measured_us;
}

const Verification* MedianRun(const JobProgress& progress, int rank) {
  std::vector<const Verification*> runs;
  for (const Verification& v : progress.verifications) {
    if (v.rank == rank && v.measured_us > 0 && v.dense_measured_us > 0) runs.push_back(&v);
  }
  if (runs.empty()) return nullptr;
  auto ratio = [](const Verification* v) { return v->measured_us / v->dense_measured_us; };
  std::sort(runs.begin(), runs.end(),
            [&](const Verification* a, const Verification* b) { return ratio(a) < ratio(b); });
  return runs[(runs.size() - 1) / 2];
}

bool AddRunsOfEveryRank(JobProgress& progress, int runs) {
  std::map<int, int> count;           // runs per rank
  std::map<int, Verification> first;  // each rank's first run
  for (const Verification& v : progress.verifications) {
    ++count[v.rank];
    first.emplace(v.rank, v);
  }
  bool added = false;
  for (const auto& [rank, v] : first) {
    for (int run = count[rank]; run < runs; ++run) {
      Verification more;
      more.rank = rank;
      more.run = run;
      more.policy_hash = v.policy_hash;
      more.accuracy = v.accuracy;
      more.predicted_us = v.predicted_us;
      progress.verifications.push_back(more);
      added = true;
    }
  }
  return added;
}

nlohmann::json MeasuredBudgetOutcome(const JobRequest& request, const JobProgress& progress) {
  if (request.budget_kind != "latency" || progress.verifications.empty()) return {{"met", true}};
  const Verification* exported = MedianRun(progress, 0);
  if (exported == nullptr) {  // every run of the exported policy failed: nothing shows the budget met
    return {{"kind", "latency"},
            {"budget_ratio", request.budget_ratio},
            {"met", false},
            {"unmeasured", true},
            {"message", "budget not verified: the exported policy could not be measured on the device class"}};
  }
  const double ratio = exported->measured_us / exported->dense_measured_us;
  const double allowed = request.budget_ratio * (1.0 + kMeasuredBudgetTolerance);
  int runs = 0;
  double lowest = ratio, highest = ratio;
  for (const Verification& v : progress.verifications) {
    if (v.rank != 0 || v.measured_us <= 0 || v.dense_measured_us <= 0) continue;
    ++runs;
    lowest = std::min(lowest, v.measured_us / v.dense_measured_us);
    highest = std::max(highest, v.measured_us / v.dense_measured_us);
  }
  nlohmann::json out = {{"kind", "latency"},
                        {"budget_ratio", request.budget_ratio},
                        {"allowed_ratio", allowed},
                        {"measured_ratio", ratio},
                        {"runs", runs},
                        {"ratio_min", lowest},
                        {"ratio_max", highest},
                        {"met", ratio <= allowed},
                        {"under", ratio < request.budget_ratio * (1.0 - kMeasuredBudgetTolerance)}};
  if (exported->predicted_us > 0 && progress.dense_predicted_us > 0) {
    out["predicted_ratio"] = exported->predicted_us / progress.dense_predicted_us;
  }
  if (ratio <= allowed) return out;
  // The fastest verified policy (by its median run), for the message.
  const Verification* fastest = exported;
  for (const Verification& v : progress.verifications) {
    const Verification* median = MedianRun(progress, v.rank);
    if (median != nullptr &&
        median->measured_us / median->dense_measured_us < fastest->measured_us / fastest->dense_measured_us) {
      fastest = median;
    }
  }
  char line[300];
  std::snprintf(line, sizeof line, "budget not met: measured %.2fx of dense latency", ratio);
  std::string message = line;
  if (runs > 1) {
    std::snprintf(line, sizeof line, " (median of %d runs, %.2f-%.2fx)", runs, lowest, highest);
    message += line;
  }
  std::snprintf(line, sizeof line, " at %.2f%% (budget %.2fx", 100 * exported->accuracy, request.budget_ratio);
  message += line;
  if (out.contains("predicted_ratio")) {
    std::snprintf(line, sizeof line, ", predicted %.2fx", out["predicted_ratio"].get<double>());
    message += line;
  }
  message += ")";
  if (fastest->rank != exported->rank) {
    std::snprintf(line, sizeof line, "; fastest verified policy #%d: %.2fx at %.2f%%", fastest->rank + 1,
                  fastest->measured_us / fastest->dense_measured_us, 100 * fastest->accuracy);
    message += line;
  }
  out["message"] = message;
  return out;
}

AfterVerification NextAfterVerification(const JobProgress& progress, const nlohmann::json& outcome, bool round_left) {
  const bool kept = !progress.kept_result.empty();
  if (outcome.value("unmeasured", false)) {  // another round would not measure it either
    return kept ? AfterVerification::kKeepEarlier : AfterVerification::kBudgetNotMet;
  }
  if (!outcome.value("met", true)) {
    if (kept) return AfterVerification::kKeepEarlier;
    return round_left ? AfterVerification::kSearchForBudget : AfterVerification::kBudgetNotMet;
  }
  if (kept) {
    const Verification* earlier = MedianRun(JobProgress::FromJson(progress.kept_result), 0);
    const Verification* now = MedianRun(progress, 0);
    if (earlier != nullptr && now != nullptr && earlier->accuracy > now->accuracy) {
      return AfterVerification::kKeepEarlier;
    }
    return AfterVerification::kSucceed;
  }
  return outcome.value("under", false) && round_left ? AfterVerification::kSearchForAccuracy
                                                     : AfterVerification::kSucceed;
}

}  // namespace acs::server
