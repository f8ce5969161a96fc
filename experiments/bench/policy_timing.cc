#include "experiments/bench/policy_timing.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <utility>

#include "core/child_process.h"
#include "devices/measure/harness.h"
#include "devices/worker/model_measure.h"

namespace acs::bench {

// The measuring program: reads a PolicyTimingRequest (JSON) on stdin, writes the timings
// (JSON) as the last line of stdout.
constexpr char kTimingProgram[] = "bench_time_policies";

nlohmann::json ToJson(const PolicyTimingRequest& request) {
  nlohmann::json policies = nlohmann::json::array();
  for (const PolicyToTime& p : request.policies) {
    policies.push_back(
        {{"model_path", p.model_path}, {"input", p.input}, {"policy", nlohmann::json::parse(p.policy.ToJson(-1))}});
  }
  return {{"policies", policies}, {"passes", request.passes}, {"threads", request.threads}, {"data", request.data}};
}

StatusOr<PolicyTimingRequest> PolicyTimingRequestFromJson(const nlohmann::json& j) {
  try {
    PolicyTimingRequest r;
    r.passes = j.at("passes").get<int>();
    r.threads = j.at("threads").get<int>();
    r.data = j.at("data").get<std::string>();
    for (const nlohmann::json& p : j.at("policies")) {
      PolicyToTime t;
      t.model_path = p.at("model_path").get<std::string>();
      t.input = p.at("input").get<Shape>();
      ACS_ASSIGN_OR_RETURN(t.policy, Policy::FromJson(p.at("policy").dump()));
      r.policies.push_back(std::move(t));
    }
    if (r.passes < 1 || r.threads < 1) return Status::InvalidArgument("passes and threads must be at least 1");
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("timing request: ") + e.what());
  }
}

nlohmann::json ToJson(const std::vector<PolicyTiming>& timings) {
  nlohmann::json out = nlohmann::json::array();
  for (const PolicyTiming& t : timings) {
    out.push_back({{"ratios", t.ratios},
                   {"runtime_min_us", t.runtime_min_us},
                   {"dense_min_us", t.dense_min_us},
                   {"runtime_dense_optimized", t.runtime_dense_optimized}});
  }
  return out;
}

StatusOr<std::vector<PolicyTiming>> PolicyTimingsFromJson(const nlohmann::json& j) {
  try {
    std::vector<PolicyTiming> out;
    for (const nlohmann::json& t : j) {
      out.push_back({t.at("ratios").get<std::vector<double>>(), t.at("runtime_min_us").get<double>(),
                     t.at("dense_min_us").get<double>(), t.at("runtime_dense_optimized").get<bool>()});
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return Status::Internal(std::string("timings: ") + e.what());
  }
}

StatusOr<std::vector<PolicyTiming>> TimePolicies(const PolicyTimingRequest& request) {
  std::vector<worker::PreparedModel> prepared;
  for (const PolicyToTime& p : request.policies) {
    worker::ModelMeasureRequest m;
    m.model_path = p.model_path;
    m.input_shape = p.input;
    m.threads = request.threads;
    m.calibration_path = request.data;
    m.policy = p.policy;
    StatusOr<worker::PreparedModel> one = worker::PreparedModel::Prepare(m);
    if (!one.ok())
      return Status(one.status().code(), p.model_path + " " + p.policy.Hash() + ": " + one.status().message());
    prepared.push_back(std::move(one).value());
  }
  measure::MeasureOptions round;
  round.min_repeats = 5;
  round.min_seconds = 0.1;
  std::vector<PolicyTiming> out(prepared.size());
  for (PolicyTiming& t : out) t.runtime_min_us = t.dense_min_us = 1e300;
  for (int pass = 0; pass < request.passes; ++pass) {
    for (size_t i = 0; i < prepared.size(); ++i) {
      ACS_ASSIGN_OR_RETURN(const worker::ModelMeasurement m, prepared[i].Time(round));
      out[i].ratios.push_back(m.runtime.median_us / m.dense.median_us);
      out[i].runtime_min_us = std::min(out[i].runtime_min_us, m.runtime.min_us);
      out[i].dense_min_us = std::min(out[i].dense_min_us, m.dense.min_us);
      out[i].runtime_dense_optimized = m.runtime_dense_optimized;
    }
  }
  return out;
}

StatusOr<std::vector<PolicyTiming>> TimePoliciesInFreshProcess(const PolicyTimingRequest& request) {
  ACS_ASSIGN_OR_RETURN(const std::string self, OwnProgram());
  const std::string program = (std::filesystem::path(self).parent_path() / kTimingProgram).string();
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> child,
                       ChildProcess::Start({program}, ProcessLimits{}, ToJson(request).dump()));
  const ProcessExit exit = child->WaitForExit();
  if (!exit.ok()) return Status::Internal(program + " " + DescribeExit(exit, ProcessLimits{}));
  std::istringstream lines(exit.output);
  std::string last;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) last = line;
  }
  const nlohmann::json answer = nlohmann::json::parse(last, nullptr, false);
  if (answer.is_discarded()) return Status::Internal(program + " answered no JSON: " + last.substr(0, 200));
  return PolicyTimingsFromJson(answer);
}

StatusOr<std::vector<PolicyTiming>> TimePoliciesInFreshProcesses(const PolicyTimingRequest& request, int processes) {
  if (processes <= 1) return TimePoliciesInFreshProcess(request);
  std::vector<std::vector<PolicyTiming>> runs;
  for (int run = 0; run < processes; ++run) {
    ACS_ASSIGN_OR_RETURN(std::vector<PolicyTiming> one, TimePoliciesInFreshProcess(request));
    runs.push_back(std::move(one));
  }
  std::vector<PolicyTiming> out(request.policies.size());
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<double> runtime_min, dense_min;
    for (const std::vector<PolicyTiming>& run : runs) {
      if (i >= run.size()) return Status::Internal("a timing process answered fewer policies than asked");
      out[i].ratios.push_back(run[i].median_ratio());
      runtime_min.push_back(run[i].runtime_min_us);
      dense_min.push_back(run[i].dense_min_us);
    }
    out[i].runtime_min_us = measure::Summarize(runtime_min).median_us;
    out[i].dense_min_us = measure::Summarize(dense_min).median_us;
    out[i].runtime_dense_optimized = runs.front()[i].runtime_dense_optimized;
  }
  return out;
}

double PolicyTiming::median_ratio() const { return measure::Summarize(ratios).median_us; }

}  // namespace acs::bench
