// The host's speed over time (DESIGN §5). A shared machine runs slower and faster over
// seconds to minutes (other tenants, frequency), and every measurement taken meanwhile
// moves by about the same factor. A fixed reference kernel, timed every few
// measurements, gives that factor; dividing by it scales a measurement to the host's
// speed when the reference's baseline was taken.
#pragma once

#include <map>

#include <nlohmann/json.hpp>

#include "core/kernel_spec.h"
#include "core/status.h"
#include "devices/worker/kernel_measure.h"

namespace acs::worker {

struct SpeedReferenceOptions {
  KernelMeasureOptions measure;  // how the reference is timed (threads from the spec)
  int every = 10;                // FactorNow calls between two timings of the reference
  int baseline_timings = 9;      // timings whose median makes a new baseline
};

class SpeedReference {
 public:
  // `baselines`: reference microseconds per thread count from an earlier collection (see
  // ToJson); a thread count without one takes as baseline the median of `baseline_timings`
  // timings of the reference on its first use.
  explicit SpeedReference(SpeedReferenceOptions options, std::map<int, double> baselines = {});

  // The reference: a dense fp32 3x3 convolution, 32 -> 32 channels on 1x32x28x28.
  static KernelSpec ReferenceSpec(int threads);

  // Timing now / baseline at `threads` (1 = as at the baseline, 1.2 = 20% slower), timing
  // the reference again when `every` calls at that thread count have passed since the
  // last. Errors from measuring the reference.
  StatusOr<double> FactorNow(int threads);

  // {"kernel": key, "baseline_us": {"1": us, ...}}; FromJson reads the baselines back
  // (empty when the kernel differs or the JSON is not of this form).
  nlohmann::json ToJson() const;
  static std::map<int, double> BaselinesFromJson(const nlohmann::json& j);

 private:
  struct PerThreads {
    double latest_factor = 1.0;
    int calls_since = -1;  // -1: never timed
  };
  SpeedReferenceOptions options_;
  std::map<int, double> baselines_;
  std::map<int, PerThreads> state_;
};

}  // namespace acs::worker
