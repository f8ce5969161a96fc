// int8 matrix products Y[O x P] (fp32) = dequant(Wq[O x K] Xq[K x P]) (+ bias, relu) on the
// CPU: int8 weights with one symmetric scale per output row, uint8 activations with one
// scale and zero point per tensor, exact int32 accumulation.
//
//   y[o, p] = w_scale[o] * x_scale * sum_k wq[o, k] (xq[k, p] - zero_point) + bias[o]
//
// A linear layer at batch B is P = B with X holding one sample per column (X = input^T); a
// convolution is P = output positions of one image (int8_conv2d.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "devices/kernels/int8_kernel_table.h"
#include "devices/kernels/sparse_formats.h"

namespace acs::kernels {

// Largest K: every partial sum of 255 * 127 * K must fit in int32.
constexpr int64_t kMaxInt8Cols = 65536;

// Affine uint8 quantization of activations: x ~= scale * (q - zero_point), q in [0, 255].
struct ActivationQuant {
  float scale = 1.0f;      // > 0 and finite
  int32_t zero_point = 0;  // in [0, 255]; 0.0f is represented exactly (it is zero_point)
};

// The quantization covering [min(min_value, 0), max(max_value, 0)]: scale = range / 255,
// zero_point = round(-min / scale). A zero range gives scale 1, zero point 0.
ActivationQuant ChooseActivationQuant(float min_value, float max_value);

// Errors (InvalidArgument): scale not positive and finite, zero point outside [0, 255].
Status Validate(const ActivationQuant& q);

// Packed int8 weights: a plain value, immutable after packing, safe to share between
// threads. Build one only through QuantizeInt8Weights / PackInt8Weights. Holds the values
// twice (row-major and in 16-row panels, for the kernels that vectorize over rows): 2 bytes
// per weight, half of fp32.
struct Int8Weights {
  int64_t rows = 0;               // O
  int64_t cols = 0;               // K
  int64_t ld = 0;                 // bytes per row: cols rounded up to a multiple of 4
  std::vector<int8_t> values;     // rows * ld + kLowBitWeightSlack; row tails and slack zero
  std::vector<int8_t> panels;     // the values in panels of 16 rows (Int8WeightsView::panels)
  std::vector<float> scales;      // O per-row scales
  std::vector<int32_t> row_sums;  // O sums of each row's values

  // The value of element (o, k), k < cols.
  int8_t at(int64_t o, int64_t k) const { return values[o * ld + k]; }
};

// Symmetric per-row quantization of a dense O x K matrix: scale = max |w_row| / 127 (1 for
// an all-zero row), value = round_half_even(w / scale), in [-127, 127].
// Errors (InvalidArgument): null data, rows or cols < 1, cols > kMaxInt8Cols, non-finite values.
StatusOr<Int8Weights> QuantizeInt8Weights(const DenseView& w);

// Packs values already quantized (row-major rows x cols, each in [-127, 127]) and their
// per-row scales (positive, finite).
// Errors (InvalidArgument): as above, a value of -128, a bad scale.
StatusOr<Int8Weights> PackInt8Weights(const int8_t* values, int64_t rows, int64_t cols, const float* scales);

Int8WeightsView ViewOf(const Int8Weights& w);

struct Int8Options {
  int threads = 1;                         // worker threads at most (OpenMP); 1 runs on the caller
  int64_t min_macs_per_thread = 1 << 21;   // multiply-adds worth one more thread
  const Int8KernelTable* kernels = nullptr;  // null: Int8Kernels(), the table chosen at start-up
};

// Operands, read (x or xq, bias) and written (y) but not owned. Y must not overlap them.
// Exactly one of x and xq is set.
struct Int8GemmArgs {
  const float* x = nullptr;     // fp32 X[K x P], row k at x + k * ldx; quantized with `quant`
  const uint8_t* xq = nullptr;  // or X already quantized with `quant`
  int64_t ldx = 0;              // >= p
  ActivationQuant quant;
  float* y = nullptr;           // O x P, row o at y + o * ldy; every element is written
  int64_t ldy = 0;              // >= p
  int64_t p = 0;                // columns, >= 1
  const float* bias = nullptr;  // O floats, or null for none
  bool relu = false;            // y = max(y, 0) after the bias
};

// Errors (InvalidArgument): null pointers, both or neither of x and xq, p < 1, leading
// dimensions below p, an invalid quant. Thread-safe for distinct outputs.
Status Int8Gemm(const Int8Weights& w, const Int8GemmArgs& args, const Int8Options& options = {});

// Quantizes n floats with `quant` (rounding half to even, clamping to [0, 255]) using the
// table's vector kernel. Precondition: Validate(quant) is OK.
void QuantizeActivations(const float* x, int64_t n, const ActivationQuant& quant, uint8_t* q,
                         const Int8KernelTable* kernels = nullptr);

// Internal to the int8 ops: runs the table's gemm kernel on `base` (all rows of w, its
// columns [p_begin, p_end); scratch is set here), split across up to options.threads
// threads by columns when there are enough of them, else by rows. With fp32 X (xf) and a
// row split, each thread quantizes the columns it packs.
void RunInt8Gemm(const Int8Weights& w, const Int8GemmSlice& base, const Int8Options& options);

}  // namespace acs::kernels
