// Per-layer weight transforms: magnitude masks for each sparsity pattern and simulated
// precision. Pure functions of their inputs; the scalar meaning of each is stated here.
#pragma once

#include <torch/types.h>

#include "core/policy.h"

namespace acs {

// Mask (1 keep, 0 remove) of the same shape as `weight` [out, ...] for config.pattern.
// The weight is viewed as [out, R] with R = the rest flattened (input channel, kh, kw):
// - kUnstructured: the floor(sparsity * numel) smallest |w| are removed;
// - kBlock: 1xN blocks of N consecutive output rows at one column (the last block of rows
//   may be shorter); the floor(sparsity * blocks) blocks of smallest L1 norm are removed;
// - kNM: in every run of M consecutive columns of a row, the N largest |w| are kept (a
//   shorter last run keeps min(N, its length));
// - kDense and kChannel: all ones (channel removal is done on the channel group).
torch::Tensor PatternMask(const torch::Tensor& weight, const LayerConfig& config);

// Weight values as the precision stores them, back in float32:
// - kBf16: rounded to bfloat16;
// - kInt8: per output channel symmetric, scale = max|w| / 127, integers in [-127, 127];
// - kInt4w: per output channel symmetric, scale = max|w| / 7, integers in [-7, 7];
// - kFp32: unchanged. Zeros stay exactly zero.
torch::Tensor SimulatePrecision(const torch::Tensor& weight, Precision precision);

// Asymmetric uint8 activation quantization parameters for values in [min, max]; the range
// is widened to contain 0 so that zero is exact.
struct ActivationQuant {
  double scale = 1.0;
  int64_t zero_point = 0;
  static constexpr int64_t kMin = 0;
  static constexpr int64_t kMax = 255;
};
ActivationQuant ActivationQuantFromRange(double min, double max);

}  // namespace acs
