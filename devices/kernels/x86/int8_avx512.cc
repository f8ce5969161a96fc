// AVX-512 VNNI int8 kernels (vpdpbusd: 4 uint8 x int8 products added into each int32
// lane, without saturation). Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq
// -mavx512vnni; called only when Int8KernelsFor(Isa::kAvx512) says this CPU can run them.
// Everything but the entry points has internal linkage, so no code built for this ISA can
// be picked by the linker for another.
//
// The columns are taken 64 at a time: that tile of X is packed as groups of 4 consecutive
// k per column ([K/4][cols][4] bytes), so that one 64-byte load holds 16 columns x 4 k and
// one dword holds a column's 4 k. The row path then vectorizes over columns (each weight
// row's 4 values of a group are one broadcast dword); the panel path (below) over rows.
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

inline int64_t MinI64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t RoundUp(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
inline __mmask16 Lanes(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1u);
}

// The float epilogue of int8_kernel_table.h for one row: fma(float(acc - corr), scale, bias).
struct RowOut {
  __m512i corr;
  __m512 scale, bias;
};
inline RowOut RowOutFor(const Int8WeightsView& w, const Int8GemmSlice& s, int64_t o) {
  return {_mm512_set1_epi32(s.x_zero_point * w.row_sums[o]), _mm512_set1_ps(w.scales[o] * s.x_scale),
          _mm512_set1_ps(s.bias != nullptr ? s.bias[o] : 0.0f)};
}
inline __m512 Dequant(__m512i acc, const RowOut& r, bool relu) {
  const __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, r.corr)), r.scale, r.bias);
  return relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;
}
// acc += the 4 u8 x s8 products of each dword lane. GCC 12 compiles _mm512_dpbusd_epi32
// with register copies (and spills) around each accumulator; the asm keeps it in place.
inline void Dpbusd(__m512i& acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
}

inline int32_t LoadDword(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------------------------------
// Packing, and the row path.

inline const uint8_t* RowOf(const Int8GemmSlice& s, int64_t k) {
  return s.x + (s.x_rows != nullptr ? s.x_rows[k] : k * s.ldx);
}
inline int64_t ColOf(const Int8GemmSlice& s, int64_t p) { return s.x_cols != nullptr ? s.x_cols[p] : p; }

// The quantization of int8_kernel_table.h (QuantizeU8Kernel) on 16 floats, lanes m.
struct Quantizer {
  explicit Quantizer(const Int8GemmSlice& s)
      : inv(_mm512_set1_ps(1.0f / s.x_scale)), zp(_mm512_set1_ps(static_cast<float>(s.x_zero_point))) {}
  __m512i operator()(const float* x, __mmask16 m) const {
    const __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x), inv, zp);
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(255.0f)));
  }
  __m512 inv, zp;
};

// The columns of one 16-column vector as runs of consecutive offsets: lanes `mask[i]` of
// a row read the row at offset[i] + lane (one run unless x_cols breaks them).
struct ColumnRuns {
  int count = 0;
  __mmask16 mask[16];
  int64_t offset[16];
};
inline ColumnRuns RunsOf(const Int8GemmSlice& s, int64_t p, int64_t lanes) {
  ColumnRuns r;
  for (int64_t j = 0; j < lanes;) {
    const int64_t first = ColOf(s, p + j);
    int64_t len = 1;
    while (j + len < lanes && ColOf(s, p + j + len) == first + len) ++len;
    r.mask[r.count] = static_cast<__mmask16>(Lanes(len) << j);
    r.offset[r.count++] = first - j;
    j += len;
  }
  return r;
}

// Packs columns [p, p + valid) of X rows [0, k) into dst as T vectors of 16 columns per
// group of 4 rows: dst[(g * T * 16 + c) * 4 + i] = X[4g + i, p + c], zero for c >= valid
// and for rows >= k. Groups: ld / 4.
template <int T>
void PackQuads(const Int8GemmSlice& s, int64_t p, int64_t k, int64_t ld, int64_t valid, uint8_t* dst) {
  ColumnRuns runs[T];
  for (int v = 0; v < T; ++v) runs[v] = RunsOf(s, p + 16 * v, MinI64(16, valid - 16 * v));
  const Quantizer quantize(s);
  const int64_t groups = ld / 4;
  for (int64_t g = 0; g < groups; ++g) {
    #pragma GCC unroll 16
    for (int v = 0; v < T; ++v) {
      __m128i r[4];
      #pragma GCC unroll 16
      for (int i = 0; i < 4; ++i) {
        r[i] = _mm_setzero_si128();
        const int64_t row = 4 * g + i;
        if (row >= k) continue;
        if (s.xf != nullptr) {  // fp32 X: quantize while packing
          const __mmask16 m = Lanes(valid - 16 * v);
          r[i] = _mm512_maskz_cvtusepi32_epi8(m, quantize(s.xf + row * s.ldx + p + 16 * v, m));
          continue;
        }
        const uint8_t* x = RowOf(s, row);
        const ColumnRuns& run = runs[v];
        for (int j = 0; j < run.count; ++j) r[i] = _mm_mask_loadu_epi8(r[i], run.mask[j], x + run.offset[j]);
      }
      const __m128i t0 = _mm_unpacklo_epi8(r[0], r[1]), t1 = _mm_unpackhi_epi8(r[0], r[1]);
      const __m128i t2 = _mm_unpacklo_epi8(r[2], r[3]), t3 = _mm_unpackhi_epi8(r[2], r[3]);
      __m128i* out = reinterpret_cast<__m128i*>(dst + (g * T * 16 + 16 * v) * 4);
      _mm_storeu_si128(out + 0, _mm_unpacklo_epi16(t0, t2));  // columns 0-3, 4 k each
      _mm_storeu_si128(out + 1, _mm_unpackhi_epi16(t0, t2));  // 4-7
      _mm_storeu_si128(out + 2, _mm_unpacklo_epi16(t1, t3));  // 8-11
      _mm_storeu_si128(out + 3, _mm_unpackhi_epi16(t1, t3));  // 12-15
    }
  }
}

// One column tile: T vectors (16 columns each, `valid` of them real) of a packed tile.
struct ColumnTile {
  const uint8_t* packed;
  int64_t p;  // first column
  int64_t valid;
};

// R rows from o times the tile: R x T accumulators.
template <int R, int T>
void Tile(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c, int64_t o) {
  __m512i acc[R][T];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  }
  const int8_t* wr = w.values + o * w.ld;
  const uint8_t* xg = c.packed;
  const int64_t groups = w.ld / 4;
  for (int64_t g = 0; g < groups; ++g, xg += T * 64) {
    __m512i xv[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) xv[t] = _mm512_loadu_si512(xg + 64 * t);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i wb = _mm512_set1_epi32(LoadDword(wr + r * w.ld + 4 * g));
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) Dpbusd(acc[r][t], xv[t], wb);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const RowOut out = RowOutFor(w, s, o + r);
    float* y = s.y + (o + r) * s.ldy + c.p;
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      _mm512_mask_storeu_ps(y + 16 * t, Lanes(c.valid - 16 * t), Dequant(acc[r][t], out, s.relu));
    }
  }
}

// Tile<rows, T> for 1 <= rows <= R.
template <int R, int T>
void TileRows(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c, int64_t o, int64_t rows) {
  if constexpr (R > 0) {
    if (rows == R) {
      Tile<R, T>(w, s, c, o);
    } else {
      TileRows<R - 1, T>(w, s, c, o, rows);
    }
  }
}

// All rows of the slice times one column tile of T vectors, R rows at a time.
template <int R, int T>
void Rows(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c) {
  int64_t o = s.row_begin;
  for (; o + R <= s.row_end; o += R) Tile<R, T>(w, s, c, o);
  if (o < s.row_end) TileRows<R - 1, T>(w, s, c, o, s.row_end - o);
}

// Rows of the slice times a packed tile of T vectors; R x T <= 24 accumulators.
template <int T>
void RowsFor(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c) {
  if constexpr (T == 4) Rows<6, 4>(w, s, c);
  if constexpr (T == 3) Rows<8, 3>(w, s, c);
  if constexpr (T == 2) Rows<12, 2>(w, s, c);
  if constexpr (T == 1) Rows<12, 1>(w, s, c);
}

// ---------------------------------------------------------------------------------------
// Channel panels: vectorize over output rows instead. A vector of a weight panel holds 16
// rows x 4 k; each column's 4 k of the packed tile (one dword) is broadcast against it. No
// lanes are lost to a partial column tile (a 7x7 image is 49 of 64 lanes in the row path),
// and a linear layer at batch 1 needs no horizontal sums. Outputs are 16 rows of one
// column: a scatter with stride ldy (a plain store when ldy is 1).

struct PanelTileArgs {
  const uint8_t* packed;  // a packed tile (PackQuads or PackNarrow)
  int64_t stride;         // dwords per group in it: its vectors times 16 (PackNarrow: valid)
  int64_t p;              // its first column
  int64_t valid;          // its real columns
  __m512i scatter;        // lane * ldy
};

// Rows per panel tile for N columns: M x N accumulators + M weight vectors + 1 broadcast
// fit the 32 registers, with enough independent accumulators for narrow N.
constexpr int PanelsFor(int n) { return n <= 2 ? 8 : n == 3 ? 6 : n == 4 ? 5 : n <= 6 ? 4 : 2; }

// Rows [o, o + 16 M) (clipped to row_end; o a multiple of 16) times columns [c, c + N).
template <int M, int N>
void PanelTile(const Int8WeightsView& w, const Int8GemmSlice& s, const PanelTileArgs& t, int64_t o, int64_t c) {
  __m512i acc[M][N];
  #pragma GCC unroll 16
  for (int m = 0; m < M; ++m) {
    #pragma GCC unroll 16
    for (int n = 0; n < N; ++n) acc[m][n] = _mm512_setzero_si512();
  }
  const int8_t* wp = w.panels + o * w.ld;  // panel o / 16 (16 * ld bytes per panel)
  const int8_t* xp = reinterpret_cast<const int8_t*>(t.packed) + c * 4;
  const int64_t groups = w.ld / 4;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i wv[M];
    #pragma GCC unroll 16
    for (int m = 0; m < M; ++m) wv[m] = _mm512_loadu_si512(wp + m * 16 * w.ld + g * 64);
    #pragma GCC unroll 16
    for (int n = 0; n < N; ++n) {
      const __m512i xb = _mm512_set1_epi32(LoadDword(xp + (g * t.stride + n) * 4));
      #pragma GCC unroll 16
      for (int m = 0; m < M; ++m) Dpbusd(acc[m][n], xb, wv[m]);
    }
  }
  #pragma GCC unroll 16
  for (int m = 0; m < M; ++m) {
    const int64_t row = o + 16 * m;
    const __mmask16 rows = Lanes(s.row_end - row);
    const __m512i sums = _mm512_maskz_loadu_epi32(rows, w.row_sums + row);
    const RowOut out{_mm512_mullo_epi32(_mm512_set1_epi32(s.x_zero_point), sums),
                     _mm512_mul_ps(_mm512_maskz_loadu_ps(rows, w.scales + row), _mm512_set1_ps(s.x_scale)),
                     s.bias != nullptr ? _mm512_maskz_loadu_ps(rows, s.bias + row) : _mm512_setzero_ps()};
    float* y = s.y + row * s.ldy + t.p + c;
    #pragma GCC unroll 16
    for (int n = 0; n < N; ++n) {
      const __m512 v = Dequant(acc[m][n], out, s.relu);
      if (s.ldy == 1) {
        _mm512_mask_storeu_ps(y + n, rows, v);
      } else {
        _mm512_mask_i32scatter_ps(y + n, rows, t.scatter, v, 4);
      }
    }
  }
}

// PanelTile<M, n> for 1 <= n <= N.
template <int M, int N>
void PanelTileN(const Int8WeightsView& w, const Int8GemmSlice& s, const PanelTileArgs& t, int64_t o, int64_t c,
                int64_t n) {
  if constexpr (N > 0) {
    if (n == N) {
      PanelTile<M, N>(w, s, t, o, c);
    } else {
      PanelTileN<M, N - 1>(w, s, t, o, c, n);
    }
  }
}

template <int M, int N>
void PanelColumns(const Int8WeightsView& w, const Int8GemmSlice& s, const PanelTileArgs& t, int64_t o) {
  int64_t c = 0;
  for (; c + N <= t.valid; c += N) PanelTile<M, N>(w, s, t, o, c);
  if (c < t.valid) PanelTileN<M, N - 1>(w, s, t, o, c, t.valid - c);
}

// Rows [o, row_end) from a multiple of 16, N columns at a time.
template <int N>
void PanelRows(const Int8WeightsView& w, const Int8GemmSlice& s, const PanelTileArgs& t, int64_t o) {
  constexpr int M = PanelsFor(N);
  for (; o + 16 * M <= s.row_end; o += 16 * M) PanelColumns<M, N>(w, s, t, o);
  for (; o < s.row_end; o += 16) PanelColumns<1, N>(w, s, t, o);
}

inline __m512i ScatterIndex(const Int8GemmSlice& s) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(static_cast<int32_t>(s.ldy)));
}

// Rows [o, row_end) (o a multiple of 16) times the tile's columns.
void Panels(const Int8WeightsView& w, const Int8GemmSlice& s, const PanelTileArgs& t, int64_t o) {
  if (t.valid == 1) {
    PanelRows<1>(w, s, t, o);
  } else if (t.valid <= 3) {
    PanelRows<2>(w, s, t, o);
  } else if (t.valid <= 7) {
    PanelRows<4>(w, s, t, o);
  } else {
    PanelRows<12>(w, s, t, o);
  }
}

// Packs columns [p, p + valid) of X rows [0, k) as one dword of 4 k per column and group:
// dst[(g * valid + c) * 4 + i] = X[4g + i, p + c], zero for rows >= k. Enough for the
// panel path, which reads no other column; far cheaper than PackQuads for a few columns.
void PackNarrow(const Int8GemmSlice& s, int64_t p, int64_t k, int64_t ld, int64_t valid, uint8_t* dst) {
  if (valid == 1 && s.x_rows == nullptr && s.ldx == 1) {  // one contiguous column
    if (s.xf != nullptr) {
      QuantizeU8Avx512(s.xf + p, k, 1.0f / s.x_scale, s.x_zero_point, dst);
    } else {
      __builtin_memcpy(dst, s.x + ColOf(s, p), k);
    }
    for (int64_t row = k; row < ld; ++row) dst[row] = 0;
    return;
  }
  const Quantizer quantize(s);
  for (int64_t c = 0; c < valid; ++c) {
    const int64_t col = ColOf(s, p + c);
    for (int64_t row = 0; row < ld; ++row) {
      uint8_t q = 0;
      if (row < k && s.xf != nullptr) {
        q = static_cast<uint8_t>(_mm_cvtsi128_si32(_mm512_castsi512_si128(quantize(s.xf + row * s.ldx + p + c, 1))));
      } else if (row < k) {
        q = RowOf(s, row)[col];
      }
      dst[(row / 4 * valid + c) * 4 + row % 4] = q;
    }
  }
}

// The slice's rows times a packed tile of T vectors through the panels; rows before the
// first multiple of 16 go through the row path.
template <int T>
void PanelSlice(const Int8WeightsView& w, const Int8GemmSlice& s, const ColumnTile& c) {
  const int64_t head = MinI64(s.row_end, RoundUp(s.row_begin, 16));
  if (head > s.row_begin) {
    Int8GemmSlice h = s;
    h.row_end = head;
    RowsFor<T>(w, h, c);
  }
  if (head < s.row_end) Panels(w, s, PanelTileArgs{c.packed, T * 16, c.p, c.valid, ScatterIndex(s)}, head);
}

// Whether the panels waste fewer lanes than the row path on a tile of `valid` columns (the
// panels pay ~10% for their broadcasts and scattered stores).
bool PreferPanels(const Int8GemmSlice& s, int64_t valid) {
  if (s.ldy > (int64_t{1} << 26)) return false;  // lane * ldy must fit int32
  const int64_t rows = s.row_end - s.row_begin;
  return 11 * RoundUp(rows, 16) * valid < 10 * rows * RoundUp(valid, 16);
}

template <int T>
void PackAndRun(const Int8WeightsView& w, const Int8GemmSlice& s, int64_t p, int64_t valid) {
  PackQuads<T>(s, p, w.cols, w.ld, valid, s.scratch);
  const ColumnTile c{s.scratch, p, valid};
  if (PreferPanels(s, valid)) {
    PanelSlice<T>(w, s, c);
  } else {
    RowsFor<T>(w, s, c);
  }
}

}  // namespace

void QuantizeU8Avx512(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q) {
  const __m512 inv = _mm512_set1_ps(inv_scale), zp = _mm512_set1_ps(static_cast<float>(zero_point));
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = Lanes(n - i);
    __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), inv, zp);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    // Narrowed in registers: the memory form of vpmovusdb is slow on some cores (Zen 4).
    _mm_mask_storeu_epi8(q + i, m, _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(v)));
  }
}

void Int8GemmAvx512(const Int8WeightsView& w, const Int8GemmSlice& s) {
  const int64_t cols = s.p_end - s.p_begin;
  if (cols < 8 && s.row_begin % 16 == 0 && PreferPanels(s, cols)) {  // e.g. a linear layer at batch 1
    PackNarrow(s, s.p_begin, w.cols, w.ld, cols, s.scratch);
    Panels(w, s, PanelTileArgs{s.scratch, cols, s.p_begin, cols, ScatterIndex(s)}, s.row_begin);
    return;
  }
  for (int64_t p = s.p_begin; p < s.p_end; p += 64) {
    const int64_t valid = MinI64(64, s.p_end - p);
    switch ((valid + 15) / 16) {
      case 4: PackAndRun<4>(w, s, p, valid); break;
      case 3: PackAndRun<3>(w, s, p, valid); break;
      case 2: PackAndRun<2>(w, s, p, valid); break;
      default: PackAndRun<1>(w, s, p, valid); break;
    }
  }
}

// One packed tile: ld * 64 bytes.
int64_t Int8ScratchAvx512(int64_t k, int64_t) { return RoundUp(k, 4) * 64 + 64; }

}  // namespace acs::kernels::internal
