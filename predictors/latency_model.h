// The LatencyModel role (DESIGN §3): predicted microseconds of kernels (layer shape +
// compression config + threads) on one device class, and the training sample type. The
// XGBoost model and the baselines (FLOPs-proportional, roofline, nearest-neighbour
// lookup) implement it, so evaluation and search treat them alike. Torch-free.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/kernel_spec.h"
#include "core/status.h"

namespace acs::predictors {

// One kernel measurement as training or evaluation data.
struct KernelSample {
  KernelSpec spec;
  double latency_us = 0;  // the measurement's label (LabelUs in predictors/predictor.h)
};

class LatencyModel {
 public:
  virtual ~LatencyModel() = default;
  virtual std::string name() const = 0;  // "xgboost", "flops", "roofline", "lookup"
  // Predicted latency of each spec, in order. Thread-safe for concurrent callers.
  // Errors: FailedPrecondition when the model has no data for a spec's kernel kind.
  virtual StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const = 0;
};

std::vector<KernelSpec> SpecsOf(const std::vector<KernelSample>& samples);
std::vector<double> LatenciesOf(const std::vector<KernelSample>& samples);

}  // namespace acs::predictors
