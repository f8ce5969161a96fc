// Internal: 512-bit float vectors for the SIMD kernel templates (AVX-512F/VL/BW/DQ).
// Include only from files compiled with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace acs::kernels::internal {
namespace {

struct Vec512 {
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static __mmask16 Mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static Reg Zero() { return _mm512_setzero_ps(); }
  static Reg Set1(float v) { return _mm512_set1_ps(v); }
  static Reg Load(const float* p) { return _mm512_loadu_ps(p); }
  // Loads lanes [0, n), zeroes the rest, touches no memory past p + n. 1 <= n <= 16.
  static Reg LoadN(const float* p, int n) { return _mm512_maskz_loadu_ps(Mask(n), p); }
  static void Store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static void StoreN(float* p, Reg v, int n) { _mm512_mask_storeu_ps(p, Mask(n), v); }
  static Reg Add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg Fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  // The masked forms (all lanes): GCC 12's _mm512_min_ps / _mm512_max_ps pass an
  // uninitialized source and warn.
  static Reg Min(Reg a, Reg b) { return _mm512_mask_min_ps(a, 0xffff, a, b); }
  static Reg Max(Reg a, Reg b) { return _mm512_mask_max_ps(a, 0xffff, a, b); }
  static float ReduceAdd(Reg v) { return _mm512_reduce_add_ps(v); }

  // 32-bit element indices, for gathers.
  using Index = __m512i;
  static Index LoadIndex(const int32_t* p) { return _mm512_loadu_si512(p); }
  static Index LoadBytes(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static Index SetIndex(int32_t v) { return _mm512_set1_epi32(v); }
  static Index AddIndex(Index a, Index b) { return _mm512_add_epi32(a, b); }
  static Index MulIndex(Index a, Index b) { return _mm512_mullo_epi32(a, b); }
  static Reg Gather(const float* base, Index idx) { return _mm512_i32gather_ps(idx, base, 4); }
};

}  // namespace
}  // namespace acs::kernels::internal
