// int8 2-D convolution (NCHW, groups = 1): fp32 input quantized per tensor to uint8 with the
// layer's calibrated ActivationQuant, int8 weights with per-output-channel scales, fp32
// output (+ bias, relu). Lowered to int8_gemm.h: X[K x P] is the quantized image itself
// for a 1x1, stride-1, unpadded convolution; otherwise either uint8 im2col tiles, or
// (direct) rows read in place from a copy of the image padded with the zero point (the
// quantized 0.0f) and split into stride phases, as conv2d.h's kDirect does for floats;
// output positions map to columns of that copy, so nothing is computed for the padding.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "devices/kernels/conv2d.h"
#include "devices/kernels/int8_gemm.h"

namespace acs::kernels {

struct Int8Conv2dOptions {
  ActivationQuant input_quant;  // how the fp32 input is quantized (calibrated beforehand)
  bool relu = false;            // y = max(y, 0) after the bias
  // kAuto and kDirect: the direct lowering (kAuto falls back to im2col when the padded
  // copy is too large for 32-bit offsets); kIm2col: uint8 im2col tiles.
  ConvLowering lowering = ConvLowering::kAuto;
};

// A convolution layer: the weights are PyTorch's weight.view(O, C*kh*kw), quantized.
// Immutable after Create; Run is const and may be called from several threads at once.
class Int8Conv2d {
 public:
  // Errors (InvalidArgument): invalid geometry or input quant, weights with other than
  // g.k() columns, a non-empty bias whose size is not the number of output channels;
  // (OutOfRange) kDirect on an input too large for 32-bit offsets.
  static StatusOr<Int8Conv2d> Create(Int8Weights weights, const Conv2dGeometry& g, std::vector<float> bias = {},
                                     const Int8Conv2dOptions& options = {});

  // Convolves input [batch, C, H, W] into output [batch, O, out_h, out_w], both NCHW and
  // not overlapping. Scratch (the quantized image, im2col tiles) belongs to the calling
  // and worker threads and is reused across calls; it only grows.
  // Errors (InvalidArgument): null pointers, batch < 1.
  Status Run(const float* input, int64_t batch, float* output, const Int8Options& options = {}) const;
  // The same on an input already quantized with input_quant.
  Status RunQuantized(const uint8_t* input, int64_t batch, float* output, const Int8Options& options = {}) const;

  const Conv2dGeometry& geometry() const { return geometry_; }
  const Int8Weights& weights() const { return weights_; }
  const Int8Conv2dOptions& options() const { return options_; }
  int64_t out_channels() const { return weights_.rows; }
  // kIm2col or kDirect (never kAuto): the lowering Run uses for non-pointwise geometry.
  ConvLowering lowering() const { return lowering_; }

  // The direct lowering's padded copy: planes of rows x pitch bytes, one per (channel, row
  // phase, column phase). X[k, p] = planes[tap offset of k + oh * pitch + ow].
  struct PlaneLayout {
    int64_t rows = 0;
    int64_t pitch = 0;
    int64_t planes = 0;
    int64_t buffer_bytes = 0;  // head + planes * rows * pitch + slack
  };

 private:
  Int8Conv2d() = default;
  Int8GemmSlice BaseSlice() const;  // quantization, bias, relu and rows of every product
  void RunImage(const uint8_t* image, float* output, const Int8Options& options) const;
  void RunIm2col(const uint8_t* image, float* output, const Int8Options& options) const;
  // The product on a padded copy filled by FillPlanes (int8_conv2d.cc).
  void RunDirect(const uint8_t* planes, float* output, const Int8Options& options) const;

  Int8Weights weights_;
  Conv2dGeometry geometry_;
  std::vector<float> bias_;  // empty: no bias
  Int8Conv2dOptions options_;
  ConvLowering lowering_ = ConvLowering::kIm2col;
  PlaneLayout layout_;              // kDirect only
  std::vector<int32_t> tap_offsets_;     // kDirect: offset of X row k in the padded copy
  std::vector<int32_t> column_offsets_;  // kDirect: offset of X column p (oh * pitch + ow)
};

// Writes columns [p_begin, p_end) of the im2col matrix of one quantized CHW image to
// out[k * ld + (p - p_begin)] as Im2col (conv2d.h) does, with `pad` where the tap lies in
// the padding. Precondition: g.Validate() is OK, 0 <= p_begin < p_end <= g.p(),
// ld >= p_end - p_begin.
void Im2colU8(const Conv2dGeometry& g, const uint8_t* image, int64_t p_begin, int64_t p_end, uint8_t pad,
              uint8_t* out, int64_t ld);

}  // namespace acs::kernels
