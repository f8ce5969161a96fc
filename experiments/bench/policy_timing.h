// Whole-model timing of policies for the benchmarks, in a fresh process as a worker's
// model task times them: the parent writes a request file and runs the measuring program
// (bench_time_policies, beside the calling program), which prepares every policy
// (worker::PreparedModel), times each alternately with its dense baseline in `passes`
// rounds over all of them, and writes the timings back. A process that has run a search
// (training, evaluation, many allocations) times the same policies differently from a
// fresh one (docs/latency_bench.md, 2026-12-07 evening), and a job's verification is a
// fresh process.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/policy.h"
#include "core/status.h"

namespace acs::bench {

struct PolicyToTime {
  std::string model_path;  // TorchScript file
  Shape input;
  Policy policy;  // empty: the dense model itself (runtime of nothing compressed)
};

struct PolicyTimingRequest {
  std::vector<PolicyToTime> policies;
  int passes = 6;  // rounds over all policies
  int threads = 1;
  std::string data;  // calibration dataset (empty: synthetic inputs)
};

// One policy's timing: per round the runtime's median over the dense baseline's median,
// and the fastest runs over all rounds.
struct PolicyTiming {
  std::vector<double> ratios;
  double runtime_min_us = 0, dense_min_us = 0;
  bool runtime_dense_optimized = false;  // the runtime's aten layers ran optimized
  double median_ratio() const;           // the median of `ratios` (measure::Summarize)
};

nlohmann::json ToJson(const PolicyTimingRequest& request);
StatusOr<PolicyTimingRequest> PolicyTimingRequestFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const std::vector<PolicyTiming>& timings);
StatusOr<std::vector<PolicyTiming>> PolicyTimingsFromJson(const nlohmann::json& j);

// Times the request in this process. Errors from preparing or running a policy.
StatusOr<std::vector<PolicyTiming>> TimePolicies(const PolicyTimingRequest& request);

// Times the request in a fresh process of the measuring program found beside this one.
// Errors: the program missing or failing (its exit status), or its answer unreadable.
StatusOr<std::vector<PolicyTiming>> TimePoliciesInFreshProcess(const PolicyTimingRequest& request);

// The request timed in `processes` fresh processes one after the other, as a job measures a
// policy in verify_runs tasks: one process gives its own timing; several give per policy
// each process's median ratio as `ratios` (so median_ratio() is their median) and the
// median of their fastest runs. Errors as TimePoliciesInFreshProcess.
StatusOr<std::vector<PolicyTiming>> TimePoliciesInFreshProcesses(const PolicyTimingRequest& request, int processes);

}  // namespace acs::bench
