// AVX-512 int4 weight-only GEMV. Built with the AVX-512 flags; called only through the
// AVX-512 Int8KernelTable. Everything but the entry point has internal linkage.
//
// Per row and block of 32 columns: 16 bytes widen to 16 dwords (one shuffle); vpermps looks
// the low nibbles (columns 0-15; it reads only an index's low 4 bits) and the high nibbles
// (16-31) up in a 16-entry table of the row's dequantized values scale * (v - 8), which
// then meet the transposed activation columns in FMAs: as the scalar reference does,
// (scale * value) * x, in another order.
//
// Loops over tile dimensions carry `#pragma GCC unroll`: fully unrolled, the accumulator
// arrays live in registers (GCC 12 otherwise keeps them in memory).
#include <immintrin.h>

// GCC 12 flags the deliberately undefined pass-through operand (_mm512_undefined_*) of
// AVX-512 intrinsics inlined here; it is never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {
namespace {

// R rows from o times C columns from c0; low and high halves of a block accumulate apart.
template <int R, int C>
void Tile(const Int4WeightsView& w, const Int4Slice& s, int64_t o, int64_t c0) {
  __m512 acc[R][C][2];
  __m512 table[R];
  const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    table[r] = _mm512_mul_ps(_mm512_set1_ps(w.scales[o + r]), values);
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c][0] = acc[r][c][1] = _mm512_setzero_ps();
  }
  const uint8_t* wr = w.packed + o * w.ld;
  const float* xc = s.xt + c0 * s.ldxt;
  for (int64_t b = 0; b < w.ld / 16; ++b) {
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + r * w.ld + 16 * b)));
      const __m512 lo = _mm512_permutexvar_ps(v, table[r]);
      const __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table[r]);
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const float* x = xc + c * s.ldxt + 32 * b;
        acc[r][c][0] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x), acc[r][c][0]);
        acc[r][c][1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), acc[r][c][1]);
      }
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const float bias = s.bias != nullptr ? s.bias[o + r] : 0.0f;
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      float y = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][c][0], acc[r][c][1])) + bias;
      if (s.relu) y = y > 0.0f ? y : 0.0f;
      s.y[(o + r) * s.ldy + c0 + c] = y;
    }
  }
}

template <int R>
void Columns(const Int4WeightsView& w, const Int4Slice& s, int64_t o) {
  int64_t c = 0;
  for (; c + 2 <= s.p; c += 2) Tile<R, 2>(w, s, o, c);
  if (c < s.p) Tile<R, 1>(w, s, o, c);
}

}  // namespace

void Int4GemvAvx512(const Int4WeightsView& w, const Int4Slice& s) {
  int64_t o = s.row_begin;
  for (; o + 4 <= s.row_end; o += 4) Columns<4>(w, s, o);
  for (; o < s.row_end; ++o) Columns<1>(w, s, o);
}

}  // namespace acs::kernels::internal
