// The fp32 kernels (sparse, depthwise) of one instruction set, as a table of function pointers, and the
// choice of the table for this CPU, made once at start-up.
//
// Every SIMD table computes what the scalar table computes, up to float rounding order;
// tests/devices checks each against it with explicit tolerances.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devices/kernels/sparse_formats.h"

namespace acs::kernels {

// Ordered: a higher ISA can run every lower one.
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const char* IsaName(Isa isa);                          // "scalar", "avx2", "avx512"
std::optional<Isa> ParseIsa(const std::string& name);  // inverse of IsaName

// The part of Y = W X (+ bias) one kernel call computes: rows [row_begin, row_end) (row-blocks
// for 1xN) times columns [p_begin, p_end). Slices with disjoint rows or columns may run
// concurrently.
struct SpmmSlice {
  const float* x = nullptr;     // X[K x P], row k at x + k * ldx
  int64_t ldx = 0;
  float* y = nullptr;           // Y[O x P], row o at y + o * ldy; only the slice is written
  int64_t ldy = 0;
  const float* bias = nullptr;  // O floats, or null
  int64_t p_begin = 0;
  int64_t p_end = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
};

// What a kernel reads of a packed matrix, as plain pointers: the per-ISA files then call
// no inline code shared with other files, of which the linker could keep a copy built for
// another ISA. Valid while the matrix lives and is not modified.
struct BlockSparseView {
  int block;
  int64_t rows;
  const int64_t* row_ptr;
  const int32_t* col_idx;
  const float* values;
};
struct CsrView {
  int64_t rows;
  int64_t cols;
  const int64_t* row_ptr;
  const int32_t* col_idx;
  const float* values;
};
struct NmView {
  int n;
  int m;
  int64_t cols;
  int64_t runs;  // runs per row
  const float* values;
  const uint8_t* offsets;
};
BlockSparseView ViewOf(const BlockSparseMatrix& w);
CsrView ViewOf(const CsrMatrix& w);
NmView ViewOf(const NmMatrix& w);

// One channel of a 3x3 depthwise convolution (depthwise_conv.h) on its input prepared as a
// zero-padded plane split into `stride` column phases:
//   y[oh * out_w + ow] = clamp(bias + sum_{i, j < 3} w[3 * i + j] * row(oh * stride + i, j)[ow], lo, hi)
// with row(r, j) = plane + (r * stride + j % stride) * pitch + j / stride, for oh < out_h
// and ow < out_w; the sum is taken in the order i, j. Kernels read no element of a row
// past ow = out_w - 1 + 2 / stride.
struct DepthwisePlane {
  const float* plane = nullptr;
  int64_t pitch = 0;
  int stride = 1;               // 1 or 2
  const float* w = nullptr;     // 9 taps, row-major
  float bias = 0.0f;
  float lo = 0.0f;              // output clamp
  float hi = 0.0f;
  float* y = nullptr;           // out_h x out_w, row-major
  int64_t out_h = 0;
  int64_t out_w = 0;
};

using BlockSparseKernel = void (*)(const BlockSparseView& w, const SpmmSlice& s);
using CsrKernel = void (*)(const CsrView& w, const SpmmSlice& s);
using NmKernel = void (*)(const NmView& w, const SpmmSlice& s);
using Depthwise3x3Kernel = void (*)(const DepthwisePlane& a);

struct KernelTable {
  Isa isa = Isa::kScalar;
  BlockSparseKernel block_sparse = nullptr;
  CsrKernel csr = nullptr;
  NmKernel nm = nullptr;
  Depthwise3x3Kernel depthwise3x3 = nullptr;
};

// The best ISA this CPU and OS support (CPUID + XGETBV).
Isa DetectIsa();
// DetectIsa(), capped by the environment variable ACS_ISA=scalar|avx2|avx512 when set to
// one of those names (other values are ignored). Read once; thread-safe.
Isa ActiveIsa();
// The table of ActiveIsa().
const KernelTable& Kernels();
// The table of `isa`, or null when this CPU cannot run it or it is not compiled in.
const KernelTable* KernelsFor(Isa isa);
// Every ISA KernelsFor() returns a table for, lowest first.
std::vector<Isa> SupportedIsas();

}  // namespace acs::kernels
