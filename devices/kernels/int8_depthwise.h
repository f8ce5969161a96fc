// int8 depthwise convolution (NCHW, groups = input channels = output channels, kernel up to
// 7x7, stride 1 or 2, any zero padding, dilation 1): the fp32 input quantized per tensor to
// uint8 with the layer's calibrated ActivationQuant, int8 weights with a scale per channel,
// exact int32 sums, fp32 output (+ bias, clamp). Each image is quantized into a
// channels-last copy padded with the zero point (the quantized 0.0f), which the kernel
// (int8_kernel_table.h, DepthwiseU8Image) reads 16 or 8 channels per vector, so that small
// feature maps (EfficientNet's 1x1 to 4x4 ones at 32x32 inputs) still fill the vectors; its
// channels-last output is transposed back to NCHW.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "core/status.h"
#include "devices/kernels/conv2d.h"
#include "devices/kernels/int8_gemm.h"

namespace acs::kernels {

struct Int8DepthwiseOptions {
  ActivationQuant input_quant;                          // how the fp32 input is quantized (calibrated beforehand)
  float min = -std::numeric_limits<float>::infinity();  // output clamp: none by default
  float max = std::numeric_limits<float>::infinity();
};

// Immutable after Create; Run is const and may be called from several threads at once.
class Int8DepthwiseConv2d {
 public:
  // weights: C rows of kh * kw (PyTorch's weight [C, 1, kh, kw] quantized per row).
  // Errors (InvalidArgument): invalid geometry or input quant, a kernel above 7x7, dilation
  // other than 1, a stride other than 1 or 2 (or different across height and width),
  // weights of another shape, a bias of the wrong size, min > max.
  static StatusOr<Int8DepthwiseConv2d> Create(const Int8Weights& weights, const Conv2dGeometry& g,
                                              std::vector<float> bias = {}, const Int8DepthwiseOptions& options = {});

  // Convolves input [batch, C, H, W] into output [batch, C, out_h, out_w], not overlapping.
  // Threads split the channels (options.min_macs_per_thread). Scratch (the padded copy and
  // the channels-last output) belongs to the calling thread, is reused across calls and
  // only grows. Errors (InvalidArgument): null pointers, batch < 1.
  Status Run(const float* input, int64_t batch, float* output, const Int8Options& options = {}) const;

  const Conv2dGeometry& geometry() const { return geometry_; }
  int64_t channels() const { return geometry_.channels; }
  int64_t packed_bytes() const;  // weights (as int32) and per-channel arrays

 private:
  Int8DepthwiseConv2d() = default;

  Conv2dGeometry geometry_;
  Int8DepthwiseOptions options_;
  int64_t ldc_ = 0;                  // channels rounded up to 16
  std::vector<int32_t> w_;           // taps x ldc_, zero past the channels
  std::vector<int32_t> correction_;  // ldc_: zero point * sum of the channel's weights
  std::vector<float> scale_;         // ldc_: weight scale * input scale
  std::vector<float> bias_;          // ldc_
  uint64_t layout_id_ = 0;           // unique per Create: which layout a thread's padded copy holds
};

}  // namespace acs::kernels
