#include "devices/kernels/conv2d.h"
#include "devices/kernels/conv_lowering.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

namespace acs::kernels {
namespace {

using lowering::CeilDiv;
using lowering::FloorDiv;
using lowering::PhaseUsed;
using lowering::TapOffset;

// An im2col tile (K x width) or direct output tile (O x width) holds about this many floats
// (256 KiB), so it stays in L2 while the kernel sweeps it once per row-block.
constexpr int64_t kTileFloats = 64 * 1024;
// Tile widths are multiples of this (whole register tiles of every kernel).
constexpr int64_t kTileAlign = 96;
constexpr int64_t kMaxTileWidth = 960;

// Floor division for a possibly negative numerator and positive b.

// Grow-only scratch of the calling thread, kept across calls so that a layer does not pay
// for page faults and zeroing on every call. Buffers in different slots may be live at once.
float* Scratch(int slot, int64_t floats) {
  thread_local std::vector<float> buffers[2];
  std::vector<float>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < floats) b.resize(floats);
  return b.data();
}

// Runs the kernel for `w` over every row of the slice's column range.
void RunKernel(const SparseWeights& w, const KernelTable& table, SpmmSlice s) {
  if (const auto* m = std::get_if<BlockSparseMatrix>(&w)) {
    s.row_end = m->num_row_blocks();
    table.block_sparse(ViewOf(*m), s);
  } else if (const auto* c = std::get_if<CsrMatrix>(&w)) {
    s.row_end = c->rows;
    table.csr(ViewOf(*c), s);
  } else {
    const auto& n = std::get<NmMatrix>(w);
    s.row_end = n.rows;
    table.nm(ViewOf(n), s);
  }
}

}  // namespace

int64_t Conv2dGeometry::out_h() const {
  return (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
}

int64_t Conv2dGeometry::out_w() const {
  return (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
}

bool Conv2dGeometry::pointwise() const {
  return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
}

Status Conv2dGeometry::Validate() const {
  if (channels < 1 || height < 1 || width < 1 || kernel_h < 1 || kernel_w < 1) {
    return Status::InvalidArgument("conv2d: channels, input and kernel sizes must be >= 1");
  }
  if (stride_h < 1 || stride_w < 1 || dilation_h < 1 || dilation_w < 1) {
    return Status::InvalidArgument("conv2d: strides and dilations must be >= 1");
  }
  if (pad_h < 0 || pad_w < 0) return Status::InvalidArgument("conv2d: padding must be >= 0");
  if (height + 2 * pad_h < dilation_h * (kernel_h - 1) + 1 || width + 2 * pad_w < dilation_w * (kernel_w - 1) + 1) {
    return Status::InvalidArgument("conv2d: the kernel is larger than the padded input");
  }
  return Status::Ok();
}

void Im2col(const Conv2dGeometry& g, const float* image, int64_t p_begin, int64_t p_end, float* out,
            int64_t ld) {
  lowering::Im2colOf<float>(g, image, p_begin, p_end, 0.0f, out, ld);
}

namespace {

// Column tile width for `rows` floats per column, at least one tile per thread.
int64_t TileWidth(int64_t rows, int64_t columns, int64_t batch, int threads) {
  int64_t width = std::clamp(kTileFloats / rows / kTileAlign * kTileAlign, kTileAlign, kMaxTileWidth);
  if (batch * CeilDiv(columns, width) < threads) width = CeilDiv(CeilDiv(columns, threads), 16) * 16;
  return std::min(width, columns);
}

SparseConv2d::PlaneLayout MakeLayout(const Conv2dGeometry& g) {
  SparseConv2d::PlaneLayout l;
  l.rows = CeilDiv(g.height + 2 * g.pad_h, g.stride_h);
  l.pitch = CeilDiv(g.width + 2 * g.pad_w, g.stride_w);
  l.planes = g.channels * g.stride_h * g.stride_w;
  l.buffer_floats = l.planes * l.rows * l.pitch + l.pitch + 64;
  l.virtual_columns = (g.out_h() - 1) * l.pitch + g.out_w();
  return l;
}

// Plane (c, a, b) row r, column t = padded input [c][r * stride_h + a][t * stride_w + b].
// Planes of phases no tap reads (e.g. 3 of 4 for a 1x1 stride-2 conv) are left alone.
void FillPlanes(const Conv2dGeometry& g, const SparseConv2d::PlaneLayout& l, const float* image, int64_t c,
                float* planes) {
  for (int64_t a = 0; a < g.stride_h; ++a) {
    if (!PhaseUsed(a, g.kernel_h, g.dilation_h, g.stride_h)) continue;
    for (int64_t b = 0; b < g.stride_w; ++b) {
      if (!PhaseUsed(b, g.kernel_w, g.dilation_w, g.stride_w)) continue;
      float* plane = planes + ((c * g.stride_h + a) * g.stride_w + b) * l.rows * l.pitch;
      const int64_t shift = b - g.pad_w;  // input column = t * stride_w + shift
      const int64_t lo = std::min(l.pitch, CeilDiv(std::max<int64_t>(0, -shift), g.stride_w));
      const int64_t hi = std::clamp(FloorDiv(g.width - 1 - shift, g.stride_w) + 1, lo, l.pitch);
      for (int64_t r = 0; r < l.rows; ++r) {
        float* dst = plane + r * l.pitch;
        const int64_t ih = r * g.stride_h + a - g.pad_h;
        if (ih < 0 || ih >= g.height) {
          std::fill(dst, dst + l.pitch, 0.0f);
          continue;
        }
        const float* src = image + (c * g.height + ih) * g.width;
        std::fill(dst, dst + lo, 0.0f);
        for (int64_t t = lo; t < hi; ++t) dst[t] = src[t * g.stride_w + shift];
        std::fill(dst + hi, dst + l.pitch, 0.0f);
      }
    }
  }
}

// Copies the valid columns of an output tile (virtual columns [q0, q0 + width) on the plane
// pitch) into NCHW output rows.
void CompactTile(const Conv2dGeometry& g, const SparseConv2d::PlaneLayout& l, int64_t rows, const float* tile,
                 int64_t q0, int64_t width, float* out) {
  const int64_t ow_n = g.out_w(), p = g.p();
  for (int64_t q = q0; q < q0 + width;) {
    const int64_t oh = q / l.pitch, ow = q - oh * l.pitch;
    const int64_t n = std::min(l.pitch - ow, q0 + width - q);
    const int64_t valid = std::min(ow + n, ow_n) - ow;
    for (int64_t o = 0; valid > 0 && o < rows; ++o) {
      std::copy(tile + o * width + (q - q0), tile + o * width + (q - q0) + valid, out + o * p + oh * ow_n + ow);
    }
    q += n;
  }
}

template <class Matrix>
Matrix WithColumns(Matrix m, const Conv2dGeometry& g, const SparseConv2d::PlaneLayout& l) {
  for (int32_t& col : m.col_idx) col = static_cast<int32_t>(TapOffset(g, l, col));
  return m;
}

}  // namespace

StatusOr<SparseConv2d> SparseConv2d::Create(SparseWeights weights, const Conv2dGeometry& g,
                                            std::vector<float> bias, const Conv2dOptions& options) {
  ACS_RETURN_IF_ERROR(g.Validate());
  if (Cols(weights) != g.k()) {
    return Status::InvalidArgument("conv2d: weights have " + std::to_string(Cols(weights)) +
                                   " columns, the geometry needs C*kh*kw = " + std::to_string(g.k()));
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != Rows(weights)) {
    return Status::InvalidArgument("conv2d: bias has " + std::to_string(bias.size()) + " values for " +
                                   std::to_string(Rows(weights)) + " output channels");
  }
  SparseConv2d conv;
  conv.geometry_ = g;
  conv.bias_ = std::move(bias);
  const bool is_nm = std::holds_alternative<NmMatrix>(weights);
  const PlaneLayout layout = MakeLayout(g);
  const bool fits = layout.buffer_floats <= std::numeric_limits<int32_t>::max();
  if (options.lowering == ConvLowering::kDirect) {
    if (is_nm) return Status::InvalidArgument("conv2d: the direct lowering needs 1xN block or CSR weights");
    if (!fits) return Status::OutOfRange("conv2d: input too large for the direct lowering");
  }
  if (options.lowering != ConvLowering::kIm2col && !is_nm && fits) {
    conv.lowering_ = ConvLowering::kDirect;
    conv.layout_ = layout;
    if (const auto* m = std::get_if<BlockSparseMatrix>(&weights)) {
      conv.direct_ = WithColumns(*m, g, layout);
    } else {
      conv.direct_ = WithColumns(std::get<CsrMatrix>(weights), g, layout);
    }
  }
  conv.weights_ = std::move(weights);
  return conv;
}

Status SparseConv2d::Run(const float* input, int64_t batch, float* output, const SpmmOptions& options) const {
  if (input == nullptr || output == nullptr) return Status::InvalidArgument("conv2d: null input or output");
  if (batch < 1) return Status::InvalidArgument("conv2d: batch must be >= 1");
  const Conv2dGeometry& g = geometry_;
  if (g.pointwise()) {
    const int64_t k = g.k(), p = g.p(), o = out_channels();
    for (int64_t b = 0; b < batch; ++b) {
      const SpmmArgs args{input + b * k * p, p, output + b * o * p, p, p, bias_.empty() ? nullptr : bias_.data()};
      ACS_RETURN_IF_ERROR(Spmm(weights_, args, options));
    }
    return Status::Ok();
  }
  return lowering_ == ConvLowering::kDirect ? RunDirect(input, batch, output, options)
                                            : RunIm2col(input, batch, output, options);
}

Status SparseConv2d::RunIm2col(const float* input, int64_t batch, float* output, const SpmmOptions& options) const {
  const Conv2dGeometry& g = geometry_;
  const int64_t k = g.k(), p = g.p(), o = out_channels();
  const KernelTable& table = options.kernels != nullptr ? *options.kernels : Kernels();
  const int threads = ThreadsFor(StoredValues(weights_) * p * batch, options);
  const int64_t tile = TileWidth(k, p, batch, threads);
  const int64_t tiles = CeilDiv(p, tile);
  const int64_t items = batch * tiles;
  const int64_t image_size = g.channels * g.height * g.width;
  const float* bias = bias_.empty() ? nullptr : bias_.data();
#pragma omp parallel num_threads(threads) if (threads > 1 && items > 1)
  {
    float* scratch = Scratch(0, k * tile);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / tiles;
      const int64_t p0 = (item % tiles) * tile;
      const int64_t width = std::min(tile, p - p0);
      Im2col(g, input + b * image_size, p0, p0 + width, scratch, width);
      RunKernel(weights_, table, SpmmSlice{scratch, width, output + b * o * p + p0, p, bias, 0, width, 0, 0});
    }
  }
  return Status::Ok();
}

Status SparseConv2d::RunDirect(const float* input, int64_t batch, float* output, const SpmmOptions& options) const {
  const Conv2dGeometry& g = geometry_;
  const PlaneLayout& l = layout_;
  const int64_t o = out_channels(), p = g.p();
  const KernelTable& table = options.kernels != nullptr ? *options.kernels : Kernels();
  const int threads = ThreadsFor(StoredValues(weights_) * l.virtual_columns * batch, options);
  const int64_t tile = TileWidth(o, l.virtual_columns, batch, threads);
  const int64_t tiles = CeilDiv(l.virtual_columns, tile);
  const int64_t image_size = g.channels * g.height * g.width;
  const float* bias = bias_.empty() ? nullptr : bias_.data();
  float* planes = Scratch(0, l.buffer_floats);  // the slack past the planes is only ever read
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* scratch = Scratch(1, o * tile);
    for (int64_t b = 0; b < batch; ++b) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < g.channels; ++c) FillPlanes(g, l, input + b * image_size, c, planes);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t q0 = t * tile;
        const int64_t width = std::min(tile, l.virtual_columns - q0);
        if (l.pitch == g.out_w()) {  // no columns to drop: write the output in place
          RunKernel(direct_, table, SpmmSlice{planes + q0, 1, output + b * o * p + q0, p, bias, 0, width, 0, 0});
          continue;
        }
        RunKernel(direct_, table, SpmmSlice{planes + q0, 1, scratch, width, bias, 0, width, 0, 0});
        CompactTile(g, l, o, scratch, q0, width, output + b * o * p);
      }
    }
  }
  return Status::Ok();
}

}  // namespace acs::kernels
