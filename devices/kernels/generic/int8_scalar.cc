// Scalar reference of the int8 kernels: the definition every SIMD table must reproduce bit
// for bit. Accumulation is exact in int32; the float steps are spelled out once here.
#include <cmath>

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {

void QuantizeU8Scalar(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q) {
  const float zp = static_cast<float>(zero_point);
  for (int64_t i = 0; i < n; ++i) {
    float v = std::fma(x[i], inv_scale, zp);
    v = v > 0.0f ? v : 0.0f;      // as max_ps(v, 0): NaN becomes 0
    v = v < 255.0f ? v : 255.0f;  // as min_ps(v, 255)
    q[i] = static_cast<uint8_t>(std::nearbyint(v));  // round half to even, as cvtps2dq
  }
}

namespace {

// X[k, p] of the slice, quantized when X is fp32.
uint8_t XAt(const Int8GemmSlice& s, int64_t k, int64_t p) {
  if (s.xf != nullptr) {
    uint8_t q;
    QuantizeU8Scalar(s.xf + k * s.ldx + p, 1, 1.0f / s.x_scale, s.x_zero_point, &q);
    return q;
  }
  return s.x[(s.x_rows != nullptr ? s.x_rows[k] : k * s.ldx) + (s.x_cols != nullptr ? s.x_cols[p] : p)];
}

}  // namespace

void Int8GemmScalar(const Int8WeightsView& w, const Int8GemmSlice& s) {
  for (int64_t o = s.row_begin; o < s.row_end; ++o) {
    const int8_t* row = w.values + o * w.ld;
    const int32_t correction = s.x_zero_point * w.row_sums[o];
    const float scale = w.scales[o] * s.x_scale;
    const float bias = s.bias != nullptr ? s.bias[o] : 0.0f;
    for (int64_t p = s.p_begin; p < s.p_end; ++p) {
      int32_t acc = 0;
      for (int64_t k = 0; k < w.cols; ++k) acc += int32_t{row[k]} * int32_t{XAt(s, k, p)};
      float y = std::fma(static_cast<float>(acc - correction), scale, bias);
      if (s.relu) y = y > 0.0f ? y : 0.0f;
      s.y[o * s.ldy + p] = y;
    }
  }
}

int64_t Int8ScratchScalar(int64_t, int64_t) { return 0; }

}  // namespace acs::kernels::internal
