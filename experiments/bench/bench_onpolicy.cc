// bench_onpolicy: the latency predictor scored on the policies the search proposes
// (issue: the latency the search optimizes is the latency the user gets). For each model:
// the dense model is measured end to end (it anchors the budget, as a job does), a search
// at a latency budget runs with the device class's newest predictor, and its top policies
// are measured in the runtime alternately with the dense baseline (frozen + optimized for
// inference) in --passes rounds over all of them, in --processes fresh processes as a job's
// workers measure them in verify_runs tasks (policy_timing.h; the anchor and the probes
// too). Per policy: predicted vs measured speedup (measured: the median over processes of
// each one's median over rounds of dense / runtime medians) and predicted
// vs measured whole-model microseconds (measured: the fastest run, the predictors' label). With
// --rounds 2 (default) the search runs again with the layers' scale refitted on the
// measured policies, as a job's later round does (after a miss, or a result well under
// the budget), and its top policies are measured the same way. The model's probe policies
// (ProbePolicies) are timed with the dense model, as a job does; each policy's "anchor"
// column is the error the anchor alone (without the probes) would have made on the same
// measurement, its "fixed" column the error with the probes but the layers priced in the
// context of their own weight bytes (the context rule not fitted); the summary counts the
// policies each context rule alone (kContextRules) would have predicted within ±10%, in
// later rounds those a refit holding the overhead (ModelCalibration::refit_overhead false)
// would have, in every round those one scale for all own kernels would have (int8_scale
// false; the file's calibration lets reprice_onpolicy price them again), and splits the
// errors by the form the runtime ran each policy's aten layers in.
//
//   bench_onpolicy [--models PATH@1x1x28x28,...] [--data DIR] [--store data/predictors.db]
//                  [--device-class local|ID] [--threads 1] [--budget 0.5] [--agent amc]
//                  [--episodes 40] [--top 5] [--passes 8] [--processes 3] [--rounds 2]
//                  [--probes 1] [--seed 1] [--json PATH]
//
// Measure the models' own layers first (`acs predictor collect --layers-of`, then `acs
// predictor train`), as a job does before its search.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/latency_cost.h"
#include "agents/search_session.h"
#include "core/flags.h"
#include "experiments/bench/bench_common.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/policy_timing.h"
#include "experiments/bench/search_anchor.h"
#include "predictors/predictor.h"

#ifndef ACS_SOURCE_DIR
#define ACS_SOURCE_DIR "."
#endif

namespace acs::bench {
namespace {

struct Args {
  std::vector<ModelArg> models;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string store = std::string(ACS_SOURCE_DIR) + "/data/predictors.db";
  std::string device_class = "local";
  int threads = 1;
  double budget = 0.5;
  std::string agent = "amc";
  int episodes = 40;
  int top = 5;
  int passes = 8;
  int processes = 3;  // fresh processes per timing, medians over them (a job's verify_runs)
  int rounds = 2;
  bool probes = true;  // measure ProbePolicies with the anchor (ModelCalibration::probes)
  uint64_t seed = 1;
  std::string json = std::string(ACS_SOURCE_DIR) + "/data/bench/onpolicy.json";
};

const char kUsage[] =
    "usage: bench_onpolicy [--models PATH@SHAPE,...] [--data DIR] [--store PATH] [--device-class ID]\n"
    "                      [--threads T] [--budget R] [--agent A] [--episodes N] [--top K]\n"
    "                      [--passes P] [--processes N] [--rounds R] [--probes 0|1] [--seed S]\n"
    "                      [--json PATH]\n"
    "  default models: data/zoo/resnet20.pt@1x1x28x28, data/zoo/tv_{resnet18,mobilenet_v2}.pt@1x3x32x32\n";

[[noreturn]] void Usage(const std::string& problem) { ExitBadUsage("bench_onpolicy", problem, kUsage); }

Args ParseArgs(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv, 1,
                          {"models", "data", "store", "device-class", "threads", "budget", "agent", "episodes",
                           "top", "passes", "processes", "rounds", "seed", "json", "probes"},
                          {"help"});
  if (!flags.ok()) Usage(flags.status().message());
  if (flags->Has("help")) {
    std::printf("%s", kUsage);
    std::exit(0);
  }
  Args a;
  const std::string zoo = std::string(ACS_SOURCE_DIR) + "/data/zoo/";
  const std::string models =
      flags->Get("models", zoo + "resnet20.pt@1x1x28x28," + zoo + "tv_resnet18.pt@1x3x32x32," + zoo +
                               "tv_mobilenet_v2.pt@1x3x32x32");
  StatusOr<std::vector<ModelArg>> parsed = ParseModelArgs(models);
  if (!parsed.ok()) Usage(parsed.status().message());
  a.models = *parsed;
  auto integer = [&](const char* name, int64_t fallback) {
    StatusOr<int64_t> v = flags->GetInt(name, fallback);
    if (!v.ok()) Usage(v.status().message());
    return *v;
  };
  StatusOr<double> budget = flags->GetDouble("budget", a.budget);
  if (!budget.ok()) Usage(budget.status().message());
  a.budget = *budget;
  a.data = flags->Get("data", a.data);
  a.store = flags->Get("store", a.store);
  a.device_class = flags->Get("device-class", a.device_class);
  a.agent = flags->Get("agent", a.agent);
  a.json = flags->Get("json", a.json);
  a.threads = static_cast<int>(integer("threads", a.threads));
  a.episodes = static_cast<int>(integer("episodes", a.episodes));
  a.top = static_cast<int>(integer("top", a.top));
  a.passes = static_cast<int>(integer("passes", a.passes));
  a.processes = static_cast<int>(integer("processes", a.processes));
  a.rounds = static_cast<int>(integer("rounds", a.rounds));
  a.probes = integer("probes", 1) != 0;
  a.seed = static_cast<uint64_t>(integer("seed", static_cast<int64_t>(a.seed)));
  if (a.threads < 1 || a.episodes < 1 || a.top < 1 || a.passes < 1 || a.processes < 1 || a.rounds < 1 ||
      !(a.budget > 0 && a.budget <= 1)) {
    Usage("need --threads, --episodes, --top, --passes, --processes, --rounds >= 1 and --budget in (0, 1]");
  }
  return a;
}

struct Row {
  std::string model;
  int round = 0;  // 0: the first search; later: after refitting on the measured policies
  int rank = 0;
  std::string policy_hash;
  Policy policy;
  double accuracy = 0;
  double predicted_us = 0, predicted_ratio = 0;
  double measured_us = 0, measured_ratio = 0;  // fastest run; median over rounds of runtime / dense
  double anchor_only_ratio = 0;  // predicted without the probes' own-kernel scale (the same policy)
  double held_overhead_ratio = 0;   // predicted by a refit that holds the overhead (later rounds)
  double one_own_scale_ratio = 0;   // predicted with one scale for all own kernels (int8_scale false)
  std::vector<double> rule_ratios;  // predicted with the probes and each of kContextRules alone
  std::vector<double> round_ratios;
  bool dense_optimized = false;  // the runtime's aten layers ran optimized for inference
  double dense_drift = 0;  // the dense model's fastest run where the policy was timed over the
                           // anchor's: the host's own drift, which absolute predictions carry

  double ratio_error() const { return predicted_ratio / measured_ratio - 1; }
  double us_error() const { return predicted_us / measured_us - 1; }
  // The same at the anchor's host speed: the measurement scaled by the anchor's dense
  // fastest run over the one where the policy was timed (the host's drift taken out).
  double us_error_at_anchor_speed() const { return predicted_us * dense_drift / measured_us - 1; }
  double anchor_only_error() const { return anchor_only_ratio / measured_ratio - 1; }
  double held_overhead_error() const { return held_overhead_ratio / measured_ratio - 1; }
  double one_own_scale_error() const { return one_own_scale_ratio / measured_ratio - 1; }
  double rule_error(size_t i) const { return rule_ratios[i] / measured_ratio - 1; }
};

// The policies of `model` timed in `passes` rounds over all of them, in `processes` fresh
// processes, as a job's workers time them.
std::vector<PolicyTiming> TimeInRounds(const Args& args, const ModelArg& model, const std::vector<Policy>& policies) {
  return bench::TimeInRounds({args.passes, args.threads, args.data, args.processes}, model, policies);
}

// One search with `o` and its top policies timed in rounds: rows (and JSON) of `round`.
// False when the search cannot start (a budget out of reach), said in *out.
bool SearchAndTime(const Args& args, const SearchSessionOptions& o, const ModelArg& model, const std::string& name,
                   int round, std::vector<Row>* rows, nlohmann::json* out) {
  StatusOr<std::unique_ptr<SearchSession>> created = SearchSession::Create(o);
  if (!created.ok()) {
    std::printf("%-12s skipped: %s\n", name.c_str(), created.status().ToString().c_str());
    *out = {{"round", round}, {"skipped", created.status().ToString()}};
    return false;
  }
  std::unique_ptr<SearchSession> session = std::move(created).value();
  if (Status run = session->Run(nullptr); !run.ok()) {
    std::fprintf(stderr, "%s search: %s\n", name.c_str(), run.ToString().c_str());
    std::exit(1);
  }
  const std::vector<int> top = session->TopK(args.top);
  // The same policies priced as without the probes (the anchor alone, and in later rounds
  // the verified refit), to compare both calibrations on one set of measurements.
  ModelCalibration anchor_only = o.measured;
  anchor_only.probes.clear();
  const LatencyBudget without_probes =
      OrDie(MakeLatencyBudget(session->graph(), *o.predictor, o.threads, o.budget_ratio, anchor_only), "budget");
  ModelCalibration overhead_held = o.measured;
  overhead_held.refit_overhead = false;
  const LatencyBudget held =
      OrDie(MakeLatencyBudget(session->graph(), *o.predictor, o.threads, o.budget_ratio, overhead_held), "budget");
  ModelCalibration one_own = o.measured;
  one_own.int8_scale = false;
  const LatencyBudget one_own_scale =
      OrDie(MakeLatencyBudget(session->graph(), *o.predictor, o.threads, o.budget_ratio, one_own), "budget");
  std::vector<LatencyBudget> by_rule;
  for (const ContextRule& rule : kContextRules) {
    ModelCalibration one_rule = o.measured;
    one_rule.context_rules = {rule};
    by_rule.push_back(
        OrDie(MakeLatencyBudget(session->graph(), *o.predictor, o.threads, o.budget_ratio, one_rule), "budget"));
  }

  std::vector<Policy> top_policies;
  std::vector<Row> model_rows;
  for (size_t r = 0; r < top.size(); ++r) {
    const EpisodeRecord& e = session->episodes()[top[r]];
    top_policies.push_back(e.policy);
    Row row;
    row.model = name;
    row.round = round;
    row.rank = static_cast<int>(r);
    row.policy_hash = e.policy.Hash();
    row.policy = e.policy;
    row.accuracy = e.score.accuracy;
    row.predicted_us = session->PredictedUs(e.policy);
    row.predicted_ratio = row.predicted_us / session->latency()->dense_us;
    row.anchor_only_ratio = without_probes.PredictUs(session->graph(), e.policy) / without_probes.dense_us;
    row.held_overhead_ratio = held.PredictUs(session->graph(), e.policy) / held.dense_us;
    row.one_own_scale_ratio = one_own_scale.PredictUs(session->graph(), e.policy) / one_own_scale.dense_us;
    for (const LatencyBudget& b : by_rule) {
      row.rule_ratios.push_back(b.PredictUs(session->graph(), e.policy) / b.dense_us);
    }
    model_rows.push_back(row);
  }
  const std::vector<PolicyTiming> timed = TimeInRounds(args, model, top_policies);
  nlohmann::json policies = nlohmann::json::array();
  for (size_t r = 0; r < model_rows.size(); ++r) {
    Row& row = model_rows[r];
    row.round_ratios = timed[r].ratios;
    row.measured_ratio = timed[r].median_ratio();
    row.measured_us = timed[r].runtime_min_us;
    row.dense_optimized = timed[r].runtime_dense_optimized;
    row.dense_drift = timed[r].dense_min_us / o.measured.dense_us;
    std::printf("%-12s %d #%d %s %6.2f%% %9.1f %9.1f %+6.1f%% %7.3f %7.3f %+6.1f%% %+6.1f%% %+6.1f%%\n", name.c_str(),
                round, row.rank + 1, row.policy_hash.c_str(), 100 * row.accuracy, row.predicted_us, row.measured_us,
                100 * row.us_error(), row.predicted_ratio, row.measured_ratio, 100 * row.ratio_error(),
                100 * row.anchor_only_error(), 100 * row.rule_error(0));
    policies.push_back({{"rank", row.rank},
                        {"policy_hash", row.policy_hash},
                        {"validation_top1", row.accuracy},
                        {"predicted_us", row.predicted_us},
                        {"measured_min_us", row.measured_us},
                        {"predicted_ratio", row.predicted_ratio},
                        {"measured_ratio", row.measured_ratio},
                        {"round_ratios", row.round_ratios},
                        {"runtime_dense_optimized", row.dense_optimized},
                        {"dense_min_us", timed[r].dense_min_us},
                        {"anchor_only_predicted_ratio", row.anchor_only_ratio},
                        {"held_overhead_predicted_ratio", row.held_overhead_ratio},
                        {"one_own_scale_predicted_ratio", row.one_own_scale_ratio},
                        {"rule_predicted_ratios", row.rule_ratios},
                        {"policy", nlohmann::json::parse(row.policy.ToJson(-1))}});
    rows->push_back(row);
  }
  *out = {{"round", round},
          {"predicted_dense_us", session->latency()->dense_us},
          {"overhead_us", session->latency()->overhead_us},
          {"overhead_before_refit_us", session->latency()->overhead_before_refit_us},
          {"layer_scale", session->latency()->layer_scale},
          {"verified_scale", session->latency()->verified_scale},
          {"verified_own_scale", session->latency()->verified_own_scale},
          {"own_kernel_factor", session->latency()->own_kernel_factor},
          {"int8_kernel_factor", session->latency()->int8_kernel_factor},
          {"verified_int8_scale", session->latency()->verified_int8_scale},
          {"probe_policies", session->latency()->probe_policies},
          {"context_rule", session->latency()->context.Describe()},
          {"policies", policies}};
  return true;
}

void BenchModel(const Args& args, std::shared_ptr<const predictors::TrainedPredictor> predictor,
                const ModelArg& model, std::vector<Row>* rows, nlohmann::json* out) {
  const std::string name = model.name();
  AnchoredModel anchored =
      AnchorModel({args.passes, args.threads, args.data, args.processes}, predictor, model, args.probes);
  const PolicyTiming& dense_timed = anchored.dense;
  SearchSessionOptions o = anchored.options;
  o.budget_ratio = args.budget;
  o.agent = args.agent;
  o.episodes = args.episodes;
  o.seed = args.seed;
  *out = {{"model", name},
          {"path", model.path},
          {"input", model.input},
          {"dense_min_us", dense_timed.dense_min_us},
          {"dense_plain_note", "dense = frozen + optimize_for_inference where it computes the same function"},
          // What the budget is fitted on, so that reprice_onpolicy can price the policies again.
          {"calibration",
           {{"dense_us", o.measured.dense_us},
            {"uncompressed_us", o.measured.uncompressed_us},
            {"outside_layers_share", o.measured.outside_layers_share}}},
          {"probes", nlohmann::json::array()},
          {"rounds", nlohmann::json::array()}};
  for (const MeasuredPolicy& probe : o.measured.probes) {
    (*out)["probes"].push_back({{"policy", nlohmann::json::parse(probe.policy.ToJson(-1))}, {"ratio", probe.ratio}});
  }
  // Each later round searches again with the layers' scale refitted on every policy
  // measured so far (a job's closed loop, ModelCalibration::verified).
  for (int round = 0; round < args.rounds; ++round) {
    const size_t before = rows->size();
    nlohmann::json round_json;
    const bool searched = SearchAndTime(args, o, model, name, round, rows, &round_json);
    (*out)["rounds"].push_back(round_json);
    if (!searched) return;
    for (size_t i = before; i < rows->size(); ++i) {
      o.measured.verified.push_back({(*rows)[i].policy, (*rows)[i].measured_ratio});
    }
  }
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  const LoadedPredictor stored = LoadPredictorOrDie("bench_onpolicy", args.store, args.device_class);
  const std::string& device_class = stored.device_class;
  std::printf("latency predictor v%lld of %s; budget latency=%.2fx, agent %s, %d episodes, top %d, %d rounds\n",
              static_cast<long long>(stored.version), device_class.c_str(), args.budget, args.agent.c_str(),
              args.episodes, args.top, args.passes);
  std::printf("%-12s %s %-19s %7s %9s %9s %7s %7s %7s %7s %7s %7s\n", "model", "r", "policy", "top1", "pred us",
              "meas us", "err", "pred x", "meas x", "err", "anchor", "fixed");
  std::vector<Row> rows;
  nlohmann::json out;
  out["models"] = nlohmann::json::array();
  for (const ModelArg& m : args.models) {
    nlohmann::json model_json;
    BenchModel(args, stored.predictor, m, &rows, &model_json);
    out["models"].push_back(model_json);
  }
  out["summary"] = nlohmann::json::array();
  std::printf("\n");
  for (int round = 0; round < args.rounds; ++round) {
    int count = 0, ratio_within = 0, us_within = 0, us_within_at_anchor = 0, anchor_within = 0, held_within = 0,
        one_own_within = 0;
    std::vector<int> rule_within(std::size(kContextRules), 0);
    // By the form the runtime ran the policy's aten layers in: [0] plain, [1] optimized.
    int form_count[2] = {0, 0}, form_within[2] = {0, 0};
    double form_error_sum[2] = {0, 0};
    std::vector<double> drifts;
    for (const Row& r : rows) {
      if (r.round != round) continue;
      ++count;
      drifts.push_back(r.dense_drift);
      ++form_count[r.dense_optimized];
      form_within[r.dense_optimized] += std::abs(r.ratio_error()) <= 0.10;
      form_error_sum[r.dense_optimized] += r.ratio_error();
      ratio_within += std::abs(r.ratio_error()) <= 0.10;
      anchor_within += std::abs(r.anchor_only_error()) <= 0.10;
      held_within += std::abs(r.held_overhead_error()) <= 0.10;
      one_own_within += std::abs(r.one_own_scale_error()) <= 0.10;
      for (size_t i = 0; i < rule_within.size(); ++i) rule_within[i] += std::abs(r.rule_error(i)) <= 0.10;
      us_within += std::abs(r.us_error()) <= 0.15;
      us_within_at_anchor += r.dense_drift > 0 && std::abs(r.us_error_at_anchor_speed()) <= 0.15;
    }
    const double n = std::max(1, count);
    std::printf(
        "round %d (%s), %d policies: speedup within ±10%% of measured %.1f%% (target >= 90%%), absolute "
        "latency within ±15%% %.1f%% (target >= 90%%); the same policies' speedup within ±10%% as the "
        "anchor alone (no probes) predicts them %.1f%%, with the context not fitted %.1f%%\n",
        round, round == 0 ? "first search" : "refitted on the policies measured before", count, 100 * ratio_within / n,
        100 * us_within / n, 100 * anchor_within / n, 100 * rule_within[0] / n);
    std::sort(drifts.begin(), drifts.end());
    const double drift_median = drifts.empty() ? 0 : drifts[drifts.size() / 2];
    if (!drifts.empty()) {
      std::printf("  the dense model's fastest run where the policies were timed: x%.2f-%.2f of the anchor's (median "
                  "x%.2f)\n",
                  drifts.front(), drifts.back(), drift_median);
      std::printf("  absolute latency within ±15%% at the anchor's host speed (each measurement x the anchor's "
                  "dense run / the dense run where it was timed): %.1f%%\n",
                  100 * us_within_at_anchor / n);
    }
    if (round > 0) {
      std::printf("  the same policies' speedup within ±10%% as a refit holding the overhead predicts them: %.1f%%\n",
                  100 * held_within / n);
    }
    std::printf(
        "  the same policies' speedup within ±10%% with one scale for all own kernels (int8 not apart): %.1f%%\n",
        100 * one_own_within / n);
    nlohmann::json by_rule = nlohmann::json::array();
    for (size_t i = 0; i < rule_within.size(); ++i) {
      const std::string rule = kContextRules[i].Describe();
      std::printf("  context rule %-70s %d of %d within ±10%%\n",
                  rule.empty() ? "(default: the policy's own weights)" : rule.c_str(), rule_within[i], count);
      by_rule.push_back({{"rule", rule}, {"ratio_within_10_percent", rule_within[i] / n}});
    }
    nlohmann::json by_form = nlohmann::json::array();
    for (int optimized : {1, 0}) {
      const int k = form_count[optimized];
      const double mean_error = k > 0 ? form_error_sum[optimized] / k : 0;
      std::printf("  aten layers %-9s %d policies, %d within ±10%%, mean speedup error %+.1f%%\n",
                  optimized ? "optimized" : "plain", k, form_within[optimized], 100 * mean_error);
      by_form.push_back({{"aten_layers", optimized ? "optimized" : "plain"},
                         {"policies", k},
                         {"ratio_within_10_percent", form_within[optimized] / std::max(1.0, static_cast<double>(k))},
                         {"mean_ratio_error", mean_error}});
    }
    out["summary"].push_back({{"round", round},
                              {"policies", count},
                              {"ratio_within_10_percent", ratio_within / n},
                              {"absolute_within_15_percent", us_within / n},
                              {"absolute_within_15_percent_at_anchor_speed", us_within_at_anchor / n},
                              {"dense_over_anchor", {{"min", drifts.empty() ? 0 : drifts.front()},
                                                     {"median", drift_median},
                                                     {"max", drifts.empty() ? 0 : drifts.back()}}},
                              {"anchor_only_ratio_within_10_percent", anchor_within / n},
                              {"held_overhead_ratio_within_10_percent", held_within / n},
                              {"one_own_scale_ratio_within_10_percent", one_own_within / n},
                              {"by_context_rule", by_rule},
                              {"by_aten_form", by_form}});
  }
  out["device_class"] = device_class;
  out["predictor_version"] = stored.version;
  out["budget"] = args.budget;
  out["agent"] = args.agent;
  out["episodes"] = args.episodes;
  out["passes"] = args.passes;
  out["processes"] = args.processes;
  out["rounds"] = args.rounds;
  out["threads"] = args.threads;
  if (!args.json.empty()) {
    if (!WriteJsonFile(args.json, out)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
