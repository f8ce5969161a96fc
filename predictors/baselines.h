// Baseline latency models that every predictor is compared against (issue: FLOPs-
// proportional, roofline, nearest-neighbour lookup). Torch-free.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "predictors/features.h"
#include "predictors/latency_model.h"

namespace acs::predictors {

// latency = c x non-zero FLOPs, one c per (kernel kind, threads): the geometric mean of
// latency / FLOPs over the training samples.
class FlopsModel final : public LatencyModel {
 public:
  // Errors: InvalidArgument when samples is empty.
  static StatusOr<FlopsModel> Fit(const std::vector<KernelSample>& samples);
  std::string name() const override { return "flops"; }
  StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const override;

 private:
  std::map<std::pair<int, int>, double> us_per_flop_;  // (kind, threads) -> c
};

// Peak compute and memory bandwidth of a device class at a thread count, measured once.
struct RooflinePoint {
  int threads = 1;
  double peak_gflops = 0;     // dense fp32 GEMM
  double bandwidth_gbs = 0;   // large memory copy (bytes read + written per second)
  nlohmann::json ToJson() const;
  static StatusOr<RooflinePoint> FromJson(const nlohmann::json& j);
};

// latency = max(non-zero FLOPs / peak, (weight + activation bytes) / bandwidth) at the
// spec's thread count (the nearest measured one).
class RooflineModel final : public LatencyModel {
 public:
  // Errors: InvalidArgument for no points or a non-positive figure.
  static StatusOr<RooflineModel> Create(std::vector<RooflinePoint> points);
  std::string name() const override { return "roofline"; }
  StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const override;

 private:
  std::vector<RooflinePoint> points_;
};

// Nearest-neighbour lookup table: among the training samples of the same kernel kind,
// pattern, precision and threads (any, when none matches), the one closest in
// standardized log-shape features; its latency scaled by the ratio of non-zero FLOPs.
class LookupModel final : public LatencyModel {
 public:
  // Errors: InvalidArgument when samples is empty.
  static StatusOr<LookupModel> Fit(const std::vector<KernelSample>& samples);
  std::string name() const override { return "lookup"; }
  StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const override;

 private:
  struct Entry {
    std::string bucket;        // kind, pattern, precision, threads
    std::string kind_bucket;   // kind only
    std::vector<double> point; // standardized features
    double macs_nonzero = 0;
    double latency_us = 0;
  };
  std::vector<double> Point(const KernelSpec& spec) const;
  std::vector<Entry> entries_;
  std::vector<double> mean_, scale_;
};

}  // namespace acs::predictors
