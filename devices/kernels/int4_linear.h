// int4 weight-only linear layers Y[O x P] = W X (+ bias, relu) on the CPU: weights stored as
// 4-bit values (two per byte) with one symmetric scale per output row, fp32 activations.
// Meant for the weight-memory-bound case (batch 1 to a few columns): an eighth of the fp32
// weight bytes; the kernels unpack to fp32 in registers and use FMAs.
//
//   y[o, p] = bias[o] + sum_k (scale[o] * value[o, k]) * x[k, p]
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "devices/kernels/int8_gemm.h"
#include "devices/kernels/int8_kernel_table.h"
#include "devices/kernels/sparse_formats.h"

namespace acs::kernels {

// Packed int4 weights (layout: Int4WeightsView): a plain value, immutable after packing,
// safe to share between threads. Build one only through QuantizeInt4Weights / PackInt4Weights.
struct Int4Weights {
  int64_t rows = 0;             // O
  int64_t cols = 0;             // K
  int64_t ld = 0;               // bytes per row: 16 per 32 columns
  std::vector<uint8_t> packed;  // rows * ld + kLowBitWeightSlack
  std::vector<float> scales;    // O per-row scales

  // The value of element (o, k), k < cols, in [-8, 7].
  int8_t at(int64_t o, int64_t k) const;
};

// Symmetric per-row quantization of a dense O x K matrix: scale = max |w_row| / 7 (1 for an
// all-zero row), value = round_half_even(w / scale), in [-7, 7].
// Errors (InvalidArgument): null data, rows or cols < 1, non-finite values.
StatusOr<Int4Weights> QuantizeInt4Weights(const DenseView& w);

// Packs values already quantized (row-major rows x cols, each in [-8, 7]) with per-row
// scales (positive, finite). Errors (InvalidArgument): as above, values or scales out of range.
StatusOr<Int4Weights> PackInt4Weights(const int8_t* values, int64_t rows, int64_t cols, const float* scales);

// The values, row-major rows x cols: PackInt4Weights' input back.
std::vector<int8_t> UnpackInt4Weights(const Int4Weights& w);

Int4WeightsView ViewOf(const Int4Weights& w);

// Operands, read (x, bias) and written (y) but not owned. Y must not overlap them.
struct Int4LinearArgs {
  const float* x = nullptr;     // X[K x P], row k at x + k * ldx (a linear layer: input^T)
  int64_t ldx = 0;              // >= p
  float* y = nullptr;           // O x P, row o at y + o * ldy; every element is written
  int64_t ldy = 0;              // >= p
  int64_t p = 0;                // columns, >= 1
  const float* bias = nullptr;  // O floats, or null for none
  bool relu = false;            // y = max(y, 0) after the bias
};

// Errors (InvalidArgument): null pointers, p < 1, leading dimensions below p.
// Thread-safe for distinct outputs. Rows are split across options.threads threads.
Status Int4Linear(const Int4Weights& w, const Int4LinearArgs& args, const Int8Options& options = {});

}  // namespace acs::kernels
