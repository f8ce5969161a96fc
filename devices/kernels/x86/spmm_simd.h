// Internal: the SIMD sparse kernels, written once over a vector type V (vec_avx2.h,
// vec_avx512.h) and compiled per ISA by spmm_avx2.cc / spmm_avx512.cc with that ISA's
// flags. Everything here has internal linkage, so no code built for one ISA can be picked
// by the linker for another. Include only from those files, after the vector header.
//
// All kernels vectorize over the columns P of X and Y. A column tile of T vectors is kept
// in registers while the non-zeros stream past; the last, partial tile uses masked loads
// and stores, so no kernel reads or writes outside the slice.
#pragma once

#include <cstdint>

#include "devices/kernels/kernel_impls.h"

namespace acs::kernels::internal {
namespace {

inline int64_t MinI64(int64_t a, int64_t b) { return a < b ? a : b; }

// Vectors needed for `rem` columns, and the live lanes of the last one.
struct Tail {
  explicit Tail(int64_t rem, int width)
      : vectors(static_cast<int>((rem + width - 1) / width)),
        last(static_cast<int>(rem - (vectors - 1) * static_cast<int64_t>(width))) {}
  int vectors;
  int last;
};

// ---------------------------------------------------------------------------------------
// 1xN, wide P: R rows of one row-block times T vectors of columns live in R*T registers.
// Each kept block loads its T vectors of X once and feeds them to R FMAs each.

struct BlockArgs {
  const float* w;        // values of the row-block's first block, offset to the first row
  int n;                 // stride between blocks (N)
  const int32_t* cols;   // columns of the row-block's blocks
  int64_t blocks;
  const float* x;        // X at the tile's first column
  int64_t ldx;
  const float* bias;     // R floats (zeros where there is no bias or no row)
  float* y;              // Y at the tile's first row and column
  int64_t ldy;
  int rows;              // rows to store, <= R
};

template <class V, int R, int T, bool kMasked>
inline void BlockTile(const BlockArgs& a, int last) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  Reg acc[R][T];
  for (int r = 0; r < R; ++r) {
    const Reg b = V::Set1(a.bias[r]);
    for (int t = 0; t < T; ++t) acc[r][t] = b;
  }
  for (int64_t j = 0; j < a.blocks; ++j) {
    const float* xr = a.x + a.cols[j] * a.ldx;
    Reg xv[T];
    for (int t = 0; t < T; ++t) {
      xv[t] = (kMasked && t == T - 1) ? V::LoadN(xr + t * W, last) : V::Load(xr + t * W);
    }
    const float* wj = a.w + j * a.n;
    for (int r = 0; r < R; ++r) {
      const Reg wr = V::Set1(wj[r]);
      for (int t = 0; t < T; ++t) acc[r][t] = V::Fma(wr, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    if (r >= a.rows) break;
    float* yr = a.y + r * a.ldy;
    for (int t = 0; t < T; ++t) {
      if (kMasked && t == T - 1) {
        V::StoreN(yr + t * W, acc[r][t], last);
      } else {
        V::Store(yr + t * W, acc[r][t]);
      }
    }
  }
}

// Masked tile of `vectors` (<= T) vectors.
template <class V, int R, int T>
inline void BlockTail(const BlockArgs& a, const Tail& tail) {
  if constexpr (T > 0) {
    if (tail.vectors == T) {
      BlockTile<V, R, T, true>(a, tail.last);
    } else {
      BlockTail<V, R, T - 1>(a, tail);
    }
  }
}

template <class V, int N, int R, int T>
void BlockSparseWide(const BlockSparseView& w, const SpmmSlice& s) {
  static_assert(N % R == 0, "a row group must divide the block");
  constexpr int W = V::kWidth;
  constexpr int kTile = T * W;
  for (int64_t rb = s.row_begin; rb < s.row_end; ++rb) {
    const int64_t b0 = w.row_ptr[rb];
    for (int g = 0; g < N; g += R) {
      const int64_t row0 = rb * N + g;
      if (row0 >= w.rows) break;
      const int rows = static_cast<int>(MinI64(R, w.rows - row0));
      float bias[R];
      for (int r = 0; r < R; ++r) bias[r] = (s.bias != nullptr && r < rows) ? s.bias[row0 + r] : 0.0f;
      BlockArgs a{w.values + b0 * N + g, N, w.col_idx + b0, w.row_ptr[rb + 1] - b0,
                  nullptr, s.ldx, bias, nullptr, s.ldy, rows};
      int64_t p = s.p_begin;
      for (; p + kTile <= s.p_end; p += kTile) {
        a.x = s.x + p;
        a.y = s.y + row0 * s.ldy + p;
        BlockTile<V, R, T, false>(a, W);
      }
      if (p < s.p_end) {
        a.x = s.x + p;
        a.y = s.y + row0 * s.ldy + p;
        BlockTail<V, R, T>(a, Tail(s.p_end - p, W));
      }
    }
  }
}

// 1xN, narrow P (fewer columns than N or than a vector): one column at a time, x[k]
// broadcast and multiplied into the N-vector of weights of each block (NV vectors of VB).
// U blocks are in flight at once to hide FMA latency.
template <class VB, int NV>
void BlockSparseNarrow(const BlockSparseView& w, const SpmmSlice& s) {
  using Reg = typename VB::Reg;
  constexpr int VW = VB::kWidth;
  constexpr int N = VW * NV;
  constexpr int U = NV >= 8 ? 1 : 8 / NV;
  for (int64_t rb = s.row_begin; rb < s.row_end; ++rb) {
    const int64_t b0 = w.row_ptr[rb];
    const int64_t nb = w.row_ptr[rb + 1] - b0;
    const int32_t* cols = w.col_idx + b0;
    const float* vals = w.values + b0 * N;
    const int64_t row0 = rb * N;
    const int rows = static_cast<int>(MinI64(N, w.rows - row0));
    for (int64_t p = s.p_begin; p < s.p_end; ++p) {
      const float* x = s.x + p;
      Reg acc[U][NV];
      for (int u = 0; u < U; ++u) {
        for (int v = 0; v < NV; ++v) acc[u][v] = VB::Zero();
      }
      int64_t j = 0;
      for (; j + U <= nb; j += U) {
        for (int u = 0; u < U; ++u) {
          const Reg xs = VB::Set1(x[cols[j + u] * s.ldx]);
          const float* wj = vals + (j + u) * N;
          for (int v = 0; v < NV; ++v) acc[u][v] = VB::Fma(xs, VB::Load(wj + v * VW), acc[u][v]);
        }
      }
      for (; j < nb; ++j) {
        const Reg xs = VB::Set1(x[cols[j] * s.ldx]);
        for (int v = 0; v < NV; ++v) acc[0][v] = VB::Fma(xs, VB::Load(vals + j * N + v * VW), acc[0][v]);
      }
      alignas(64) float out[N];
      for (int v = 0; v < NV; ++v) {
        for (int u = 1; u < U; ++u) acc[0][v] = VB::Add(acc[0][v], acc[u][v]);
        VB::Store(out + v * VW, acc[0][v]);
      }
      for (int r = 0; r < rows; ++r) {
        s.y[(row0 + r) * s.ldy + p] = out[r] + (s.bias != nullptr ? s.bias[row0 + r] : 0.0f);
      }
    }
  }
}

// Picks the kernel for the slice: narrow when it has fewer columns than both the block and
// a vector of the wide kernel (fewer vector FMAs); otherwise wide, except that a short
// remainder past the last whole vector (at most half a block or vector) goes to narrow
// rather than to a mostly empty masked tile.
template <int kWidth>
inline void BlockSparseDispatch(const BlockSparseView& w, const SpmmSlice& s, BlockSparseKernel wide,
                                BlockSparseKernel narrow) {
  const int64_t columns = s.p_end - s.p_begin;
  const int64_t small = w.block < kWidth ? w.block : kWidth;
  if (columns < small) {
    narrow(w, s);
    return;
  }
  const int64_t rem = columns % kWidth;
  if (rem == 0 || 2 * rem > small) {
    wide(w, s);
    return;
  }
  SpmmSlice head = s, tail = s;
  head.p_end = tail.p_begin = s.p_end - rem;
  wide(w, head);
  narrow(w, tail);
}

// ---------------------------------------------------------------------------------------
// Row-wise kernels (CSR, N:M), wide P: one output row times T vectors of columns; every
// non-zero w[o, k] adds w * X[k, tile] into them. C independent accumulator sets (at least
// 8 registers in all) hide FMA latency. Column tiles are the outer loop, so that one tile
// of X serves every row while it is cache-hot.

template <class V, int T, bool kMasked>
inline void Axpy(typename V::Reg* acc, float w, const float* xr, int last) {
  constexpr int W = V::kWidth;
  const typename V::Reg wv = V::Set1(w);
  for (int t = 0; t < T; ++t) {
    const typename V::Reg xv = (kMasked && t == T - 1) ? V::LoadN(xr + t * W, last) : V::Load(xr + t * W);
    acc[t] = V::Fma(wv, xv, acc[t]);
  }
}

template <class V, int T, int C, bool kMasked>
inline void StoreRow(typename V::Reg (&acc)[C][T], float bias, float* y, int last) {
  constexpr int W = V::kWidth;
  for (int t = 0; t < T; ++t) {
    typename V::Reg sum = V::Add(acc[0][t], V::Set1(bias));
    for (int c = 1; c < C; ++c) sum = V::Add(sum, acc[c][t]);
    if (kMasked && t == T - 1) {
      V::StoreN(y + t * W, sum, last);
    } else {
      V::Store(y + t * W, sum);
    }
  }
}

struct CsrRow {
  const float* values;
  const int32_t* cols;
  int64_t nnz;
};

template <class V, int T, int C, bool kMasked>
inline void CsrTile(const CsrRow& row, const float* x, int64_t ldx, float bias, float* y, int last) {
  typename V::Reg acc[C][T];
  for (int c = 0; c < C; ++c) {
    for (int t = 0; t < T; ++t) acc[c][t] = V::Zero();
  }
  int64_t j = 0;
  for (; j + C <= row.nnz; j += C) {
    for (int c = 0; c < C; ++c) Axpy<V, T, kMasked>(acc[c], row.values[j + c], x + row.cols[j + c] * ldx, last);
  }
  for (; j < row.nnz; ++j) Axpy<V, T, kMasked>(acc[0], row.values[j], x + row.cols[j] * ldx, last);
  StoreRow<V, T, C, kMasked>(acc, bias, y, last);
}

struct NmRow {
  const float* values;    // runs * n slots
  const uint8_t* offsets;
  int64_t runs;
  int n;
  int m;
};

// kN > 0 fixes n at compile time (the common 1:M and 2:M); kN == 0 reads it from the row.
template <class V, int T, int C, bool kMasked, int kN>
inline void NmTile(const NmRow& row, const float* x, int64_t ldx, float bias, float* y, int last) {
  const int n = kN > 0 ? kN : row.n;
  const int64_t step = row.m * ldx;
  typename V::Reg acc[C][T];
  for (int c = 0; c < C; ++c) {
    for (int t = 0; t < T; ++t) acc[c][t] = V::Zero();
  }
  int64_t g = 0;
  for (; g + C <= row.runs; g += C) {
    for (int c = 0; c < C; ++c) {
      const float* xg = x + (g + c) * step;
      for (int i = 0; i < n; ++i) {
        const int64_t slot = (g + c) * n + i;
        Axpy<V, T, kMasked>(acc[c], row.values[slot], xg + row.offsets[slot] * ldx, last);
      }
    }
  }
  for (; g < row.runs; ++g) {
    for (int i = 0; i < n; ++i) {
      const int64_t slot = g * n + i;
      Axpy<V, T, kMasked>(acc[0], row.values[slot], x + g * step + row.offsets[slot] * ldx, last);
    }
  }
  StoreRow<V, T, C, kMasked>(acc, bias, y, last);
}

// Runs Tile<T, C, masked> over the columns of one row: full tiles of T0 vectors, then one
// masked tile of as many vectors as remain, with more accumulator sets the narrower it is.
template <class V, int T0, class Row, template <class, int, int, bool> class Tile, int T = T0>
inline void RowTail(const Row& row, const float* x, int64_t ldx, float bias, float* y, const Tail& tail) {
  if constexpr (T > 0) {
    if (tail.vectors == T) {
      Tile<V, T, (T0 + T - 1) / T, true>::Run(row, x, ldx, bias, y, tail.last);
    } else {
      RowTail<V, T0, Row, Tile, T - 1>(row, x, ldx, bias, y, tail);
    }
  }
}

template <class V, int T0, class Row, template <class, int, int, bool> class Tile>
inline void RowColumns(const Row& row, const SpmmSlice& s, float bias, float* y) {
  constexpr int W = V::kWidth;
  int64_t p = s.p_begin;
  constexpr int kChains = T0 >= 8 ? 1 : 8 / T0;
  for (; p + T0 * W <= s.p_end; p += T0 * W) Tile<V, T0, kChains, false>::Run(row, s.x + p, s.ldx, bias, y + p, W);
  if (p < s.p_end) RowTail<V, T0, Row, Tile>(row, s.x + p, s.ldx, bias, y + p, Tail(s.p_end - p, W));
}

template <class V, int T, int C, bool kMasked>
struct CsrTileOp {
  static void Run(const CsrRow& r, const float* x, int64_t ldx, float b, float* y, int last) {
    CsrTile<V, T, C, kMasked>(r, x, ldx, b, y, last);
  }
};

template <int kN>
struct NmTileOpN {
  template <class V, int T, int C, bool kMasked>
  struct Op {
    static void Run(const NmRow& r, const float* x, int64_t ldx, float b, float* y, int last) {
      NmTile<V, T, C, kMasked, kN>(r, x, ldx, b, y, last);
    }
  };
};

template <class V, int T>
void CsrRows(const CsrView& w, const SpmmSlice& s) {
  constexpr int kTile = T * V::kWidth;
  for (int64_t p0 = s.p_begin; p0 < s.p_end; p0 += kTile) {
    SpmmSlice tile = s;
    tile.p_begin = p0;
    tile.p_end = MinI64(s.p_end, p0 + kTile);
    for (int64_t o = s.row_begin; o < s.row_end; ++o) {
      const int64_t i0 = w.row_ptr[o];
      const CsrRow row{w.values + i0, w.col_idx + i0, w.row_ptr[o + 1] - i0};
      const float bias = s.bias != nullptr ? s.bias[o] : 0.0f;
      RowColumns<V, T, CsrRow, CsrTileOp>(row, tile, bias, s.y + o * s.ldy);
    }
  }
}

template <class V, int T, int kN>
void NmRowsN(const NmView& w, const SpmmSlice& s) {
  constexpr int kTile = T * V::kWidth;
  const int64_t runs = w.runs;
  for (int64_t p0 = s.p_begin; p0 < s.p_end; p0 += kTile) {
    SpmmSlice tile = s;
    tile.p_begin = p0;
    tile.p_end = MinI64(s.p_end, p0 + kTile);
    for (int64_t o = s.row_begin; o < s.row_end; ++o) {
      const int64_t slot0 = o * runs * w.n;
      const NmRow row{w.values + slot0, w.offsets + slot0, runs, w.n, w.m};
      const float bias = s.bias != nullptr ? s.bias[o] : 0.0f;
      RowColumns<V, T, NmRow, NmTileOpN<kN>::template Op>(row, tile, bias, s.y + o * s.ldy);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Row-wise kernels, narrow P (a linear layer at batch 1): one dot product per row and
// column, W non-zeros at a time with the activations gathered.

// Gathers index X rows with 32-bit element offsets: true when every row start fits.
inline bool GatherFits(int64_t cols, const SpmmSlice& s) {
  return (cols - 1) * s.ldx + (s.p_end - 1) < (int64_t{1} << 31) - 1;
}

template <class V>
void CsrDots(const CsrView& w, const SpmmSlice& s) {
  constexpr int W = V::kWidth;
  const typename V::Index ld = V::SetIndex(static_cast<int32_t>(s.ldx));
  for (int64_t p = s.p_begin; p < s.p_end; ++p) {
    const float* x = s.x + p;
    for (int64_t o = s.row_begin; o < s.row_end; ++o) {
      const int64_t end = w.row_ptr[o + 1];
      const int32_t* cols = w.col_idx;
      const float* vals = w.values;
      typename V::Reg acc0 = V::Zero(), acc1 = V::Zero();
      int64_t j = w.row_ptr[o];
      for (; j + 2 * W <= end; j += 2 * W) {
        acc0 = V::Fma(V::Load(vals + j), V::Gather(x, V::MulIndex(V::LoadIndex(cols + j), ld)), acc0);
        acc1 = V::Fma(V::Load(vals + j + W), V::Gather(x, V::MulIndex(V::LoadIndex(cols + j + W), ld)), acc1);
      }
      for (; j + W <= end; j += W) {
        acc0 = V::Fma(V::Load(vals + j), V::Gather(x, V::MulIndex(V::LoadIndex(cols + j), ld)), acc0);
      }
      float sum = V::ReduceAdd(V::Add(acc0, acc1));
      for (; j < end; ++j) sum += vals[j] * x[cols[j] * s.ldx];
      s.y[o * s.ldy + p] = sum + (s.bias != nullptr ? s.bias[o] : 0.0f);
    }
  }
}

// kN divides W: a vector of slots covers W / kN whole runs.
template <class V, int kN>
void NmDots(const NmView& w, const SpmmSlice& s) {
  constexpr int W = V::kWidth;
  static_assert(W % kN == 0, "runs must tile a vector");
  alignas(64) int32_t pattern[W];  // column of slot i relative to its vector's first run
  for (int i = 0; i < W; ++i) pattern[i] = i / kN * w.m;
  const typename V::Index base = V::LoadIndex(pattern);
  const typename V::Index ld = V::SetIndex(static_cast<int32_t>(s.ldx));
  const int64_t runs = w.runs, slots = runs * kN;
  for (int64_t p = s.p_begin; p < s.p_end; ++p) {
    const float* x = s.x + p;
    for (int64_t o = s.row_begin; o < s.row_end; ++o) {
      const float* vals = w.values + o * slots;
      const uint8_t* offs = w.offsets + o * slots;
      typename V::Reg acc = V::Zero();
      int64_t j = 0;
      for (; j + W <= slots; j += W) {
        const typename V::Index col =
            V::AddIndex(V::AddIndex(base, V::SetIndex(static_cast<int32_t>(j / kN * w.m))), V::LoadBytes(offs + j));
        acc = V::Fma(V::Load(vals + j), V::Gather(x, V::MulIndex(col, ld)), acc);
      }
      float sum = V::ReduceAdd(acc);
      for (; j < slots; ++j) sum += vals[j] * x[(j / kN * w.m + offs[j]) * s.ldx];
      s.y[o * s.ldy + p] = sum + (s.bias != nullptr ? s.bias[o] : 0.0f);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Entry points of the row-wise kernels.

// Dot products beat vector tiles below this many columns.
constexpr int64_t kMaxDotColumns = 2;

// VG: the vector type whose gathers are fastest (8-lane gathers beat 16-lane ones on the
// CPUs measured).
template <class V, int T, class VG>
void Csr(const CsrView& w, const SpmmSlice& s) {
  if (s.p_end - s.p_begin <= kMaxDotColumns && GatherFits(w.cols, s)) {
    CsrDots<VG>(w, s);
  } else {
    CsrRows<V, T>(w, s);
  }
}

template <class V, int T, class VG>
void NmRows(const NmView& w, const SpmmSlice& s) {
  if (s.p_end - s.p_begin <= kMaxDotColumns && GatherFits(w.cols, s)) {
    switch (w.n) {
      case 1: NmDots<VG, 1>(w, s); return;
      case 2: NmDots<VG, 2>(w, s); return;
      case 4: NmDots<VG, 4>(w, s); return;
      default: break;
    }
  }
  switch (w.n) {
    case 1: NmRowsN<V, T, 1>(w, s); break;
    case 2: NmRowsN<V, T, 2>(w, s); break;
    case 4: NmRowsN<V, T, 4>(w, s); break;
    default: NmRowsN<V, T, 0>(w, s); break;
  }
}

}  // namespace
}  // namespace acs::kernels::internal
