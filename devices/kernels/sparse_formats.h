// Packed sparse weight formats for Y[O x P] = W[O x K] X[K x P] (+ bias), and their packing
// from a dense row-major W whose pruned entries are already zero.
//
// A packed matrix is a plain value: copyable, immutable after packing, safe to share
// between threads. The kernels trust its invariants; build one only through Pack*().
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "core/status.h"

namespace acs::kernels {

// A dense row-major matrix that is read, not owned.
struct DenseView {
  const float* data = nullptr;  // rows * cols floats, element (r, c) at data[r * cols + c]
  int64_t rows = 0;             // O
  int64_t cols = 0;             // K
};

// 1xN block-sparse ("block-CSR over row-blocks"): the rows are cut into row-blocks of
// `block` consecutive output rows; a block is the N-vector W[rb*N .. rb*N+N-1, k] of one
// column k, kept when any of its entries is non-zero. The last row-block is padded with
// zero rows when rows % block != 0.
struct BlockSparseMatrix {
  int block = 0;                 // N: 4, 8, 16 or 32
  int64_t rows = 0;              // O
  int64_t cols = 0;              // K
  std::vector<int64_t> row_ptr;  // num_row_blocks() + 1 offsets into col_idx
  std::vector<int32_t> col_idx;  // k of each kept block, increasing within a row-block
  std::vector<float> values;     // block * col_idx.size(): block b holds rows r at values[b*N + r]

  int64_t num_row_blocks() const { return (rows + block - 1) / block; }
  int64_t num_blocks() const { return static_cast<int64_t>(col_idx.size()); }
};

// Unstructured compressed sparse rows.
struct CsrMatrix {
  int64_t rows = 0;              // O
  int64_t cols = 0;              // K
  std::vector<int64_t> row_ptr;  // rows + 1 offsets into col_idx / values
  std::vector<int32_t> col_idx;  // column of each non-zero, increasing within a row
  std::vector<float> values;

  int64_t nnz() const { return static_cast<int64_t>(values.size()); }
};

// N:M: every run of M consecutive columns k of a row (the last run may be shorter) keeps
// at most N values. Each run stores exactly N slots (value, offset within the run); a run
// with fewer non-zeros fills its spare slots with value 0 at offset 0.
struct NmMatrix {
  int n = 0;                     // kept values per run
  int m = 0;                     // run length, <= 255
  int64_t rows = 0;              // O
  int64_t cols = 0;              // K
  std::vector<float> values;     // rows * runs_per_row() * n, run g of row o at (o*runs + g)*n
  std::vector<uint8_t> offsets;  // same layout: k = g*m + offset

  int64_t runs_per_row() const { return (cols + m - 1) / m; }
};

// Any packed weight; what the conv layer and the generic entry points accept.
using SparseWeights = std::variant<BlockSparseMatrix, CsrMatrix, NmMatrix>;

// Packs W. Errors (InvalidArgument): null data, non-positive sizes, cols >= 2^31, block not
// in {4, 8, 16, 32}.
StatusOr<BlockSparseMatrix> PackBlockSparse(const DenseView& w, int block);
// Errors as above (without block).
StatusOr<CsrMatrix> PackCsr(const DenseView& w);
// Errors as above, 1 <= n <= m <= 255 required, and InvalidArgument naming the row and
// columns of the first run holding more than n non-zeros.
StatusOr<NmMatrix> PackNm(const DenseView& w, int n, int m);

// Row-major dense O x K copy of a packed matrix (padding rows dropped).
std::vector<float> ToDense(const SparseWeights& w);
int64_t Rows(const SparseWeights& w);
int64_t Cols(const SparseWeights& w);
// Multiply-adds per output column that the packed form performs (padding included).
int64_t StoredValues(const SparseWeights& w);

}  // namespace acs::kernels
