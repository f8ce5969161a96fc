// bench_remeasure: how steady is a measured speedup from one process to the next? The
// policies of a bench_onpolicy result (its JSON) are measured again in --processes fresh
// processes, one after another, each preparing every policy and timing it alternately with
// the dense baseline in --passes rounds, as bench_onpolicy does. Per policy: the ratio
// runtime / dense of each process as two statistics (the median over rounds of the
// rounds' median ratios, which bench_onpolicy and a job's verification report, and the
// fastest runtime run over the fastest dense run), their spread over processes, and the
// stored prediction's error against one process and against the median of all of them.
// The summary says how often one process's measurement falls within ±10% of the median of
// all processes: the most a perfect predictor of the steady ratio could score against a
// single measurement.
//
//   bench_remeasure --from onpolicy.json [--processes 3] [--passes 6] [--threads 1]
//                   [--data DIR] [--json PATH]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/flags.h"
#include "core/policy.h"
#include "devices/measure/harness.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/policy_timing.h"

namespace acs::bench {
namespace {

struct Args {
  std::string from;
  int processes = 3;
  int passes = 6;
  int threads = 1;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string json;
};

const char kUsage[] =
    "usage: bench_remeasure --from ONPOLICY.json [--processes K] [--passes P] [--threads T] [--data DIR]\n"
    "                       [--json PATH]\n";

[[noreturn]] void Usage(const std::string& problem) { ExitBadUsage("bench_remeasure", problem, kUsage); }

Args ParseArgs(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv, 1, {"from", "processes", "passes", "threads", "data", "json"}, {});
  if (!flags.ok()) Usage(flags.status().message());
  Args a;
  a.from = flags->Get("from", "");
  a.data = flags->Get("data", a.data);
  a.json = flags->Get("json", "");
  auto integer = [&](const char* name, int fallback) {
    StatusOr<int64_t> v = flags->GetInt(name, fallback);
    if (!v.ok() || *v < 1 || *v > 1000) Usage(std::string("--") + name + " must be an integer in [1, 1000]");
    return static_cast<int>(*v);
  };
  a.processes = integer("processes", a.processes);
  a.passes = integer("passes", a.passes);
  a.threads = integer("threads", a.threads);
  if (a.from.empty()) Usage("--from is required");
  return a;
}

// One policy of the input: where it came from and what was predicted for it.
struct Entry {
  std::string model, path, hash;
  Shape input;
  int round = 0;
  Policy policy;
  double predicted_ratio = 0, bench_ratio = 0;  // as bench_onpolicy recorded them
};

std::vector<Entry> ReadEntries(const std::string& path) {
  std::ifstream in(path);
  if (!in) Usage("cannot read " + path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("models")) Usage(path + " is not a bench_onpolicy result");
  std::vector<Entry> out;
  for (const auto& m : j["models"]) {
    for (const auto& r : m.value("rounds", nlohmann::json::array())) {
      for (const auto& p : r.value("policies", nlohmann::json::array())) {
        Entry e;
        e.model = m.at("model").get<std::string>();
        e.path = m.at("path").get<std::string>();
        e.input = m.at("input").get<Shape>();
        e.round = r.at("round").get<int>();
        e.hash = p.at("policy_hash").get<std::string>();
        e.policy = OrDie(Policy::FromJson(p.at("policy").dump()), e.model + " policy");
        e.predicted_ratio = p.at("predicted_ratio").get<double>();
        e.bench_ratio = p.at("measured_ratio").get<double>();
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

bool Within(double predicted, double measured, double tolerance) {
  return measured > 0 && std::abs(predicted / measured - 1) <= tolerance;
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  const std::vector<Entry> entries = ReadEntries(args.from);
  PolicyTimingRequest request;
  request.passes = args.passes;
  request.threads = args.threads;
  request.data = args.data;
  for (const Entry& e : entries) request.policies.push_back({e.path, e.input, e.policy});
  // Per process: {"median_ratio": [per policy], "min_ratio": [...]}.
  std::vector<nlohmann::json> runs;
  for (int k = 0; k < args.processes; ++k) {
    std::fprintf(stderr, "process %d of %d: %zu policies\n", k + 1, args.processes, entries.size());
    const std::vector<PolicyTiming> timings = OrDie(TimePoliciesInFreshProcess(request), "timing");
    nlohmann::json run = {{"median_ratio", nlohmann::json::array()}, {"min_ratio", nlohmann::json::array()}};
    for (const PolicyTiming& t : timings) {
      run["median_ratio"].push_back(t.median_ratio());
      run["min_ratio"].push_back(t.runtime_min_us / t.dense_min_us);
    }
    runs.push_back(run);
  }

  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, std::vector<double>> spreads;       // statistic -> per policy (max - min) / median
  std::map<std::string, int> single_within, steady_within;  // prediction vs one process / median of all
  std::map<std::string, int> ceiling_within, single_count;  // one process vs the median of all
  std::printf("%-16s %s %-17s %7s %7s | %-29s %7s %6s | %-29s %7s\n", "model", "r", "policy", "pred x", "bench x",
              "median ratio per process", "steady", "spread", "min ratio per process", "steady");
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    nlohmann::json row = {{"model", e.model},
                          {"round", e.round},
                          {"policy_hash", e.hash},
                          {"predicted_ratio", e.predicted_ratio},
                          {"bench_ratio", e.bench_ratio}};
    std::string line[2];
    double steady[2] = {0, 0}, spread[2] = {0, 0};
    int s = 0;
    for (const char* statistic : {"median_ratio", "min_ratio"}) {
      std::vector<double> per_process;
      for (const nlohmann::json& run : runs) per_process.push_back(run[statistic][i].get<double>());
      const double median = measure::Summarize(per_process).median_us;
      const auto [lo, hi] = std::minmax_element(per_process.begin(), per_process.end());
      spreads[statistic].push_back((*hi - *lo) / median);
      steady_within[statistic] += Within(e.predicted_ratio, median, 0.10);
      for (double m : per_process) {
        single_within[statistic] += Within(e.predicted_ratio, m, 0.10);
        ceiling_within[statistic] += Within(median, m, 0.10);
        ++single_count[statistic];
        char cell[16];
        std::snprintf(cell, sizeof(cell), "%6.3f ", m);
        line[s] += cell;
      }
      steady[s] = median;
      spread[s] = (*hi - *lo) / median;
      row[statistic] = per_process;
      ++s;
    }
    std::printf("%-16s %d %-17s %7.3f %7.3f | %-29s %7.3f %5.1f%% | %-29s %7.3f\n", e.model.c_str(), e.round,
                e.hash.c_str(), e.predicted_ratio, e.bench_ratio, line[0].c_str(), steady[0], 100 * spread[0],
                line[1].c_str(), steady[1]);
    rows.push_back(row);
  }
  nlohmann::json summary = nlohmann::json::object();
  const double n = static_cast<double>(std::max<size_t>(1, entries.size()));
  std::printf("\n%zu policies, %d processes of %d passes each\n", entries.size(), args.processes, args.passes);
  for (const char* statistic : {"median_ratio", "min_ratio"}) {
    std::vector<double>& v = spreads[statistic];
    std::sort(v.begin(), v.end());
    const double p90 = v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(0.9 * v.size()))];
    const double singles = std::max(1, single_count[statistic]);
    std::printf(
        "%-12s spread over processes (max - min) / median: median %.1f%%, 90th percentile %.1f%%; one process within "
        "±10%% of the median of all: %.1f%%; prediction within ±10%% of one process: %.1f%%, of the median of all: "
        "%.1f%%\n",
        statistic, 100 * measure::Summarize(v).median_us, 100 * p90, 100 * ceiling_within[statistic] / singles,
        100 * single_within[statistic] / singles, 100 * steady_within[statistic] / n);
    summary[statistic] = {{"spread_median", measure::Summarize(v).median_us},
                          {"spread_p90", p90},
                          {"one_process_within_10_percent_of_all", ceiling_within[statistic] / singles},
                          {"prediction_within_10_percent_of_one_process", single_within[statistic] / singles},
                          {"prediction_within_10_percent_of_median", steady_within[statistic] / n}};
  }
  const nlohmann::json out = {{"from", args.from},     {"processes", args.processes},
                              {"passes", args.passes}, {"threads", args.threads},
                              {"policies", rows},      {"summary", summary}};
  return args.json.empty() || WriteJsonFile(args.json, out) ? 0 : 1;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
