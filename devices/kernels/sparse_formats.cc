#include "devices/kernels/sparse_formats.h"

#include <algorithm>
#include <limits>
#include <string>

namespace acs::kernels {
namespace {

Status CheckDense(const DenseView& w) {
  if (w.data == nullptr) return Status::InvalidArgument("weight matrix has no data");
  if (w.rows <= 0 || w.cols <= 0) {
    return Status::InvalidArgument("weight matrix must be non-empty, got " + std::to_string(w.rows) +
                                   " x " + std::to_string(w.cols));
  }
  if (w.cols > std::numeric_limits<int32_t>::max()) {
    return Status::InvalidArgument("weight matrix has too many columns: " + std::to_string(w.cols));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<BlockSparseMatrix> PackBlockSparse(const DenseView& w, int block) {
  ACS_RETURN_IF_ERROR(CheckDense(w));
  if (block != 4 && block != 8 && block != 16 && block != 32) {
    return Status::InvalidArgument("1xN block size must be 4, 8, 16 or 32, got " + std::to_string(block));
  }
  BlockSparseMatrix m;
  m.block = block;
  m.rows = w.rows;
  m.cols = w.cols;
  const int64_t num_rb = m.num_row_blocks();
  m.row_ptr.assign(1, 0);
  m.row_ptr.reserve(num_rb + 1);
  for (int64_t rb = 0; rb < num_rb; ++rb) {
    const int64_t r0 = rb * block;
    const int64_t valid = std::min<int64_t>(block, w.rows - r0);
    for (int64_t k = 0; k < w.cols; ++k) {
      bool any = false;
      for (int64_t r = 0; r < valid && !any; ++r) any = w.data[(r0 + r) * w.cols + k] != 0.0f;
      if (!any) continue;
      m.col_idx.push_back(static_cast<int32_t>(k));
      for (int64_t r = 0; r < block; ++r) {
        m.values.push_back(r < valid ? w.data[(r0 + r) * w.cols + k] : 0.0f);
      }
    }
    m.row_ptr.push_back(static_cast<int64_t>(m.col_idx.size()));
  }
  return m;
}

StatusOr<CsrMatrix> PackCsr(const DenseView& w) {
  ACS_RETURN_IF_ERROR(CheckDense(w));
  CsrMatrix m;
  m.rows = w.rows;
  m.cols = w.cols;
  m.row_ptr.assign(1, 0);
  m.row_ptr.reserve(w.rows + 1);
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int64_t k = 0; k < w.cols; ++k) {
      const float v = w.data[r * w.cols + k];
      if (v == 0.0f) continue;
      m.col_idx.push_back(static_cast<int32_t>(k));
      m.values.push_back(v);
    }
    m.row_ptr.push_back(m.nnz());
  }
  return m;
}

StatusOr<NmMatrix> PackNm(const DenseView& w, int n, int m) {
  ACS_RETURN_IF_ERROR(CheckDense(w));
  if (n < 1 || m > 255 || n > m) {
    return Status::InvalidArgument("N:M needs 1 <= N <= M <= 255, got " + std::to_string(n) + ":" +
                                   std::to_string(m));
  }
  NmMatrix out;
  out.n = n;
  out.m = m;
  out.rows = w.rows;
  out.cols = w.cols;
  const int64_t runs = out.runs_per_row();
  out.values.assign(w.rows * runs * n, 0.0f);
  out.offsets.assign(w.rows * runs * n, 0);
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int64_t g = 0; g < runs; ++g) {
      const int64_t k0 = g * m;
      const int64_t len = std::min<int64_t>(m, w.cols - k0);
      const int64_t slot0 = (r * runs + g) * n;
      int kept = 0;
      for (int64_t i = 0; i < len; ++i) {
        const float v = w.data[r * w.cols + k0 + i];
        if (v == 0.0f) continue;
        if (kept == n) {
          int total = 0;
          for (int64_t j = 0; j < len; ++j) total += w.data[r * w.cols + k0 + j] != 0.0f;
          return Status::InvalidArgument(
              "row " + std::to_string(r) + ", columns " + std::to_string(k0) + ".." +
              std::to_string(k0 + len - 1) + " hold " + std::to_string(total) + " non-zeros; " +
              std::to_string(n) + ":" + std::to_string(m) + " allows at most " + std::to_string(n));
        }
        out.values[slot0 + kept] = v;
        out.offsets[slot0 + kept] = static_cast<uint8_t>(i);
        ++kept;
      }
    }
  }
  return out;
}

std::vector<float> ToDense(const SparseWeights& w) {
  struct Visitor {
    std::vector<float> operator()(const BlockSparseMatrix& m) const {
      std::vector<float> d(m.rows * m.cols, 0.0f);
      for (int64_t rb = 0; rb < m.num_row_blocks(); ++rb) {
        for (int64_t b = m.row_ptr[rb]; b < m.row_ptr[rb + 1]; ++b) {
          for (int64_t r = 0; r < m.block && rb * m.block + r < m.rows; ++r) {
            d[(rb * m.block + r) * m.cols + m.col_idx[b]] = m.values[b * m.block + r];
          }
        }
      }
      return d;
    }
    std::vector<float> operator()(const CsrMatrix& m) const {
      std::vector<float> d(m.rows * m.cols, 0.0f);
      for (int64_t r = 0; r < m.rows; ++r) {
        for (int64_t i = m.row_ptr[r]; i < m.row_ptr[r + 1]; ++i) d[r * m.cols + m.col_idx[i]] = m.values[i];
      }
      return d;
    }
    std::vector<float> operator()(const NmMatrix& m) const {
      std::vector<float> d(m.rows * m.cols, 0.0f);
      const int64_t runs = m.runs_per_row();
      for (int64_t r = 0; r < m.rows; ++r) {
        for (int64_t g = 0; g < runs; ++g) {
          for (int i = 0; i < m.n; ++i) {
            const int64_t slot = (r * runs + g) * m.n + i;
            if (m.values[slot] != 0.0f) d[r * m.cols + g * m.m + m.offsets[slot]] = m.values[slot];
          }
        }
      }
      return d;
    }
  };
  return std::visit(Visitor{}, w);
}

int64_t Rows(const SparseWeights& w) {
  return std::visit([](const auto& m) { return m.rows; }, w);
}

int64_t Cols(const SparseWeights& w) {
  return std::visit([](const auto& m) { return m.cols; }, w);
}

int64_t StoredValues(const SparseWeights& w) {
  return std::visit([](const auto& m) { return static_cast<int64_t>(m.values.size()); }, w);
}

}  // namespace acs::kernels
