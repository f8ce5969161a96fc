// Scalar reference of the int4 weight-only kernel: each output is bias + the sum over k of
// (scale * value) * x, in increasing k.
#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {

void Int4GemvScalar(const Int4WeightsView& w, const Int4Slice& s) {
  for (int64_t o = s.row_begin; o < s.row_end; ++o) {
    const uint8_t* row = w.packed + o * w.ld;
    for (int64_t p = 0; p < s.p; ++p) {
      const float* x = s.xt + p * s.ldxt;
      float acc = s.bias != nullptr ? s.bias[o] : 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) {
        const uint8_t byte = row[k / 32 * 16 + k % 16];
        const int nibble = (k % 32) < 16 ? (byte & 15) : (byte >> 4);
        acc += (w.scales[o] * static_cast<float>(nibble - 8)) * x[k];
      }
      if (s.relu) acc = acc > 0.0f ? acc : 0.0f;
      s.y[o * s.ldy + p] = acc;
    }
  }
}

}  // namespace acs::kernels::internal
