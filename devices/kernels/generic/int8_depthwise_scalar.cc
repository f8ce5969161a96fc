// Scalar reference of the int8 depthwise kernel (int8_kernel_table.h, DepthwiseU8Image):
// the definition the SIMD tables must reproduce bit for bit.
#include <cmath>

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {

void DepthwiseU8Scalar(const DepthwiseU8Image& a) {
  const int64_t s = a.stride;
  for (int64_t oh = 0; oh < a.out_h; ++oh) {
    for (int64_t ow = 0; ow < a.out_w; ++ow) {
      float* y = a.y + (oh * a.out_w + ow) * a.ldc;
      for (int64_t c = a.c_begin; c < a.c_end; ++c) {
        int32_t acc = 0;
        for (int i = 0; i < a.kh; ++i) {
          for (int j = 0; j < a.kw; ++j) {
            const uint8_t* pixel = a.x + ((oh * s + i) * a.padded_w + ow * s + j) * a.ldc;
            acc += a.w[(i * a.kw + j) * a.ldc + c] * int32_t{pixel[c]};
          }
        }
        float v = std::fma(static_cast<float>(acc - a.correction[c]), a.scale[c], a.bias[c]);
        v = v > a.lo ? v : a.lo;  // as max_ps(v, lo)
        v = v < a.hi ? v : a.hi;  // as min_ps(v, hi)
        y[c] = v;
      }
    }
  }
}

}  // namespace acs::kernels::internal
