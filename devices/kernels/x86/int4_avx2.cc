// AVX2 int4 weight-only GEMV. Built with -mavx2 -mfma; called only through the AVX2
// Int8KernelTable. Everything but the entry point has internal linkage.
//
// Per row and block of 32 columns: bytes 0-7 and 8-15 widen to dwords; their low nibbles
// are columns 0-15, their high nibbles 16-31, each minus 8 and converted to fp32, then FMAs
// against the transposed activation columns. Each row's scale is applied to the reduced sum.
//
// Loops over tile dimensions carry `#pragma GCC unroll`: fully unrolled, the accumulator
// arrays live in registers (GCC 12 otherwise keeps them in memory).
#include <immintrin.h>

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {
namespace {

inline float ReduceAdd(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// R rows from o times C columns from c0 (R x C accumulators).
template <int R, int C>
void Tile(const Int4WeightsView& w, const Int4Slice& s, int64_t o, int64_t c0) {
  __m256 acc[R][C];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  const __m256i nibble = _mm256_set1_epi32(0xf), eight = _mm256_set1_epi32(8);
  const uint8_t* wr = w.packed + o * w.ld;
  const float* xc = s.xt + c0 * s.ldxt;
  for (int64_t b = 0; b < w.ld / 16; ++b) {
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + r * w.ld + 16 * b));
      const __m256i v0 = _mm256_cvtepu8_epi32(bytes), v1 = _mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8));
      __m256 wv[4];
      wv[0] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, nibble), eight));  // columns 0-7
      wv[1] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, nibble), eight));  // 8-15
      wv[2] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), eight));      // 16-23
      wv[3] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), eight));      // 24-31
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const float* x = xc + c * s.ldxt + 32 * b;
        #pragma GCC unroll 16
        for (int j = 0; j < 4; ++j) acc[r][c] = _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(x + 8 * j), acc[r][c]);
      }
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const float scale = w.scales[o + r];
    const float bias = s.bias != nullptr ? s.bias[o + r] : 0.0f;
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      float y = ReduceAdd(acc[r][c]) * scale + bias;
      if (s.relu) y = y > 0.0f ? y : 0.0f;
      s.y[(o + r) * s.ldy + c0 + c] = y;
    }
  }
}

// 8 independent accumulators either way: 8 rows x 1 column, or 4 rows x 2 columns.
void Rows(const Int4WeightsView& w, const Int4Slice& s, int64_t c0, int64_t cols) {
  int64_t o = s.row_begin;
  if (cols == 2) {
    for (; o + 4 <= s.row_end; o += 4) Tile<4, 2>(w, s, o, c0);
    for (; o < s.row_end; ++o) Tile<1, 2>(w, s, o, c0);
  } else {
    for (; o + 8 <= s.row_end; o += 8) Tile<8, 1>(w, s, o, c0);
    for (; o < s.row_end; ++o) Tile<1, 1>(w, s, o, c0);
  }
}

}  // namespace

void Int4GemvAvx2(const Int4WeightsView& w, const Int4Slice& s) {
  for (int64_t c = 0; c < s.p; c += 2) Rows(w, s, c, s.p - c >= 2 ? 2 : 1);
}

}  // namespace acs::kernels::internal
