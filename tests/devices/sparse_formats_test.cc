#include "devices/kernels/sparse_formats.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

TEST(SparseFormatsTest, BlockSparseLayout) {
  // 5 x 3, N = 4: row-block 0 = rows 0-3, row-block 1 = row 4 plus 3 padding rows.
  const std::vector<float> w = {1, 0, 0,  //
                                0, 0, 0,  //
                                2, 0, 0,  //
                                0, 0, 3,  //
                                0, 4, 0};
  const BlockSparseMatrix m = PackBlockSparse(DenseView{w.data(), 5, 3}, 4).value();
  EXPECT_EQ(m.num_row_blocks(), 2);
  EXPECT_EQ(m.row_ptr, (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(m.col_idx, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(m.values, (std::vector<float>{1, 0, 2, 0, 0, 0, 0, 3, 4, 0, 0, 0}));
  EXPECT_EQ(ToDense(m), w);
}

TEST(SparseFormatsTest, NmLayoutWithShortLastRun) {
  // One row, K = 6, 2:4: runs [0..3] and [4..5].
  const std::vector<float> w = {0, 5, 0, 6, 7, 0};
  const NmMatrix m = PackNm(DenseView{w.data(), 1, 6}, 2, 4).value();
  EXPECT_EQ(m.runs_per_row(), 2);
  EXPECT_EQ(m.values, (std::vector<float>{5, 6, 7, 0}));
  EXPECT_EQ(m.offsets, (std::vector<uint8_t>{1, 3, 0, 0}));
  EXPECT_EQ(ToDense(m), w);
}

TEST(SparseFormatsTest, RoundTripsEveryPattern) {
  std::mt19937 rng(3);
  for (const char* pattern : {"block4", "block8", "block16", "block32", "unstructured", "2:4", "1:4", "2:8"}) {
    for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
      SCOPED_TRACE(std::string(pattern) + " " + std::to_string(sparsity));
      const std::vector<float> w = testing::RandomSparseWeights(37, 29, pattern, sparsity, rng);
      const SparseWeights packed = testing::PackAs(w, 37, 29, pattern);
      EXPECT_EQ(ToDense(packed), w);
      EXPECT_EQ(Rows(packed), 37);
      EXPECT_EQ(Cols(packed), 29);
    }
  }
}

TEST(SparseFormatsTest, AllZeroMatrixHasNoBlocks) {
  const std::vector<float> w(10 * 7, 0.0f);
  EXPECT_EQ(PackBlockSparse(DenseView{w.data(), 10, 7}, 8).value().num_blocks(), 0);
  EXPECT_EQ(PackCsr(DenseView{w.data(), 10, 7}).value().nnz(), 0);
}

TEST(SparseFormatsTest, RejectsBadInput) {
  const std::vector<float> w(12, 1.0f);
  EXPECT_EQ(PackBlockSparse(DenseView{w.data(), 3, 4}, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackBlockSparse(DenseView{w.data(), 3, 4}, 64).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackBlockSparse(DenseView{nullptr, 3, 4}, 4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackCsr(DenseView{w.data(), 0, 4}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackCsr(DenseView{w.data(), 3, -1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackNm(DenseView{w.data(), 3, 4}, 3, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackNm(DenseView{w.data(), 3, 4}, 0, 4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackNm(DenseView{w.data(), 3, 4}, 2, 256).status().code(), StatusCode::kInvalidArgument);
}

TEST(SparseFormatsTest, NmRejectsTooManyNonZerosInARun) {
  // Row 1, columns 4..7 hold three non-zeros.
  const std::vector<float> w = {1, 0, 2, 0, 0, 0, 0, 3,  //
                                0, 1, 0, 1, 1, 1, 0, 1};
  const StatusOr<NmMatrix> m = PackNm(DenseView{w.data(), 2, 8}, 2, 4);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("row 1, columns 4..7 hold 3 non-zeros"), std::string::npos)
      << m.status().message();
  EXPECT_TRUE(PackNm(DenseView{w.data(), 2, 8}, 3, 4).ok());
  EXPECT_FALSE(PackNm(DenseView{w.data(), 2, 8}, 1, 4).ok());
}

}  // namespace
}  // namespace acs::kernels
