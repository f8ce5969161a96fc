// AVX2 int8 kernels. Built with -mavx2 -mfma; called only when Int8KernelsFor(Isa::kAvx2)
// says this CPU can run them. Everything but the entry points has internal linkage.
//
// Without VNNI the u8 x s8 pair instruction (vpmaddubsw) would saturate its int16 sums
// (2 * 255 * 127 > 32767), so both operands are widened to int16 and multiplied with
// vpmaddwd (pairs of int16 products added into int32 lanes), which is exact: the same
// 16 products per instruction, at one more add. Wide slices pack X as pairs of k per column
// ([K/2][cols][2] int16) and widen the weights of each row tile into scratch; narrow slices
// (batch 1..7) vectorize over K.
//
// Loops over tile dimensions carry `#pragma GCC unroll`: fully unrolled, the accumulator
// arrays live in registers (GCC 12 otherwise keeps them in memory).
#include <immintrin.h>

#include "devices/kernels/int8_impls.h"

namespace acs::kernels::internal {
namespace {

constexpr int64_t kDotMaxCols = 8;  // slices with fewer columns take the dot-product path
// Wide tiles: 5 rows x 2 vectors of 8 columns = 10 accumulators, 2 activation vectors, a
// broadcast and the vpmaddwd products fit the 16 YMM registers.
constexpr int kTileRows = 5;
constexpr int kTileCols = 16;

inline int64_t MinI64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t RoundUp(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// 8 all-ones lanes followed by 8 zero lanes: the mask for n lanes starts at kLaneMask + 8 - n.
alignas(64) constexpr int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
inline __m256i Lanes(int64_t n) {
  const int64_t c = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - c));
}

inline float DequantScalar(int32_t acc, float scale, float bias, bool relu) {
  __m128 v = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), acc), _mm_set_ss(scale), _mm_set_ss(bias));
  if (relu) v = _mm_max_ss(v, _mm_setzero_ps());
  return _mm_cvtss_f32(v);
}

inline int32_t LoadDword(const int16_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// Loads n <= 8 bytes (zero above n) into the low half of a vector.
inline __m128i Load8(const uint8_t* p, int64_t n) {
  if (n >= 8) return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  uint64_t v = 0;
  for (int64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return _mm_cvtsi64_si128(static_cast<long long>(v));
}

// ---------------------------------------------------------------------------------------
// Wide path.

inline const uint8_t* RowOf(const Int8GemmSlice& s, int64_t k) {
  return s.x + (s.x_rows != nullptr ? s.x_rows[k] : k * s.ldx);
}
inline int64_t ColOf(const Int8GemmSlice& s, int64_t p) { return s.x_cols != nullptr ? s.x_cols[p] : p; }

// The quantization of int8_kernel_table.h (QuantizeU8Kernel) on one float.
inline uint8_t QuantizeOne(float x, float inv_scale, float zero_point) {
  __m128 v = _mm_fmadd_ss(_mm_set_ss(x), _mm_set_ss(inv_scale), _mm_set_ss(zero_point));
  v = _mm_min_ss(_mm_max_ss(v, _mm_setzero_ps()), _mm_set_ss(255.0f));
  return static_cast<uint8_t>(_mm_cvtss_si32(v));
}

// Loads columns [p, p + n) of row x, n <= 8 (zero above n).
inline __m128i LoadColumns(const Int8GemmSlice& s, const uint8_t* x, int64_t p, int64_t n) {
  if (s.x_cols == nullptr) return Load8(x + p, n);
  uint64_t v = 0;
  for (int64_t i = 0; i < n && i < 8; ++i) v |= static_cast<uint64_t>(x[s.x_cols[p + i]]) << (8 * i);
  return _mm_cvtsi64_si128(static_cast<long long>(v));
}

// Packs columns [p, p + valid) of X rows [0, k) into dst as T vectors of 8 columns per pair
// of rows: dst[(g * T * 8 + c) * 2 + i] = X[2g + i, p + c] as int16, zero for c >= valid
// and rows >= k. Pairs: ld / 2.
template <int T>
void PackPairs(const Int8GemmSlice& s, int64_t p, int64_t k, int64_t ld, int64_t valid, int16_t* dst) {
  for (int64_t g = 0; g < ld / 2; ++g) {
    #pragma GCC unroll 16
    for (int v = 0; v < T; ++v) {
      const int64_t n = valid - 8 * v;
      const __m128i zero = _mm_setzero_si128();
      const __m128i r0 = 2 * g < k && n > 0 ? LoadColumns(s, RowOf(s, 2 * g), p + 8 * v, n) : zero;
      const __m128i r1 = 2 * g + 1 < k && n > 0 ? LoadColumns(s, RowOf(s, 2 * g + 1), p + 8 * v, n) : zero;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (g * T * 8 + 8 * v) * 2),
                          _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r0, r1)));
    }
  }
}

// Widens rows [o, o + rows) of W to int16: wide[r * ld16 + k], ld16 = ld rounded up to 16.
void WidenRows(const Int8WeightsView& w, int64_t o, int64_t rows, int16_t* wide) {
  const int64_t ld16 = RoundUp(w.ld, 16);
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* src = w.values + (o + r) * w.ld;  // may read into the next row or the slack
    for (int64_t k = 0; k < ld16; k += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(wide + r * ld16 + k),
                          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
    }
  }
}

struct ColumnTile {
  const int16_t* packed;
  int64_t p;  // first column
  int64_t valid;
};

template <int R, int T>
void Tile(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c, const int16_t* wide, int64_t o) {
  __m256i acc[R][T];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  }
  const int64_t ld16 = RoundUp(w.ld, 16);
  const int16_t* xg = c.packed;
  for (int64_t g = 0; g < w.ld / 2; ++g, xg += T * 16) {
    __m256i xv[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 16 * t));
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256i wb = _mm256_set1_epi32(LoadDword(wide + r * ld16 + 2 * g));
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(xv[t], wb));
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const int64_t row = o + r;
    const __m256i corr = _mm256_set1_epi32(s.x_zero_point * w.row_sums[row]);
    const __m256 scale = _mm256_set1_ps(w.scales[row] * s.x_scale);
    const __m256 bias = _mm256_set1_ps(s.bias != nullptr ? s.bias[row] : 0.0f);
    float* y = s.y + row * s.ldy + c.p;
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][t], corr)), scale, bias);
      if (s.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
      _mm256_maskstore_ps(y + 8 * t, Lanes(c.valid - 8 * t), v);
    }
  }
}

template <int R, int T>
void TileRows(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c, const int16_t* wide,
              int64_t o, int64_t rows) {
  if constexpr (R > 0) {
    if (rows == R) {
      Tile<R, T>(w, s, c, wide, o);
    } else {
      TileRows<R - 1, T>(w, s, c, wide, o, rows);
    }
  }
}

template <int T>
void Rows(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c, int16_t* wide) {
  for (int64_t o = s.row_begin; o < s.row_end; o += kTileRows) {
    const int64_t rows = MinI64(kTileRows, s.row_end - o);
    WidenRows(w, o, rows, wide);
    TileRows<kTileRows, T>(w, s, c, wide, o, rows);
  }
}

void WideSlice(const Int8WeightsView& w, const Int8GemmSlice& s) {
  int16_t* packed = reinterpret_cast<int16_t*>(s.scratch);
  int16_t* wide = packed + w.ld * kTileCols;
  uint8_t* quantized = reinterpret_cast<uint8_t*>(wide + kTileRows * RoundUp(w.ld, 16));
  for (int64_t p = s.p_begin; p < s.p_end; p += kTileCols) {
    const int64_t valid = MinI64(kTileCols, s.p_end - p);
    const ColumnTile c{packed, p, valid};
    Int8GemmSlice src = s;  // where PackPairs reads the tile's columns, from column `first`
    int64_t first = p;
    if (s.xf != nullptr) {  // fp32 X: quantize the tile's columns first
      for (int64_t k = 0; k < w.cols; ++k) {
        QuantizeU8Avx2(s.xf + k * s.ldx + p, valid, 1.0f / s.x_scale, s.x_zero_point, quantized + k * kTileCols);
      }
      src.xf = nullptr;
      src.x = quantized;
      src.ldx = kTileCols;
      first = 0;
    }
    if (valid > 8) {
      PackPairs<2>(src, first, w.cols, w.ld, valid, packed);
      Rows<2>(w, s, c, wide);
    } else {
      PackPairs<1>(src, first, w.cols, w.ld, valid, packed);
      Rows<1>(w, s, c, wide);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Narrow path: X columns transposed to xt[c * kp + k] (kp = K rounded up to 16, zero tail);
// weight rows are read 16 bytes at a time, past K into zeros of X (or the slack).

template <int R, int C>
void DotTile(const Int8WeightsView& w, const Int8GemmSlice& s, const uint8_t* xt, int64_t kp, int64_t o,
             int64_t c0) {
  __m256i acc[R][C];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
  }
  const int8_t* wr = w.values + o * w.ld;
  for (int64_t k = 0; k < kp; k += 16) {
    __m256i xv[C];
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      xv[c] = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xt + (c0 + c) * kp + k)));
    }
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + r * w.ld + k)));
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(xv[c], wv));
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const int32_t corr = s.x_zero_point * w.row_sums[o + r];
    const float scale = w.scales[o + r] * s.x_scale;
    const float bias = s.bias != nullptr ? s.bias[o + r] : 0.0f;
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      __m128i v = _mm_add_epi32(_mm256_castsi256_si128(acc[r][c]), _mm256_extracti128_si256(acc[r][c], 1));
      v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
      v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
      s.y[(o + r) * s.ldy + s.p_begin + c0 + c] = DequantScalar(_mm_cvtsi128_si32(v) - corr, scale, bias, s.relu);
    }
  }
}

template <int R, int C>
void DotColumns(const Int8WeightsView& w, const Int8GemmSlice& s, const uint8_t* xt, int64_t kp, int64_t o,
                int64_t c0, int64_t cols) {
  if constexpr (C > 0) {
    if (cols == C) {
      DotTile<R, C>(w, s, xt, kp, o, c0);
    } else {
      DotColumns<R, C - 1>(w, s, xt, kp, o, c0, cols);
    }
  }
}

template <int R>
void DotRows(const Int8WeightsView& w, const Int8GemmSlice& s, const uint8_t* xt, int64_t kp, int64_t o) {
  const int64_t p = s.p_end - s.p_begin;
  for (int64_t c0 = 0; c0 < p; c0 += 2) DotColumns<R, 2>(w, s, xt, kp, o, c0, MinI64(2, p - c0));
}

void NarrowSlice(const Int8WeightsView& w, const Int8GemmSlice& s) {
  const int64_t p = s.p_end - s.p_begin, kp = RoundUp(w.cols, 16);
  uint8_t* xt = s.scratch;
  for (int64_t c = 0; c < p; ++c) {
    uint8_t* dst = xt + c * kp;
    if (s.xf != nullptr) {
      const float inv_scale = 1.0f / s.x_scale, zp = static_cast<float>(s.x_zero_point);
      for (int64_t k = 0; k < w.cols; ++k) dst[k] = QuantizeOne(s.xf[k * s.ldx + s.p_begin + c], inv_scale, zp);
    } else {
      const int64_t col = ColOf(s, s.p_begin + c);
      for (int64_t k = 0; k < w.cols; ++k) dst[k] = RowOf(s, k)[col];
    }
    for (int64_t k = w.cols; k < kp; ++k) dst[k] = 0;
  }
  int64_t o = s.row_begin;
  for (; o + 4 <= s.row_end; o += 4) DotRows<4>(w, s, xt, kp, o);
  for (; o < s.row_end; ++o) DotRows<1>(w, s, xt, kp, o);
}

}  // namespace

void QuantizeU8Avx2(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q) {
  const __m256 inv = _mm256_set1_ps(inv_scale), zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < n; i += 32) {
    alignas(32) float tail[32];
    const float* src = x + i;
    if (n - i < 32) {  // the last partial block goes through a zero-padded copy
      for (int64_t j = 0; j < 32; ++j) tail[j] = i + j < n ? x[i + j] : 0.0f;
      src = tail;
    }
    __m256i v[4];
    #pragma GCC unroll 16
    for (int j = 0; j < 4; ++j) {
      const __m256 f = _mm256_fmadd_ps(_mm256_loadu_ps(src + 8 * j), inv, zp);
      v[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, lo), hi));
    }
    const __m256i bytes = _mm256_permutevar8x32_epi32(
        _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3])), order);
    if (n - i >= 32) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
    } else {
      alignas(32) uint8_t out[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(out), bytes);
      for (int64_t j = 0; i + j < n; ++j) q[i + j] = out[j];
    }
  }
}

void Int8GemmAvx2(const Int8WeightsView& w, const Int8GemmSlice& s) {
  if (s.p_end - s.p_begin < kDotMaxCols) {
    NarrowSlice(w, s);
  } else {
    WideSlice(w, s);
  }
}

// Wide: the packed tile (ld * 16 int16), 5 widened rows (ld rounded up to 16, int16) and
// the tile's columns quantized (K x 16 bytes); narrow: < 8 columns of K rounded up to 16.
int64_t Int8ScratchAvx2(int64_t k, int64_t) {
  const int64_t ld = RoundUp(k, 4);
  return 2 * (ld * kTileCols + kTileRows * RoundUp(ld, 16)) + k * kTileCols + 64;
}

}  // namespace acs::kernels::internal
