// The low-precision kernels of one instruction set (int8 GEMM and depthwise convolution with
// uint8 activations and int8 weights; int4 weight-only GEMV with fp32 activations), as a table of function
// pointers, and the choice of the table for this CPU, made once at start-up.
//
// The int8 tables compute bit-identical results: the accumulation is exact in int32 and
// every table dequantizes with the same float operations (one FMA). The int4 tables agree
// with the scalar table up to float rounding order. tests/devices/int8_*_test.cc check both.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/kernels/kernel_table.h"

namespace acs::kernels {

// Bytes readable past the last weight row of a packed int8 or int4 matrix (zero-filled),
// so that kernels may load whole vectors at a row's tail.
constexpr int64_t kLowBitWeightSlack = 64;

// What a kernel reads of packed int8 weights (Int8Weights, int8_gemm.h). Plain pointers:
// the per-ISA files then call no inline code shared with other files.
struct Int8WeightsView {
  int64_t rows;             // O
  int64_t cols;             // K
  int64_t ld;               // bytes per row: cols rounded up to a multiple of 4, tail zero
  const int8_t* values;     // rows * ld values in [-127, 127], then kLowBitWeightSlack zeros
  const int8_t* panels;     // the same values as panels of 16 rows, ceil(rows / 16) * 16 * ld
                            // bytes: panel j, group g = k / 4, row r, i = k % 4 at
                            // ((j * ld / 4 + g) * 16 + r) * 4 + i; rows past O zero
  const float* scales;      // O per-row scales: weight = scales[o] * value
  const int32_t* row_sums;  // O sums of each row's values (the zero-point correction)
};

// The part of Y = dequant(Wq Xq) (+ bias, relu) one call computes: rows [row_begin,
// row_end) times columns [p_begin, p_end), where
//   y[o, p] = fma(float(sum_k w[o,k] (x[k,p] - x_zero_point)), scales[o] * x_scale, bias[o])
// (bias 0 when null), then max(y, 0) with relu. Slices with disjoint rows or columns may
// run concurrently when each has its own scratch.
struct Int8GemmSlice {
  // Xq[K x P]: element (k, p) at x[row(k) + col(p)], row(k) = x_rows[k] or k * ldx,
  // col(p) = x_cols[p] or p. The offset tables serve the direct conv lowering.
  const uint8_t* x = nullptr;
  int64_t ldx = 0;
  const int32_t* x_rows = nullptr;  // K row offsets, or null
  const int32_t* x_cols = nullptr;  // column offsets (at least p_end), or null
  // Or fp32 X, row k at xf + k * ldx (x, x_rows, x_cols unused), quantized on the fly as
  // quantize_u8 does with inv_scale = 1.0f / x_scale and x_zero_point.
  const float* xf = nullptr;
  int32_t x_zero_point = 0;    // in [0, 255]
  float x_scale = 1.0f;
  float* y = nullptr;          // Y[O x P], row o at y + o * ldy; only the slice is written
  int64_t ldy = 0;
  const float* bias = nullptr; // O floats, or null
  bool relu = false;
  int64_t p_begin = 0;
  int64_t p_end = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
  uint8_t* scratch = nullptr;  // gemm_scratch_bytes(K, p_end - p_begin) bytes of the caller's
};

// What a kernel reads of packed int4 weights (Int4Weights, int4_linear.h): each row is cut
// into blocks of 32 columns stored in 16 bytes; byte j of a block holds column j in its low
// nibble and column j + 16 in its high nibble, each as value + 8 (so 8 is zero).
struct Int4WeightsView {
  int64_t rows;             // O
  int64_t cols;             // K
  int64_t ld;               // bytes per row: 16 per block of 32 columns, tail nibbles 8 (zero)
  const uint8_t* packed;    // rows * ld bytes, then kLowBitWeightSlack bytes
  const float* scales;      // O per-row scales: weight = scales[o] * value, value in [-8, 7]
};

// Y[O x P] = W X (+ bias, relu) for rows [row_begin, row_end), all p columns, with X given
// transposed: column p of X at xt + p * ldxt, zero-padded to a multiple of 32 floats.
struct Int4Slice {
  const float* xt = nullptr;
  int64_t ldxt = 0;             // >= ld * 2, a multiple of 32
  int64_t p = 0;
  float* y = nullptr;           // row o at y + o * ldy
  int64_t ldy = 0;
  const float* bias = nullptr;  // O floats, or null
  bool relu = false;
  int64_t row_begin = 0;
  int64_t row_end = 0;
};

// An int8 depthwise convolution (int8_depthwise.h) of one image on its input quantized
// into a channels-last uint8 copy padded with the zero point: pixel (r, q) of the padded
// image holds channel c at x[(r * padded_w + q) * ldc + c]. For channels [c_begin, c_end)
// and every output position p = oh * out_w + ow:
//   acc = sum_{i < kh, j < kw} w[(i * kw + j) * ldc + c] * pixel(oh * stride + i, ow * stride + j)[c]
//   y[p * ldc + c] = min(max(fma(float(acc - correction[c]), scale[c], bias[c]), lo), hi)
// acc exact in int32. c_begin and c_end are multiples of 16 (c_end <= ldc); ldc is one
// too, and the per-channel arrays are ldc long.
struct DepthwiseU8Image {
  const uint8_t* x = nullptr;
  int64_t padded_w = 0;
  int64_t ldc = 0;
  int stride = 1;
  int kh = 0, kw = 0;
  const int32_t* w = nullptr;           // kh * kw taps x ldc weights, in [-127, 127]
  const int32_t* correction = nullptr;  // zero point * sum of the channel's weights
  const float* scale = nullptr;         // weight scale * input scale
  const float* bias = nullptr;
  float lo = 0.0f;  // output clamp
  float hi = 0.0f;
  float* y = nullptr;  // out_h * out_w positions x ldc
  int64_t out_h = 0;
  int64_t out_w = 0;
  int64_t c_begin = 0;
  int64_t c_end = 0;
};

// q[i] = round_half_even(clamp(fma(x[i], inv_scale, zero_point), 0, 255)) for i < n.
using QuantizeU8Kernel = void (*)(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q);
using Int8GemmKernel = void (*)(const Int8WeightsView& w, const Int8GemmSlice& s);
// Scratch bytes the gemm kernel needs for K rows and `p` columns of X.
using Int8ScratchBytes = int64_t (*)(int64_t k, int64_t p);
using Int4GemvKernel = void (*)(const Int4WeightsView& w, const Int4Slice& s);
using DepthwiseU8Kernel = void (*)(const DepthwiseU8Image& a);

struct Int8KernelTable {
  Isa isa = Isa::kScalar;
  QuantizeU8Kernel quantize_u8 = nullptr;
  Int8GemmKernel gemm = nullptr;
  Int8ScratchBytes gemm_scratch_bytes = nullptr;
  Int4GemvKernel int4_gemv = nullptr;
  DepthwiseU8Kernel depthwise_u8 = nullptr;
};

// The table of `isa`, or null when this CPU cannot run it or it is not compiled in. The
// AVX-512 table needs AVX-512 VNNI besides what KernelsFor(Isa::kAvx512) needs.
const Int8KernelTable* Int8KernelsFor(Isa isa);
// The table of the highest ISA <= ActiveIsa() that Int8KernelsFor() returns. Thread-safe.
const Int8KernelTable& Int8Kernels();
// Every ISA Int8KernelsFor() returns a table for, lowest first.
std::vector<Isa> Int8SupportedIsas();

}  // namespace acs::kernels
