// AVX-512 int8 depthwise kernel (DepthwiseU8Image): 16 channels per vector, each tap's 16
// uint8 inputs widened to int32 and multiplied by the tap's weights (exact), then the
// scalar reference's dequantization. Built with the AVX-512 flags; called only through
// Int8KernelsFor(Isa::kAvx512).
#include <immintrin.h>

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {

void DepthwiseU8Avx512(const DepthwiseU8Image& a) {
  const int64_t s = a.stride;
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  for (int64_t oh = 0; oh < a.out_h; ++oh) {
    for (int64_t ow = 0; ow < a.out_w; ++ow) {
      const uint8_t* corner = a.x + (oh * s * a.padded_w + ow * s) * a.ldc;
      float* y = a.y + (oh * a.out_w + ow) * a.ldc;
      for (int64_t c = a.c_begin; c < a.c_end; c += 16) {
        __m512i acc = _mm512_setzero_si512();
        for (int i = 0; i < a.kh; ++i) {
          const uint8_t* row = corner + i * a.padded_w * a.ldc + c;
          const int32_t* w = a.w + i * a.kw * a.ldc + c;
          for (int j = 0; j < a.kw; ++j) {
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + j * a.ldc));
            const __m512i wv = _mm512_loadu_si512(w + j * a.ldc);
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(x), wv));
          }
        }
        const __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_loadu_si512(a.correction + c)));
        const __m512 v = _mm512_fmadd_ps(d, _mm512_loadu_ps(a.scale + c), _mm512_loadu_ps(a.bias + c));
        _mm512_storeu_ps(y + c, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
      }
    }
  }
}

}  // namespace acs::kernels::internal
