// Shared helpers of the kernel tests: random sparse weights of each pattern, a naive
// double-precision reference, and the tolerance every kernel is held to.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "devices/kernels/conv2d.h"
#include "devices/kernels/kernel_table.h"
#include "devices/kernels/sparse_formats.h"

namespace acs::kernels::testing {

// |y - reference| <= kRelTol * (|bias| + sum_k |w_ok x_kp|) + kAbsTol for every output:
// float accumulation in a different order (SIMD lanes, FMA, partial sums) stays far inside
// this for the reduction lengths tested (K <= ~600).
constexpr double kRelTol = 1e-5;
constexpr double kAbsTol = 1e-6;

inline std::vector<float> RandomVector(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Non-zero value in [-1, -0.1] U [0.1, 1].
inline float NonZero(std::mt19937& rng) {
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  return (rng() & 1) ? mag(rng) : -mag(rng);
}

// Dense O x K weights whose zeros follow `pattern`: "block<N>" (whole N-row blocks of a
// column zero), "unstructured", or "<n>:<m>" (at most n non-zeros per run of m, some runs
// with fewer). `sparsity` is the share of blocks / weights zeroed (ignored for n:m).
std::vector<float> RandomSparseWeights(int64_t rows, int64_t cols, const std::string& pattern,
                                       double sparsity, std::mt19937& rng);

// Packs `pattern` weights (as above) into the matching format.
SparseWeights PackAs(const std::vector<float>& dense, int64_t rows, int64_t cols, const std::string& pattern);

// y[o, p] = bias[o] + sum_k w[o, k] x[k, p] in double, and the matching error bound.
struct Reference {
  std::vector<double> y;      // rows x p
  std::vector<double> bound;  // allowed |error| per output
};
Reference DenseReference(const std::vector<float>& w, int64_t rows, int64_t cols, const float* x, int64_t ldx,
                         int64_t p, const float* bias);

// Calls tap(k, x) for each kernel tap of output (oh, ow) of image b that lies inside the
// image (padding taps are skipped): k = (c * kernel_h + i) * kernel_w + j is the weight
// column, x the offset of the pixel in the NCHW input.
template <class Tap>
void ForEachTap(const Conv2dGeometry& g, int64_t b, int64_t oh, int64_t ow, Tap tap) {
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;
        const int64_t iw = ow * g.stride_w - g.pad_w + j * g.dilation_w;
        if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
        tap((c * g.kernel_h + i) * g.kernel_w + j, ((b * g.channels + c) * g.height + ih) * g.width + iw);
      }
    }
  }
}

// out[b, o, oh, ow] of a groups = 1 convolution with weights w [O, C*kh*kw] and an
// optional bias, straight from the definition, with the matching error bound.
Reference DirectConv(const Conv2dGeometry& g, const std::vector<float>& w, int64_t out_channels,
                     const std::vector<float>& input, int64_t batch, const std::vector<float>& bias);

// Checks y (rows x p, leading dimension ldy) against the reference; returns failures reported.
int ExpectNear(const Reference& ref, const float* y, int64_t rows, int64_t p, int64_t ldy,
               const std::string& what);

// Parameter name for gtest: the ISA's name.
inline std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info) { return IsaName(info.param); }

}  // namespace acs::kernels::testing
