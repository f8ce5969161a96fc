// Internal: the SIMD 3x3 depthwise kernel, written once over a vector type V (vec_avx2.h,
// vec_avx512.h) and compiled per ISA by depthwise_avx2.cc / depthwise_avx512.cc. Internal
// linkage, as spmm_simd.h. Include only from those files, after the vector header.
//
// Vectorized over output columns; two output rows are computed together so that each
// loaded input vector feeds both where their taps overlap, and the two FMA chains are
// independent. The last, partial vector of a row uses masked loads and stores; each output
// is the same sum, in the same order, as the scalar reference (FMA rounding aside).
#pragma once

#include <cstdint>

#include "devices/kernels/kernel_impls.h"

namespace acs::kernels::internal {
namespace {

template <class V>
typename V::Reg Clamp(typename V::Reg v, typename V::Reg lo, typename V::Reg hi) {
  return V::Min(V::Max(v, lo), hi);
}

template <class V, bool kMasked>
typename V::Reg Load(const float* p, int n) {
  if constexpr (kMasked) {
    return V::LoadN(p, n);
  } else {
    return V::Load(p);
  }
}

template <class V, bool kMasked>
void Store(float* p, typename V::Reg v, int n) {
  if constexpr (kMasked) {
    V::StoreN(p, v, n);
  } else {
    V::Store(p, v);
  }
}

// Output rows oh and (when two) oh + 1 at columns [ow, ow + n). rows[t] is padded input
// row oh * S + t (phase 0), t < S + 3.
template <class V, int S, bool kMasked>
void DepthwiseRows(const DepthwisePlane& a, const typename V::Reg* w, const float* const* rows, bool two, float* y,
                   int64_t ow, int n) {
  using Reg = typename V::Reg;
  const Reg bias = V::Set1(a.bias);
  Reg acc0 = bias, acc1 = bias;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const int64_t at = (j % S) * a.pitch + j / S + ow;
      acc0 = V::Fma(w[3 * i + j], Load<V, kMasked>(rows[i] + at, n), acc0);
      if (two) acc1 = V::Fma(w[3 * i + j], Load<V, kMasked>(rows[S + i] + at, n), acc1);
    }
  }
  const Reg lo = V::Set1(a.lo), hi = V::Set1(a.hi);
  Store<V, kMasked>(y + ow, Clamp<V>(acc0, lo, hi), n);
  if (two) Store<V, kMasked>(y + a.out_w + ow, Clamp<V>(acc1, lo, hi), n);
}

template <class V, int S>
void Depthwise3x3Stride(const DepthwisePlane& a) {
  typename V::Reg w[9];
  for (int t = 0; t < 9; ++t) w[t] = V::Set1(a.w[t]);
  const int64_t full = a.out_w / V::kWidth * V::kWidth;
  const int rest = static_cast<int>(a.out_w - full);
  for (int64_t oh = 0; oh < a.out_h; oh += 2) {
    const bool two = oh + 1 < a.out_h;
    const float* rows[S + 3];
    for (int t = 0; t < S + 3; ++t) {
      const int64_t r = oh * S + (two ? t : (t < 3 ? t : 2));  // rows past the plane are not formed
      rows[t] = a.plane + r * S * a.pitch;
    }
    float* y = a.y + oh * a.out_w;
    for (int64_t ow = 0; ow < full; ow += V::kWidth) DepthwiseRows<V, S, false>(a, w, rows, two, y, ow, V::kWidth);
    if (rest > 0) DepthwiseRows<V, S, true>(a, w, rows, two, y, full, rest);
  }
}

template <class V>
void Depthwise3x3(const DepthwisePlane& a) {
  if (a.stride == 1) {
    Depthwise3x3Stride<V, 1>(a);
  } else {
    Depthwise3x3Stride<V, 2>(a);
  }
}

}  // namespace
}  // namespace acs::kernels::internal
