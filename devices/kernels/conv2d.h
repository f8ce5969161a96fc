// 2-D convolution (NCHW, groups = 1) with packed sparse weights: the input is presented to
// the sparse kernels as X[K x P] (K = C * kernel_h * kernel_w, P = output positions), either
// by im2col or, without expanding it K-fold, by the direct lowering below. A 1x1, stride-1,
// unpadded convolution needs neither: the image is X itself.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "devices/kernels/sparse_formats.h"
#include "devices/kernels/spmm.h"

namespace acs::kernels {

struct Conv2dGeometry {
  int64_t channels = 0;    // C: input channels
  int64_t height = 0;      // input height
  int64_t width = 0;       // input width
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_h = 0;       // zero rows added above and below
  int64_t pad_w = 0;       // zero columns added left and right
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;

  int64_t out_h() const;
  int64_t out_w() const;
  int64_t k() const { return channels * kernel_h * kernel_w; }  // rows of X
  int64_t p() const { return out_h() * out_w(); }               // columns of X per image
  bool pointwise() const;  // 1x1, stride 1, no padding: the image is X
  // Errors (InvalidArgument): non-positive sizes, strides or dilations, negative padding,
  // an empty output.
  Status Validate() const;
};

// Writes columns [p_begin, p_end) of the im2col matrix of one CHW image to
// out[k * ld + (p - p_begin)], with k = (c * kernel_h + i) * kernel_w + j and
// p = oh * out_w + ow, holding image[c][oh*stride_h - pad_h + i*dilation_h]
// [ow*stride_w - pad_w + j*dilation_w], or 0 where that lies in the padding.
// Precondition: g.Validate() is OK, 0 <= p_begin < p_end <= g.p(), ld >= p_end - p_begin.
void Im2col(const Conv2dGeometry& g, const float* image, int64_t p_begin, int64_t p_end, float* out,
            int64_t ld);

// How the input becomes X.
enum class ConvLowering {
  kAuto,    // kDirect for 1xN block and CSR weights, kIm2col for N:M
  kIm2col,  // X expanded tile by tile (K x tile floats per tile), any weight format
  kDirect,  // X rows read in place from a zero-padded copy of the input split into stride
            // phases (row k = the plane of its channel and phase, shifted by its kernel
            // tap); outputs are computed on that copy's row pitch and compacted. 1xN block
            // and CSR weights only, as their column indices are rewritten to plane offsets.
};

struct Conv2dOptions {
  ConvLowering lowering = ConvLowering::kAuto;
};

// A convolution layer: the packed weights are PyTorch's weight.view(O, C*kh*kw).
// Immutable after Create; Run is const and may be called from several threads at once.
class SparseConv2d {
 public:
  // Errors (InvalidArgument): invalid geometry, weights with other than g.k() columns,
  // a non-empty bias whose size is not the number of output channels, kDirect with N:M
  // weights; (OutOfRange) kDirect on an input too large for 32-bit offsets.
  static StatusOr<SparseConv2d> Create(SparseWeights weights, const Conv2dGeometry& g,
                                       std::vector<float> bias = {}, const Conv2dOptions& options = {});

  // Convolves input [batch, C, H, W] into output [batch, O, out_h, out_w], both NCHW and
  // not overlapping. Scratch (im2col tiles or the plane copy, output tiles) belongs to
  // the calling and worker threads and is reused across calls; it only grows.
  // Errors (InvalidArgument): null pointers, batch < 1.
  Status Run(const float* input, int64_t batch, float* output, const SpmmOptions& options = {}) const;

  const Conv2dGeometry& geometry() const { return geometry_; }
  const SparseWeights& weights() const { return weights_; }
  int64_t out_channels() const { return Rows(weights_); }
  // kIm2col or kDirect (never kAuto): the lowering Run uses for non-pointwise geometry.
  ConvLowering lowering() const { return lowering_; }

  // Where the direct lowering puts things: planes of rows x pitch floats, one per
  // (channel, row phase, column phase).
  struct PlaneLayout {
    int64_t rows = 0;
    int64_t pitch = 0;            // floats per plane row; outputs use it as their row pitch
    int64_t planes = 0;
    int64_t buffer_floats = 0;    // planes * rows * pitch + slack read by pitch columns
    int64_t virtual_columns = 0;  // (out_h - 1) * pitch + out_w
  };

 private:
  SparseConv2d() = default;
  Status RunIm2col(const float* input, int64_t batch, float* output, const SpmmOptions& options) const;
  Status RunDirect(const float* input, int64_t batch, float* output, const SpmmOptions& options) const;

  SparseWeights weights_;
  Conv2dGeometry geometry_;
  std::vector<float> bias_;    // empty: no bias
  ConvLowering lowering_ = ConvLowering::kIm2col;
  SparseWeights direct_;       // kDirect: weights_ with column indices replaced by plane offsets
  PlaneLayout layout_;         // kDirect only
};

}  // namespace acs::kernels
