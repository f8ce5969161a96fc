// What `acs sweep` shows of its jobs (pure: no calls): one row per budget with the budget
// outcome, the predicted speedup beside the measured one, the downloaded model's accuracy
// and the Pareto front of accuracy vs measured latency; as a table, as JSON, and the
// command's exit code.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/status.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// Exit code of a sweep with a job that failed, was cancelled or has not ended (as `acs
// campaign run`'s kExitFailedCells).
inline constexpr int kExitSweepFailed = 4;

// --budgets: "KIND=R1x,R2x,..." (a KIND= item sets the kind of the ratios after it, e.g.
// "latency=0.3x,0.5x,flops=0.5x"); each checked as --budget; InvalidArgument on a repeat.
StatusOr<std::vector<acs::v1::Budget>> ParseSweepBudgets(const std::string& text);

struct SweepRow {
  std::string budget;  // "latency=0.5x"
  std::string job_id;
  acs::v1::JobState state = acs::v1::JOB_STATE_UNSPECIFIED;
  std::optional<bool> budget_met;           // nullopt until the job ended with a model
  std::optional<double> measured_ratio;     // its measured latency / the dense model's, timed in one task
  std::optional<double> predicted_speedup;  // dense / compressed predicted latency
  std::optional<double> measured_speedup;   // dense / compressed measured latency
  double measured_latency_us = 0;           // the compressed model's; 0: not measured
  std::optional<double> accuracy;           // top-1 of the downloaded model
  std::string accuracy_source;              // "test", "validation" or "search" (its estimate)
  bool on_front = false;
  std::string note;  // why a row is not on the front
};

// The rows of the jobs, in their order, the Pareto front marked: a row is on it when it
// ended SUCCEEDED or BUDGET_NOT_MET with a measured latency and an accuracy, and no other
// such row has both an accuracy >= and a measured latency ratio <= its own, one of them
// strictly. Latency is compared as the ratio to the dense model timed in the same task, so
// that jobs measured on different workers compare.
std::vector<SweepRow> SweepRows(const std::vector<acs::v1::Job>& jobs);

// The table, a legend and the budgets not met.
void PrintSweepTable(const std::vector<SweepRow>& rows, std::ostream& out);
// {"rows": [...], "front": [budgets], "not_met": [budgets]}; unknown numbers are null.
nlohmann::json SweepJson(const std::vector<SweepRow>& rows);
// 0 when every job ended SUCCEEDED or BUDGET_NOT_MET, else kExitSweepFailed.
int SweepExitCode(const std::vector<SweepRow>& rows);

}  // namespace acs::cli
