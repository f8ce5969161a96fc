// fp32 3x3 depthwise convolution (NCHW, groups = input channels = output channels, stride
// 1 or 2, any zero padding, dilation 1), with bias and an output clamp (a fused relu /
// relu6) on the CPU. Each channel is copied once into a zero-padded plane split into
// stride column phases, so that the kernel (kernel_table.h, DepthwisePlane) reads every
// tap as a contiguous run of columns; a thread's plane keeps its zero padding from one
// channel to the next.
#pragma once

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "core/status.h"
#include "devices/kernels/conv2d.h"
#include "devices/kernels/kernel_table.h"

namespace acs::kernels {

struct DepthwiseOptions {
  float min = -std::numeric_limits<float>::infinity();  // output clamp: none by default
  float max = std::numeric_limits<float>::infinity();
};

struct DepthwiseRunOptions {
  int threads = 1;                       // worker threads at most (OpenMP, over channels)
  int64_t min_outputs_per_thread = 16384;  // output elements worth one more thread
  const KernelTable* kernels = nullptr;  // null: Kernels(), the table chosen at start-up
};

// A depthwise layer. Immutable after Create; Run is const and may be called from several
// threads at once.
class DepthwiseConv2d {
 public:
  // weights: C * 9 floats (PyTorch's weight [C, 1, 3, 3]); bias: C floats or empty.
  // Errors (InvalidArgument): invalid geometry, a kernel other than 3x3, dilation other
  // than 1, a stride other than 1 or 2 (or different across height and width), weights or
  // bias of the wrong size, min > max.
  static StatusOr<DepthwiseConv2d> Create(std::vector<float> weights, const Conv2dGeometry& g,
                                          std::vector<float> bias = {}, const DepthwiseOptions& options = {});

  // Convolves input [batch, C, H, W] into output [batch, C, out_h, out_w], not overlapping.
  // Scratch (one padded plane per thread) is reused across calls; it only grows.
  // Errors (InvalidArgument): null pointers, batch < 1.
  Status Run(const float* input, int64_t batch, float* output, const DepthwiseRunOptions& options = {}) const;

  const Conv2dGeometry& geometry() const { return geometry_; }
  int64_t channels() const { return geometry_.channels; }

 private:
  DepthwiseConv2d() = default;

  Conv2dGeometry geometry_;
  std::vector<float> weights_;
  std::vector<float> bias_;  // C floats (zeros when there is no bias)
  DepthwiseOptions options_;
  int64_t padded_rows_ = 0;  // H + 2 pad_h (+ 1 when the last stride phase row is read)
  int64_t pitch_ = 0;        // floats per phase row
  // Per column phase: the phase row's columns [first, second) that lie inside the image.
  std::vector<std::pair<int64_t, int64_t>> columns_;
  uint64_t layout_id_ = 0;   // unique per Create: which layout a thread's plane buffer holds
};

}  // namespace acs::kernels
