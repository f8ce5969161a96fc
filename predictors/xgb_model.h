// Gradient-boosted trees (XGBoost C API) on log latency, one booster per kernel kind
// (conv2d, depthwise, linear) of one device class. Each booster learns the correction
// to a prior log(non-zero multiply-adds): the trees then model log time per operation,
// which varies far less than log time. Saved as a versioned JSON blob. Torch-free.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "predictors/features.h"
#include "predictors/latency_model.h"

namespace acs::predictors {

struct XgbOptions {
  int rounds = 300;               // boosting rounds
  int max_depth = 6;              // tree depth
  double learning_rate = 0.1;     // eta
  double subsample = 0.8;         // rows per tree
  double colsample = 0.8;         // features per tree
  double min_child_weight = 1.0;  // minimum hessian sum in a leaf
  double lambda = 1.0;            // L2 regularization of leaf weights
  // Loss on log latency: "reg:squarederror", or "reg:pseudohubererror" (quadratic within
  // huber_slope of the label, linear beyond: a remeasured kernel can differ 10x).
  std::string objective = "reg:squarederror";
  double huber_slope = 0.1;
  int threads = 1;                // training and prediction threads
  int seed = 1;                   // subsampling seed
};

class XgbLatencyModel final : public LatencyModel {
 public:
  static constexpr int kBlobVersion = 1;

  // Trains one booster per kernel kind present in `samples` (at least 2 samples of a
  // kind; kinds with fewer are left out). Errors: InvalidArgument for no usable sample or
  // a non-positive latency; Internal for an XGBoost failure (its message included).
  static StatusOr<std::unique_ptr<XgbLatencyModel>> Train(const std::vector<KernelSample>& samples,
                                                          const XgbOptions& options = {});
  // Errors: InvalidArgument naming what is wrong with the blob (format, version, kind).
  static StatusOr<std::unique_ptr<XgbLatencyModel>> Load(const std::string& blob);

  ~XgbLatencyModel() override;
  std::string name() const override { return "xgboost"; }
  StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const override;
  // {"format": "acs-latency-xgboost", "version": 1, "features": [...], "options": {...},
  //  "kinds": {"conv2d": {"samples": n, "booster": "<XGBoost JSON model>"}, ...}}
  StatusOr<std::string> Save() const;
  bool HasKind(KernelKindId kind) const;
  int samples(KernelKindId kind) const;

 private:
  XgbLatencyModel() = default;
  struct Booster;
  std::array<std::unique_ptr<Booster>, static_cast<int>(KernelKindId::kCount)> boosters_;
  XgbOptions options_;
  mutable std::mutex mu_;  // XGBoost prediction buffers belong to the booster
};

// The prior of a spec in log microseconds: log(max(1, non-zero multiply-adds) x 1e-3).
double LogPrior(const KernelSpec& spec);

}  // namespace acs::predictors
