// AVX2 int8 depthwise kernel (DepthwiseU8Image): 8 channels per vector, each tap's 8 uint8
// inputs widened to int32 and multiplied by the tap's weights (exact), then the scalar
// reference's dequantization. Built with -mavx2 -mfma; called only through
// Int8KernelsFor(Isa::kAvx2).
#include <immintrin.h>

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {

void DepthwiseU8Avx2(const DepthwiseU8Image& a) {
  const int64_t s = a.stride;
  const __m256 lo = _mm256_set1_ps(a.lo), hi = _mm256_set1_ps(a.hi);
  for (int64_t oh = 0; oh < a.out_h; ++oh) {
    for (int64_t ow = 0; ow < a.out_w; ++ow) {
      const uint8_t* corner = a.x + (oh * s * a.padded_w + ow * s) * a.ldc;
      float* y = a.y + (oh * a.out_w + ow) * a.ldc;
      for (int64_t c = a.c_begin; c < a.c_end; c += 8) {
        __m256i acc = _mm256_setzero_si256();
        for (int i = 0; i < a.kh; ++i) {
          const uint8_t* row = corner + i * a.padded_w * a.ldc + c;
          const int32_t* w = a.w + i * a.kw * a.ldc + c;
          for (int j = 0; j < a.kw; ++j) {
            const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + j * a.ldc));
            const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j * a.ldc));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(x), wv));
          }
        }
        const __m256i corr = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.correction + c));
        const __m256 d = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc, corr));
        const __m256 v = _mm256_fmadd_ps(d, _mm256_loadu_ps(a.scale + c), _mm256_loadu_ps(a.bias + c));
        _mm256_storeu_ps(y + c, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
      }
    }
  }
}

}  // namespace acs::kernels::internal
