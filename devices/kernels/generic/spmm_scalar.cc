// Scalar reference kernels: the definition every SIMD kernel is tested against. Each
// output is bias + the sum of its products taken in increasing storage order.
#include "devices/kernels/kernel_impls.h"

namespace acs::kernels::internal {

void BlockSparseScalar(const BlockSparseView& w, const SpmmSlice& s) {
  const int n = w.block;
  for (int64_t rb = s.row_begin; rb < s.row_end; ++rb) {
    for (int r = 0; r < n; ++r) {
      const int64_t row = rb * n + r;
      if (row >= w.rows) break;
      for (int64_t p = s.p_begin; p < s.p_end; ++p) {
        float acc = s.bias != nullptr ? s.bias[row] : 0.0f;
        for (int64_t b = w.row_ptr[rb]; b < w.row_ptr[rb + 1]; ++b) {
          acc += w.values[b * n + r] * s.x[w.col_idx[b] * s.ldx + p];
        }
        s.y[row * s.ldy + p] = acc;
      }
    }
  }
}

void CsrScalar(const CsrView& w, const SpmmSlice& s) {
  for (int64_t row = s.row_begin; row < s.row_end; ++row) {
    for (int64_t p = s.p_begin; p < s.p_end; ++p) {
      float acc = s.bias != nullptr ? s.bias[row] : 0.0f;
      for (int64_t i = w.row_ptr[row]; i < w.row_ptr[row + 1]; ++i) {
        acc += w.values[i] * s.x[w.col_idx[i] * s.ldx + p];
      }
      s.y[row * s.ldy + p] = acc;
    }
  }
}

void NmScalar(const NmView& w, const SpmmSlice& s) {
  const int64_t runs = w.runs;
  for (int64_t row = s.row_begin; row < s.row_end; ++row) {
    for (int64_t p = s.p_begin; p < s.p_end; ++p) {
      float acc = s.bias != nullptr ? s.bias[row] : 0.0f;
      for (int64_t g = 0; g < runs; ++g) {
        for (int i = 0; i < w.n; ++i) {
          const int64_t slot = (row * runs + g) * w.n + i;
          acc += w.values[slot] * s.x[(g * w.m + w.offsets[slot]) * s.ldx + p];
        }
      }
      s.y[row * s.ldy + p] = acc;
    }
  }
}

}  // namespace acs::kernels::internal
