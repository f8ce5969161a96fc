// How far to trust a latency model (DESIGN §3, §7): error figures of predictions against
// measurements. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace acs::predictors {

struct AccuracyMetrics {
  int count = 0;
  double mape = 0;       // mean |predicted - measured| / measured, as a share
  double within5 = 0;    // share of predictions within ±5% of the measurement
  double within10 = 0;   // share within ±10%
  double spearman = 0;   // rank correlation of predicted and measured (ties averaged)
  nlohmann::json ToJson() const;
};

// Below this share of repeated kernel measurements within 10% of their first one, a device
// class is said to be noisy: its predictions cannot be closer than its own repeats.
inline constexpr double kNoisyRepeatWithin10 = 0.7;

// "repeat agreement: 83.0% of 100 re-measured kernels within 10% of their first
// measurement", and what it means when below kNoisyRepeatWithin10.
std::string DescribeRepeatAgreement(int64_t repeated, double within10);

// Precondition: same sizes; measurements > 0. Empty input gives count 0 and zeros.
AccuracyMetrics ComputeMetrics(const std::vector<double>& predicted, const std::vector<double>& measured);

// Spearman's rho with average ranks for ties; 0 when fewer than 2 values or no variance.
double SpearmanRho(const std::vector<double>& a, const std::vector<double>& b);

// Relative error (predicted - measured) / measured.
double RelativeError(double predicted, double measured);

}  // namespace acs::predictors
