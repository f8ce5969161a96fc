// Whole-model latency (DESIGN §3, as nn-Meter): the sum of the kernel predictions of its
// layers plus a learned per-model overhead for what runs between them (activations,
// adds, pooling, op dispatch). Torch-free.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/kernel_spec.h"
#include "core/status.h"
#include "predictors/latency_model.h"

namespace acs::predictors {

// A model as the predictor sees it.
struct ModelShape {
  std::vector<KernelSpec> layers;  // conv2d / linear layers as run (channel pruning applied)
  double other_ops = 0;            // graph ops that are not such layers
  double other_bytes = 0;          // bytes those ops write
  int threads = 1;
};

// overhead_us = w0 + w1 x layers + w2 x other_ops + w3 x other_bytes / 1e6, one w per
// thread count, fitted by ridge-regularized least squares to measured - sum of kernels.
class OverheadModel {
 public:
  // Errors: InvalidArgument for mismatched sizes or no data.
  static StatusOr<OverheadModel> Fit(const std::vector<ModelShape>& shapes, const std::vector<double>& measured_us,
                                     const std::vector<double>& kernel_sum_us);
  // The nearest fitted thread count is used for other thread counts; 0 when not fitted.
  double Predict(const ModelShape& shape) const;
  nlohmann::json ToJson() const;
  static StatusOr<OverheadModel> FromJson(const nlohmann::json& j);

 private:
  std::map<int, std::vector<double>> weights_;  // threads -> w
};

// Sum of kernel predictions of each shape (one batched Predict call).
StatusOr<std::vector<double>> KernelSums(const LatencyModel& kernels, const std::vector<ModelShape>& shapes);

// Kernel sum + overhead of each shape.
StatusOr<std::vector<double>> PredictModels(const LatencyModel& kernels, const OverheadModel& overhead,
                                            const std::vector<ModelShape>& shapes);

}  // namespace acs::predictors
