// reprice_onpolicy: a bench_onpolicy result's policies priced again from the measurements
// the file holds (the anchor, the probes, and in each later round the policies measured in
// the rounds before, as a job's closed loop has them), with this build's predictor store.
// Nothing is measured: ways of fitting the budget are compared on one sitting's
// measurements. Per round and way: how many of the policies each predicts within ±10% of
// their measured speedup, the mean and the largest error. Ways (ModelCalibration's switches):
//   built      MakeLatencyBudget as this build fits it (the file's predictions when the
//              build and the store are those of the run)
//   held       the overhead held in the refit (refit_overhead false)
//   one own    one scale for all the runtime's own kernels (int8_scale false)
// Policies the search would have proposed under another way are not known: this scores
// each way on the policies this run's search proposed.
//
//   reprice_onpolicy --from ONPOLICY.json [--store PATH] [--device-class ID] [--json PATH]
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/latency_cost.h"
#include "core/flags.h"
#include "core/importer.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/search_anchor.h"
#include "predictors/predictor.h"

namespace acs::bench {
namespace {

struct Args {
  std::string from;
  std::string store = "data/predictors.db";
  std::string device_class;  // empty: the file's
  std::string json;
};

const char kUsage[] = "usage: reprice_onpolicy --from ONPOLICY.json [--store PATH] [--device-class ID] [--json PATH]\n";

[[noreturn]] void Usage(const std::string& problem) { ExitBadUsage("reprice_onpolicy", problem, kUsage); }

Args ParseArgs(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv, 1, {"from", "store", "device-class", "json"}, {});
  if (!flags.ok()) Usage(flags.status().message());
  Args a;
  a.from = flags->Get("from", "");
  a.store = flags->Get("store", a.store);
  a.device_class = flags->Get("device-class", "");
  a.json = flags->Get("json", "");
  if (a.from.empty()) Usage("--from is required");
  return a;
}

struct Way {
  const char* name;
  int count = 0, within = 0;
  double error_sum = 0, worst = 0;
};

void Score(Way* way, double predicted, double measured) {
  const double error = predicted / measured - 1;
  ++way->count;
  way->within += std::abs(error) <= 0.10;
  way->error_sum += error;
  way->worst = std::abs(error) > std::abs(way->worst) ? error : way->worst;
}

Policy PolicyOf(const nlohmann::json& j) { return OrDie(Policy::FromJson(j.dump()), "policy in the file"); }

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  std::ifstream in(args.from);
  const nlohmann::json file = nlohmann::json::parse(in, nullptr, false);
  if (file.is_discarded() || !file.contains("models")) Usage(args.from + " is not a bench_onpolicy result");
  const std::string device_class = args.device_class.empty() ? file.value("device_class", "local") : args.device_class;
  const LoadedPredictor stored = LoadPredictorOrDie("reprice_onpolicy", args.store, device_class);
  const int threads = file.value("threads", 1);
  const double ratio = file.value("budget", 0.5);
  std::printf("predictor v%lld of %s, budget %.2fx\n", static_cast<long long>(stored.version),
              stored.device_class.c_str(), ratio);
  std::printf("%-16s %s %-19s %7s %7s %7s %7s %7s  %s\n", "model", "r", "policy", "meas x", "file", "built", "held",
              "one own", "scales built: aten, own, int8");
  std::map<int, std::array<Way, 3>> ways;  // by round
  nlohmann::json out = nlohmann::json::array();
  for (const nlohmann::json& m : file["models"]) {
    if (!m.contains("calibration")) {
      std::printf("%s: no calibration in the file (bench_onpolicy before it recorded one); skipped\n",
                  m.value("model", "?").c_str());
      continue;
    }
    const Shape input = m["input"].get<Shape>();
    const std::string name = m.value("model", "");
    const std::shared_ptr<ImportedModel> model = OrDie(ImportTorchScript(m["path"].get<std::string>(), {input}), name);
    const Graph& graph = model->graph;
    ModelCalibration measured;
    measured.dense_us = m["calibration"]["dense_us"];
    measured.uncompressed_us = m["calibration"]["uncompressed_us"];
    measured.outside_layers_share = m["calibration"]["outside_layers_share"];
    for (const nlohmann::json& p : m["probes"]) measured.probes.push_back({PolicyOf(p["policy"]), p["ratio"]});
    for (const nlohmann::json& round : m["rounds"]) {
      if (!round.contains("policies")) continue;
      const int r = round.value("round", 0);
      auto budget = [&](bool refit_overhead, bool int8_scale) {
        ModelCalibration c = measured;
        c.refit_overhead = refit_overhead;
        c.int8_scale = int8_scale;
        return OrDie(MakeLatencyBudget(graph, *stored.predictor, threads, ratio, c), name);
      };
      const LatencyBudget by_way[3] = {budget(true, true), budget(false, true), budget(true, false)};
      const LatencyBudget& built = by_way[0];
      nlohmann::json policies = nlohmann::json::array();
      for (const nlohmann::json& p : round["policies"]) {
        const Policy policy = ResolvePolicy(PolicyOf(p["policy"]), graph);
        const double meas = p["measured_ratio"];
        double x[3];
        for (int w = 0; w < 3; ++w) {
          x[w] = by_way[w].PredictUs(graph, policy) / by_way[w].dense_us;
          Score(&ways[r][w], x[w], meas);
        }
        std::printf("%-16s %d %-19s %7.3f %7.3f %+6.1f%% %+6.1f%% %+6.1f%%  %.2f %.2f %.2f\n", name.c_str(), r,
                    p.value("policy_hash", "").c_str(), meas, p.value("predicted_ratio", 0.0), 100 * (x[0] / meas - 1),
                    100 * (x[1] / meas - 1), 100 * (x[2] / meas - 1), built.layer_scale,
                    built.layer_scale * built.own_kernel_factor, built.layer_scale * built.int8_kernel_factor);
        policies.push_back({{"policy_hash", p.value("policy_hash", "")},
                            {"measured_ratio", meas},
                            {"built_ratio", x[0]},
                            {"held_ratio", x[1]},
                            {"one_own_scale_ratio", x[2]}});
      }
      out.push_back({{"model", name},
                     {"round", r},
                     {"layer_scale", built.layer_scale},
                     {"own_kernel_factor", built.own_kernel_factor},
                     {"int8_kernel_factor", built.int8_kernel_factor},
                     {"context_rule", built.context.Describe()},
                     {"policies", policies}});
      for (const nlohmann::json& p : round["policies"]) {
        measured.verified.push_back({PolicyOf(p["policy"]), p["measured_ratio"]});
      }
    }
  }
  std::printf("\n%-5s %-12s %9s %11s %9s\n", "round", "way", "±10%", "mean error", "worst");
  nlohmann::json summary = nlohmann::json::array();
  for (auto& [round, by_way] : ways) {
    by_way[0].name = "built", by_way[1].name = "held", by_way[2].name = "one own";
    for (const Way& w : by_way) {
      std::printf("%-5d %-12s %4d / %-2d %+10.1f%% %+8.1f%%\n", round, w.name, w.within, w.count,
                  100 * w.error_sum / std::max(1, w.count), 100 * w.worst);
      summary.push_back({{"round", round},
                         {"way", w.name},
                         {"within_10_percent", w.within},
                         {"policies", w.count},
                         {"mean_error", w.error_sum / std::max(1, w.count)},
                         {"worst_error", w.worst}});
    }
  }
  if (!args.json.empty() && !WriteJsonFile(args.json, {{"from", args.from}, {"rounds", out}, {"summary", summary}})) {
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
