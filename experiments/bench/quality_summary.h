// The runs of bench_quality (one search, its best policy recovered and tested, then timed)
// and the summaries the targets are judged on: per model the largest measured
// speedup within a top-1 loss, per model and budget the learned agents against the
// baselines. Torch-free.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/policy.h"

namespace acs::bench {

struct QualityRun {
  std::string model, agent;
  double budget = 0;  // latency budget, share of the dense model's measured latency
  uint64_t seed = 0;
  std::string skipped;  // why the search could not start (a budget out of reach); empty: ran
  int episodes = 0;     // policies evaluated by the search
  double search_seconds = 0, export_seconds = 0;
  double validation_top1 = 0;                 // the search's best reward (post-training compression)
  double predicted_ratio = 0;                 // predicted latency of the best policy over the dense model's
  double test_top1 = 0, dense_test_top1 = 0;  // on the test split, after recovery
  int64_t test_samples = 0;
  int64_t fine_tune_kept_epoch = -1;  // FineTune's kept epoch, -1 without fine-tuning
  double measured_ratio = 0;          // median over rounds of runtime / dense baseline
  Policy policy;

  bool ran() const { return skipped.empty(); }
  double speedup() const { return measured_ratio > 0 ? 1 / measured_ratio : 0; }
  double loss_points() const { return 100 * (dense_test_top1 - test_top1); }
  nlohmann::json ToJson() const;
};

// Agents whose mean is compared against the baselines' (learned), and the baselines.
inline const std::vector<std::string> kLearnedAgents = {"amc", "agmc"};
inline const std::vector<std::string> kBaselineAgents = {"random", "evo"};

// Per model: the largest measured speedup among the runs whose test top-1 is at most
// `max_loss_points` below the dense model's (0: none qualifies).
struct SpeedupAtLoss {
  std::string model;
  double max_loss_points = 0;
  double target = 0;   // the target speedup
  double speedup = 0;  // 0: no run within the loss
  const QualityRun* run = nullptr;
};
std::vector<SpeedupAtLoss> SpeedupsAtLoss(const std::vector<QualityRun>& runs, double max_loss_points, double target);

// Per model and budget: each agent's mean test top-1 over its seeds, and the gap in points
// between the weakest learned agent and the strongest baseline (both present; else NaN).
struct AgentComparison {
  std::string model;
  double budget = 0;
  std::vector<std::string> agents;
  std::vector<double> mean_test_top1;  // per agent, NaN when no seed ran
  std::vector<int> seeds;              // seeds that ran, per agent
  double gap_points = 0;               // min over learned - max over baselines
};
std::vector<AgentComparison> CompareAgents(const std::vector<QualityRun>& runs);

// The table's header and one row per run.
void PrintRunHeader();
void PrintRun(const QualityRun& run);
// The summary rows (to stdout) and their JSON.
nlohmann::json PrintSummary(const std::vector<QualityRun>& runs);

}  // namespace acs::bench
