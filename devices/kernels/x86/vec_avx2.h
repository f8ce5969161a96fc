// Internal: 128- and 256-bit float vectors for the SIMD kernel templates (AVX2 + FMA).
// Include only from files compiled with -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace acs::kernels::internal {
namespace {

struct Vec128 {
  using Reg = __m128;
  static constexpr int kWidth = 4;
  static Reg Zero() { return _mm_setzero_ps(); }
  static Reg Set1(float v) { return _mm_set1_ps(v); }
  static Reg Load(const float* p) { return _mm_loadu_ps(p); }
  static void Store(float* p, Reg v) { _mm_storeu_ps(p, v); }
  static Reg Add(Reg a, Reg b) { return _mm_add_ps(a, b); }
  static Reg Fma(Reg a, Reg b, Reg c) { return _mm_fmadd_ps(a, b, c); }
};

// 8 all-ones lanes followed by 8 zero lanes: the mask for n lanes starts at kLaneMask + 8 - n.
alignas(64) constexpr int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

struct Vec256 {
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static __m256i Mask(int n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - n));
  }
  static Reg Zero() { return _mm256_setzero_ps(); }
  static Reg Set1(float v) { return _mm256_set1_ps(v); }
  static Reg Load(const float* p) { return _mm256_loadu_ps(p); }
  // Loads lanes [0, n), zeroes the rest, touches no memory past p + n. 1 <= n <= 8.
  static Reg LoadN(const float* p, int n) { return _mm256_maskload_ps(p, Mask(n)); }
  static void Store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static void StoreN(float* p, Reg v, int n) { _mm256_maskstore_ps(p, Mask(n), v); }
  static Reg Add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg Fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg Min(Reg a, Reg b) { return _mm256_min_ps(a, b); }
  static Reg Max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static float ReduceAdd(Reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }

  // 32-bit element indices, for gathers.
  using Index = __m256i;
  static Index LoadIndex(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static Index LoadBytes(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static Index SetIndex(int32_t v) { return _mm256_set1_epi32(v); }
  static Index AddIndex(Index a, Index b) { return _mm256_add_epi32(a, b); }
  static Index MulIndex(Index a, Index b) { return _mm256_mullo_epi32(a, b); }
  static Reg Gather(const float* base, Index idx) { return _mm256_i32gather_ps(base, idx, 4); }
};

}  // namespace
}  // namespace acs::kernels::internal
