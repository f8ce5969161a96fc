#include "devices/kernels/int4_linear.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace acs::kernels {
namespace {

constexpr int64_t kRowAlign = 16;  // thread row slices start on multiples of this

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Byte and nibble (0 low, 4 high) of column k within a row.
int64_t ByteOf(int64_t k) { return k / 32 * 16 + k % 16; }
int ShiftOf(int64_t k) { return (k % 32) < 16 ? 0 : 4; }

Int4Weights Allocate(int64_t rows, int64_t cols) {
  Int4Weights w;
  w.rows = rows;
  w.cols = cols;
  w.ld = CeilDiv(cols, 32) * 16;
  w.packed.assign(rows * w.ld + kLowBitWeightSlack, 0x88);  // every nibble 8: value 0
  w.scales.assign(rows, 1.0f);
  return w;
}

void Set(Int4Weights& w, int64_t o, int64_t k, int value) {
  uint8_t& b = w.packed[o * w.ld + ByteOf(k)];
  const int shift = ShiftOf(k);
  b = static_cast<uint8_t>((b & ~(0xf << shift)) | ((value + 8) << shift));
}

// Grow-only transposed-activation buffer of the calling thread.
float* ThreadBuffer(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(floats);
  return buffer.data();
}

}  // namespace

int8_t Int4Weights::at(int64_t o, int64_t k) const {
  return static_cast<int8_t>(((packed[o * ld + ByteOf(k)] >> ShiftOf(k)) & 0xf) - 8);
}

StatusOr<Int4Weights> QuantizeInt4Weights(const DenseView& w) {
  if (w.data == nullptr) return Status::InvalidArgument("int4 weights: null data");
  if (w.rows < 1 || w.cols < 1) return Status::InvalidArgument("int4 weights: rows and cols must be >= 1");
  Int4Weights q = Allocate(w.rows, w.cols);
  for (int64_t o = 0; o < w.rows; ++o) {
    const float* row = w.data + o * w.cols;
    float max_abs = 0.0f;
    for (int64_t k = 0; k < w.cols; ++k) {
      if (!std::isfinite(row[k])) {
        return Status::InvalidArgument("int4 weights: non-finite value in row " + std::to_string(o));
      }
      max_abs = std::max(max_abs, std::abs(row[k]));
    }
    const float scale = max_abs > 0.0f ? max_abs / 7.0f : 1.0f;
    q.scales[o] = scale;
    for (int64_t k = 0; k < w.cols; ++k) {
      Set(q, o, k, static_cast<int>(std::clamp(std::nearbyint(row[k] / scale), -7.0f, 7.0f)));
    }
  }
  return q;
}

StatusOr<Int4Weights> PackInt4Weights(const int8_t* values, int64_t rows, int64_t cols, const float* scales) {
  if (values == nullptr || scales == nullptr) return Status::InvalidArgument("int4 weights: null values or scales");
  if (rows < 1 || cols < 1) return Status::InvalidArgument("int4 weights: rows and cols must be >= 1");
  Int4Weights q = Allocate(rows, cols);
  for (int64_t o = 0; o < rows; ++o) {
    if (!(scales[o] > 0.0f) || !std::isfinite(scales[o])) {
      return Status::InvalidArgument("int4 weights: scale of row " + std::to_string(o) + " is not positive and finite");
    }
    q.scales[o] = scales[o];
    for (int64_t k = 0; k < cols; ++k) {
      const int v = values[o * cols + k];
      if (v < -8 || v > 7) {
        return Status::InvalidArgument("int4 weights: value " + std::to_string(v) + " at row " + std::to_string(o) +
                                       " outside [-8, 7]");
      }
      Set(q, o, k, v);
    }
  }
  return q;
}

std::vector<int8_t> UnpackInt4Weights(const Int4Weights& w) {
  std::vector<int8_t> out(w.rows * w.cols);
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t k = 0; k < w.cols; ++k) out[o * w.cols + k] = w.at(o, k);
  }
  return out;
}

Int4WeightsView ViewOf(const Int4Weights& w) { return {w.rows, w.cols, w.ld, w.packed.data(), w.scales.data()}; }

Status Int4Linear(const Int4Weights& w, const Int4LinearArgs& a, const Int8Options& options) {
  if (a.x == nullptr || a.y == nullptr) return Status::InvalidArgument("int4 linear: x and y must be set");
  if (a.p < 1) return Status::InvalidArgument("int4 linear: p must be >= 1");
  if (a.ldx < a.p || a.ldy < a.p) return Status::InvalidArgument("int4 linear: ldx and ldy must be >= p");
  const Int8KernelTable& table = options.kernels != nullptr ? *options.kernels : Int8Kernels();
  // X^T, each column zero-padded to whole blocks of 32.
  const int64_t ldxt = w.ld * 2;
  float* xt = ThreadBuffer(a.p * ldxt);
  for (int64_t p = 0; p < a.p; ++p) {
    float* dst = xt + p * ldxt;
    for (int64_t k = 0; k < w.cols; ++k) dst[k] = a.x[k * a.ldx + p];
    std::fill(dst + w.cols, dst + ldxt, 0.0f);
  }
  const Int4WeightsView view = ViewOf(w);
  const Int4Slice base{xt, ldxt, a.p, a.y, a.ldy, a.bias, a.relu, 0, w.rows};
  const int64_t macs = w.rows * w.cols * a.p;
  const int64_t per_thread = std::max<int64_t>(1, options.min_macs_per_thread);
  const int64_t units = CeilDiv(w.rows, kRowAlign);
  const int threads = static_cast<int>(
      std::min<int64_t>(units, std::clamp<int64_t>(macs / per_thread, 1, std::max(1, options.threads))));
  if (threads == 1) {
    table.int4_gemv(view, base);
    return Status::Ok();
  }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    Int4Slice s = base;
    s.row_begin = units * t / threads * kRowAlign;
    s.row_end = std::min(w.rows, units * (t + 1) / threads * kRowAlign);
    if (s.row_begin < s.row_end) table.int4_gemv(view, s);
  }
  return Status::Ok();
}

}  // namespace acs::kernels
