#include "devices/kernels/int8_conv2d.h"
#include "devices/kernels/conv_lowering.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace acs::kernels {
namespace {

// An im2col tile (K x width bytes) holds about this many bytes, so it stays in L2 while the
// kernel packs it.
constexpr int64_t kTileBytes = 128 * 1024;
constexpr int64_t kTileAlign = 64;  // tile widths are whole column tiles of every kernel
constexpr int64_t kMaxTileWidth = 1024;

using lowering::CeilDiv;
using lowering::FloorDiv;
using lowering::PhaseUsed;
using lowering::TapOffset;

// Grow-only buffers of the calling thread, kept across calls. Slot 0: the quantized image;
// slot 1: an im2col tile or the padded planes.
uint8_t* ThreadBuffer(int slot, int64_t bytes) {
  thread_local std::vector<uint8_t> buffers[2];
  std::vector<uint8_t>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < bytes) b.resize(bytes);
  return b.data();
}

// Grow-only float row of the calling thread (strided pixels gathered for quantization).
float* ThreadRow(int64_t floats) {
  thread_local std::vector<float> row;
  if (static_cast<int64_t>(row.size()) < floats) row.resize(floats);
  return row.data();
}

using PlaneLayout = Int8Conv2d::PlaneLayout;

// Bytes before the planes: kernels may form (never dereference) addresses up to 15 bytes
// before a column run.
constexpr int64_t kPlaneHead = 64;

PlaneLayout MakeLayout(const Conv2dGeometry& g) {
  PlaneLayout l;
  l.rows = CeilDiv(g.height + 2 * g.pad_h, g.stride_h);
  l.pitch = CeilDiv(g.width + 2 * g.pad_w, g.stride_w);
  l.planes = g.channels * g.stride_h * g.stride_w;
  l.buffer_bytes = kPlaneHead + l.planes * l.rows * l.pitch + l.pitch + 64;
  return l;
}

// Plane (c, a, b) row r, column t = padded image [c][r * stride_h + a][t * stride_w + b],
// `pad` outside the image. Planes of phases no tap reads are left alone. The image's pixels
// go through copy(dst, src, n, stride): dst[t] = src[t * stride] for t < n, as bytes.
template <class Pixel, class Copy>
void FillPlanes(const Conv2dGeometry& g, const PlaneLayout& l, const Pixel* image, uint8_t pad, uint8_t* planes,
                Copy copy) {
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t a = 0; a < g.stride_h; ++a) {
      if (!PhaseUsed(a, g.kernel_h, g.dilation_h, g.stride_h)) continue;
      for (int64_t b = 0; b < g.stride_w; ++b) {
        if (!PhaseUsed(b, g.kernel_w, g.dilation_w, g.stride_w)) continue;
        uint8_t* plane = planes + ((c * g.stride_h + a) * g.stride_w + b) * l.rows * l.pitch;
        const int64_t shift = b - g.pad_w;  // image column = t * stride_w + shift
        const int64_t lo = std::min(l.pitch, CeilDiv(std::max<int64_t>(0, -shift), g.stride_w));
        const int64_t hi = std::clamp(FloorDiv(g.width - 1 - shift, g.stride_w) + 1, lo, l.pitch);
        for (int64_t r = 0; r < l.rows; ++r) {
          uint8_t* dst = plane + r * l.pitch;
          const int64_t ih = r * g.stride_h + a - g.pad_h;
          if (ih < 0 || ih >= g.height) {
            std::memset(dst, pad, l.pitch);
            continue;
          }
          std::memset(dst, pad, lo);
          copy(dst + lo, image + (c * g.height + ih) * g.width + lo * g.stride_w + shift, hi - lo, g.stride_w);
          std::memset(dst + hi, pad, l.pitch - hi);
        }
      }
    }
  }
}

}  // namespace

void Im2colU8(const Conv2dGeometry& g, const uint8_t* image, int64_t p_begin, int64_t p_end, uint8_t pad,
              uint8_t* out, int64_t ld) {
  lowering::Im2colOf<uint8_t>(g, image, p_begin, p_end, pad, out, ld);
}

StatusOr<Int8Conv2d> Int8Conv2d::Create(Int8Weights weights, const Conv2dGeometry& g, std::vector<float> bias,
                                        const Int8Conv2dOptions& options) {
  ACS_RETURN_IF_ERROR(g.Validate());
  ACS_RETURN_IF_ERROR(Validate(options.input_quant));
  if (weights.cols != g.k()) {
    return Status::InvalidArgument("int8 conv2d: weights have " + std::to_string(weights.cols) +
                                   " columns, the geometry needs C*kh*kw = " + std::to_string(g.k()));
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != weights.rows) {
    return Status::InvalidArgument("int8 conv2d: bias has " + std::to_string(bias.size()) + " values for " +
                                   std::to_string(weights.rows) + " output channels");
  }
  Int8Conv2d conv;
  const PlaneLayout layout = MakeLayout(g);
  const bool fits = layout.buffer_bytes <= std::numeric_limits<int32_t>::max();
  if (options.lowering == ConvLowering::kDirect && !fits) {
    return Status::OutOfRange("int8 conv2d: input too large for the direct lowering");
  }
  if (options.lowering != ConvLowering::kIm2col && fits) {
    conv.lowering_ = ConvLowering::kDirect;
    conv.layout_ = layout;
    conv.tap_offsets_.resize(g.k());
    for (int64_t k = 0; k < g.k(); ++k) conv.tap_offsets_[k] = static_cast<int32_t>(TapOffset(g, layout, k));
    conv.column_offsets_.resize(g.p());
    for (int64_t p = 0; p < g.p(); ++p) {
      conv.column_offsets_[p] = static_cast<int32_t>(p / g.out_w() * layout.pitch + p % g.out_w());
    }
  }
  conv.weights_ = std::move(weights);
  conv.geometry_ = g;
  conv.bias_ = std::move(bias);
  conv.options_ = options;
  return conv;
}

Status Int8Conv2d::Run(const float* input, int64_t batch, float* output, const Int8Options& options) const {
  if (input == nullptr || output == nullptr) return Status::InvalidArgument("int8 conv2d: null input or output");
  if (batch < 1) return Status::InvalidArgument("int8 conv2d: batch must be >= 1");
  const Conv2dGeometry& g = geometry_;
  const int64_t image_size = g.channels * g.height * g.width;
  const ActivationQuant& q = options_.input_quant;
  const Int8KernelTable& table = options.kernels != nullptr ? *options.kernels : Int8Kernels();
  for (int64_t b = 0; b < batch; ++b) {
    const float* in = input + b * image_size;
    float* out = output + b * out_channels() * g.p();
    if (g.pointwise()) {  // the kernels quantize the image while they pack it
      Int8GemmSlice s = BaseSlice();
      s.xf = in;
      s.ldx = g.p();
      s.y = out;
      s.ldy = g.p();
      s.p_end = g.p();
      RunInt8Gemm(weights_, s, options);
      continue;
    }
    // Strided: quantize only the pixels the planes hold. (Stride 1 holds them all; one pass
    // over the whole image is then cheaper than one call per plane row.)
    if (lowering_ == ConvLowering::kDirect && (g.stride_h > 1 || g.stride_w > 1)) {
      uint8_t* planes = ThreadBuffer(1, layout_.buffer_bytes);
      const float inv_scale = 1.0f / q.scale;
      FillPlanes(g, layout_, in, static_cast<uint8_t>(q.zero_point), planes + kPlaneHead,
                 [&](uint8_t* dst, const float* src, int64_t n, int64_t stride) {
                   if (stride != 1) {
                     float* row = ThreadRow(n);
                     for (int64_t t = 0; t < n; ++t) row[t] = src[t * stride];
                     src = row;
                   }
                   table.quantize_u8(src, n, inv_scale, q.zero_point, dst);
                 });
      RunDirect(planes, out, options);
      continue;
    }
    uint8_t* image = ThreadBuffer(0, image_size);
    QuantizeActivations(in, image_size, q, image, &table);
    RunImage(image, out, options);
  }
  return Status::Ok();
}

Status Int8Conv2d::RunQuantized(const uint8_t* input, int64_t batch, float* output, const Int8Options& options) const {
  if (input == nullptr || output == nullptr) return Status::InvalidArgument("int8 conv2d: null input or output");
  if (batch < 1) return Status::InvalidArgument("int8 conv2d: batch must be >= 1");
  const Conv2dGeometry& g = geometry_;
  for (int64_t b = 0; b < batch; ++b) {
    RunImage(input + b * g.channels * g.height * g.width, output + b * out_channels() * g.p(), options);
  }
  return Status::Ok();
}

void Int8Conv2d::RunImage(const uint8_t* image, float* output, const Int8Options& options) const {
  const Conv2dGeometry& g = geometry_;
  if (g.pointwise()) {
    Int8GemmSlice base = BaseSlice();
    base.x = image;
    base.ldx = g.p();
    base.y = output;
    base.ldy = g.p();
    base.p_end = g.p();
    RunInt8Gemm(weights_, base, options);
  } else if (lowering_ == ConvLowering::kDirect) {
    uint8_t* planes = ThreadBuffer(1, layout_.buffer_bytes);
    FillPlanes(g, layout_, image, static_cast<uint8_t>(options_.input_quant.zero_point), planes + kPlaneHead,
               [](uint8_t* dst, const uint8_t* src, int64_t n, int64_t stride) {
                 if (stride == 1) {
                   std::memcpy(dst, src, n);
                 } else {
                   for (int64_t t = 0; t < n; ++t) dst[t] = src[t * stride];
                 }
               });
    RunDirect(planes, output, options);
  } else {
    RunIm2col(image, output, options);
  }
}

void Int8Conv2d::RunIm2col(const uint8_t* image, float* output, const Int8Options& options) const {
  const Conv2dGeometry& g = geometry_;
  const Int8GemmSlice base = BaseSlice();
  const int64_t k = g.k(), p = g.p();
  const int64_t tile = std::min(p, std::clamp(kTileBytes / k / kTileAlign * kTileAlign, kTileAlign, kMaxTileWidth));
  const int64_t tiles = CeilDiv(p, tile);
  const int threads = static_cast<int>(std::min<int64_t>(tiles, std::max(1, options.threads)));
  Int8Options single = options;
  single.threads = 1;
  const uint8_t pad = static_cast<uint8_t>(options_.input_quant.zero_point);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t p0 = t * tile, width = std::min(tile, p - p0);
    uint8_t* cols = ThreadBuffer(1, k * width);
    Im2colU8(g, image, p0, p0 + width, pad, cols, width);
    Int8GemmSlice s = base;
    s.x = cols;
    s.ldx = width;
    s.y = output + p0;
    s.ldy = p;
    s.p_end = width;
    RunInt8Gemm(weights_, s, single);
  }
}

void Int8Conv2d::RunDirect(const uint8_t* planes, float* output, const Int8Options& options) const {
  Int8GemmSlice s = BaseSlice();
  s.x = planes + kPlaneHead;
  s.x_rows = tap_offsets_.data();
  s.x_cols = column_offsets_.data();
  s.y = output;
  s.ldy = geometry_.p();
  s.p_end = geometry_.p();
  RunInt8Gemm(weights_, s, options);
}

Int8GemmSlice Int8Conv2d::BaseSlice() const {
  Int8GemmSlice base;
  base.x_zero_point = options_.input_quant.zero_point;
  base.x_scale = options_.input_quant.scale;
  base.bias = bias_.empty() ? nullptr : bias_.data();
  base.relu = options_.relu;
  base.row_end = weights_.rows;
  return base;
}

}  // namespace acs::kernels
