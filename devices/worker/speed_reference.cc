#include "devices/worker/speed_reference.h"

#include <algorithm>
#include <string>
#include <vector>

#include "devices/measure/harness.h"

namespace acs::worker {

SpeedReference::SpeedReference(SpeedReferenceOptions options, std::map<int, double> baselines)
    : options_(std::move(options)), baselines_(std::move(baselines)) {}

KernelSpec SpeedReference::ReferenceSpec(int threads) {
  KernelSpec s;
  s.op = "conv2d";
  s.in_channels = 32;
  s.out_channels = 32;
  s.kernel = {3, 3};
  s.stride = {1, 1};
  s.padding = {1, 1};
  s.dilation = {1, 1};
  s.groups = 1;
  s.input = {1, 32, 28, 28};
  s.threads = threads;
  return s;
}

StatusOr<double> SpeedReference::FactorNow(int threads) {
  PerThreads& st = state_[threads];
  if (st.calls_since >= 0 && st.calls_since < options_.every) {
    ++st.calls_since;
    return st.latest_factor;
  }
  auto time = [&]() -> StatusOr<double> {
    ACS_ASSIGN_OR_RETURN(KernelMeasurement m, MeasureKernel(ReferenceSpec(threads), options_.measure));
    if (!(m.timing.median_us > 0)) return Status::Internal("the speed reference kernel timed at 0 us");
    return m.timing.median_us;
  };
  if (!baselines_.count(threads)) {
    std::vector<double> timings;
    for (int i = 0; i < std::max(1, options_.baseline_timings); ++i) {
      ACS_ASSIGN_OR_RETURN(double us, time());
      timings.push_back(us);
    }
    baselines_[threads] = measure::Summarize(timings).median_us;
  }
  ACS_ASSIGN_OR_RETURN(double us, time());
  st.latest_factor = us / baselines_[threads];
  st.calls_since = 1;
  return st.latest_factor;
}

nlohmann::json SpeedReference::ToJson() const {
  nlohmann::json baselines = nlohmann::json::object();
  for (const auto& [threads, us] : baselines_) baselines[std::to_string(threads)] = us;
  return {{"kernel", ReferenceSpec(1).Key()}, {"baseline_us", baselines}};
}

std::map<int, double> SpeedReference::BaselinesFromJson(const nlohmann::json& j) {
  std::map<int, double> out;
  if (!j.is_object() || j.value("kernel", "") != ReferenceSpec(1).Key() || !j.contains("baseline_us") ||
      !j["baseline_us"].is_object()) {
    return out;
  }
  for (const auto& [threads, us] : j["baseline_us"].items()) {
    char* end = nullptr;
    const long t = std::strtol(threads.c_str(), &end, 10);
    if (*end == '\0' && t > 0 && us.is_number() && us.get<double>() > 0) out[static_cast<int>(t)] = us.get<double>();
  }
  return out;
}

}  // namespace acs::worker
