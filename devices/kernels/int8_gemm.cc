#include "devices/kernels/int8_gemm.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace acs::kernels {
namespace {

// Row slices of threads start on multiples of this (whole row tiles and 16-row panels of
// every kernel).
constexpr int64_t kRowAlign = 48;
// Column slices start on multiples of this (whole register tiles of every kernel).
constexpr int64_t kColumnAlign = 64;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grow-only kernel scratch of the calling thread, kept across calls so that a layer does
// not pay for page faults on every call.
uint8_t* ThreadScratch(int64_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  if (static_cast<int64_t>(buffer.size()) < bytes) buffer.resize(bytes);
  return buffer.data();
}

const Int8KernelTable& Table(const Int8Options& o) { return o.kernels != nullptr ? *o.kernels : Int8Kernels(); }

Status CheckShape(const char* what, int64_t rows, int64_t cols) {
  if (rows < 1 || cols < 1) return Status::InvalidArgument(std::string(what) + ": rows and cols must be >= 1");
  if (cols > kMaxInt8Cols) {
    return Status::InvalidArgument(std::string(what) + ": " + std::to_string(cols) + " columns, at most " +
                                   std::to_string(kMaxInt8Cols) + " fit int32 accumulation");
  }
  return Status::Ok();
}

Int8Weights Allocate(int64_t rows, int64_t cols) {
  Int8Weights w;
  w.rows = rows;
  w.cols = cols;
  w.ld = CeilDiv(cols, 4) * 4;
  w.values.assign(rows * w.ld + kLowBitWeightSlack, 0);
  w.scales.assign(rows, 1.0f);
  w.row_sums.assign(rows, 0);
  return w;
}

// Row sums and the panel copy, once the values are in place.
void Finish(Int8Weights& w) {
  for (int64_t o = 0; o < w.rows; ++o) {
    int32_t sum = 0;
    for (int64_t k = 0; k < w.cols; ++k) sum += w.at(o, k);
    w.row_sums[o] = sum;
  }
  const int64_t groups = w.ld / 4;
  w.panels.assign(CeilDiv(w.rows, 16) * 16 * w.ld, 0);
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t g = 0; g < groups; ++g) {
      int8_t* dst = &w.panels[((o / 16 * groups + g) * 16 + o % 16) * 4];
      for (int64_t i = 0; i < 4; ++i) dst[i] = w.values[o * w.ld + 4 * g + i];
    }
  }
}

}  // namespace

ActivationQuant ChooseActivationQuant(float min_value, float max_value) {
  const float lo = std::min(min_value, 0.0f), hi = std::max(max_value, 0.0f);
  ActivationQuant q;
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi - lo > 0.0f)) return q;
  q.scale = (hi - lo) / 255.0f;
  q.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / q.scale), 0.0f, 255.0f));
  return q;
}

Status Validate(const ActivationQuant& q) {
  if (!(q.scale > 0.0f) || !std::isfinite(q.scale)) {
    return Status::InvalidArgument("int8: activation scale must be positive and finite");
  }
  if (q.zero_point < 0 || q.zero_point > 255) {
    return Status::InvalidArgument("int8: activation zero point must be in [0, 255]");
  }
  return Status::Ok();
}

StatusOr<Int8Weights> QuantizeInt8Weights(const DenseView& w) {
  if (w.data == nullptr) return Status::InvalidArgument("int8 weights: null data");
  ACS_RETURN_IF_ERROR(CheckShape("int8 weights", w.rows, w.cols));
  Int8Weights q = Allocate(w.rows, w.cols);
  for (int64_t o = 0; o < w.rows; ++o) {
    const float* row = w.data + o * w.cols;
    float max_abs = 0.0f;
    for (int64_t k = 0; k < w.cols; ++k) {
      if (!std::isfinite(row[k])) {
        return Status::InvalidArgument("int8 weights: non-finite value in row " + std::to_string(o));
      }
      max_abs = std::max(max_abs, std::abs(row[k]));
    }
    const float scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    q.scales[o] = scale;
    for (int64_t k = 0; k < w.cols; ++k) {
      q.values[o * q.ld + k] = static_cast<int8_t>(std::clamp(std::nearbyint(row[k] / scale), -127.0f, 127.0f));
    }
  }
  Finish(q);
  return q;
}

StatusOr<Int8Weights> PackInt8Weights(const int8_t* values, int64_t rows, int64_t cols, const float* scales) {
  if (values == nullptr || scales == nullptr) return Status::InvalidArgument("int8 weights: null values or scales");
  ACS_RETURN_IF_ERROR(CheckShape("int8 weights", rows, cols));
  Int8Weights q = Allocate(rows, cols);
  for (int64_t o = 0; o < rows; ++o) {
    if (!(scales[o] > 0.0f) || !std::isfinite(scales[o])) {
      return Status::InvalidArgument("int8 weights: scale of row " + std::to_string(o) + " is not positive and finite");
    }
    q.scales[o] = scales[o];
    for (int64_t k = 0; k < cols; ++k) {
      const int8_t v = values[o * cols + k];
      if (v == -128) {
        return Status::InvalidArgument("int8 weights: -128 at row " + std::to_string(o) + " (range is [-127, 127])");
      }
      q.values[o * q.ld + k] = v;
    }
  }
  Finish(q);
  return q;
}

Int8WeightsView ViewOf(const Int8Weights& w) {
  return {w.rows, w.cols, w.ld, w.values.data(), w.panels.data(), w.scales.data(), w.row_sums.data()};
}

void QuantizeActivations(const float* x, int64_t n, const ActivationQuant& quant, uint8_t* q,
                         const Int8KernelTable* kernels) {
  const Int8KernelTable& t = kernels != nullptr ? *kernels : Int8Kernels();
  t.quantize_u8(x, n, 1.0f / quant.scale, quant.zero_point, q);
}

void RunInt8Gemm(const Int8Weights& w, const Int8GemmSlice& base, const Int8Options& options) {
  const Int8KernelTable& table = Table(options);
  const Int8WeightsView view = ViewOf(w);
  const int64_t p = base.p_end - base.p_begin;
  const int64_t macs = w.rows * w.cols * p;
  const int64_t per_thread = std::max<int64_t>(1, options.min_macs_per_thread);
  int threads = static_cast<int>(std::clamp<int64_t>(macs / per_thread, 1, std::max(1, options.threads)));
  const bool split_columns = p >= threads * kColumnAlign;
  const int64_t units = split_columns ? CeilDiv(p, kColumnAlign) : CeilDiv(w.rows, kRowAlign);
  threads = static_cast<int>(std::min<int64_t>(threads, units));
  if (threads == 1) {
    Int8GemmSlice s = base;
    s.scratch = ThreadScratch(table.gemm_scratch_bytes(w.cols, p));
    table.gemm(view, s);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    Int8GemmSlice s = base;
    const int64_t begin = units * t / threads, end = units * (t + 1) / threads;
    if (split_columns) {
      s.p_begin = base.p_begin + begin * kColumnAlign;
      s.p_end = std::min(base.p_end, base.p_begin + end * kColumnAlign);
    } else {
      s.row_begin = begin * kRowAlign;
      s.row_end = std::min(w.rows, end * kRowAlign);
    }
    if (s.p_begin < s.p_end && s.row_begin < s.row_end) {
      s.scratch = ThreadScratch(table.gemm_scratch_bytes(w.cols, s.p_end - s.p_begin));
      table.gemm(view, s);
    }
  }
}

Status Int8Gemm(const Int8Weights& w, const Int8GemmArgs& a, const Int8Options& options) {
  if ((a.x == nullptr) == (a.xq == nullptr)) return Status::InvalidArgument("int8 gemm: set exactly one of x and xq");
  if (a.y == nullptr) return Status::InvalidArgument("int8 gemm: y must be set");
  if (a.p < 1) return Status::InvalidArgument("int8 gemm: p must be >= 1");
  if (a.ldx < a.p || a.ldy < a.p) return Status::InvalidArgument("int8 gemm: ldx and ldy must be >= p");
  ACS_RETURN_IF_ERROR(Validate(a.quant));
  Int8GemmSlice s;
  s.x = a.xq;
  s.xf = a.x;  // the kernels quantize fp32 X while they pack it
  s.ldx = a.ldx;
  s.x_zero_point = a.quant.zero_point;
  s.x_scale = a.quant.scale;
  s.y = a.y;
  s.ldy = a.ldy;
  s.bias = a.bias;
  s.relu = a.relu;
  s.p_end = a.p;
  s.row_end = w.rows;
  RunInt8Gemm(w, s, options);
  return Status::Ok();
}

}  // namespace acs::kernels
