// Sparse conv2d (im2col + kernel) on every ISA against a direct double-precision
// convolution; tolerance as in kernel_test_util.h.
#include "devices/kernels/conv2d.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

using testing::RandomVector;

struct ConvCase {
  const char* name;
  Conv2dGeometry g;
  int64_t out_channels;
  int64_t batch;
};

Conv2dGeometry Geometry(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t s, int64_t pad,
                        int64_t dil) {
  Conv2dGeometry g;
  g.channels = c;
  g.height = h;
  g.width = w;
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.stride_h = g.stride_w = s;
  g.pad_h = g.pad_w = pad;
  g.dilation_h = g.dilation_w = dil;
  return g;
}

const std::vector<ConvCase> kCases = {
    {"3x3_pad1", Geometry(8, 9, 11, 3, 3, 1, 1, 1), 20, 1},
    {"3x3_stride2_pad1", Geometry(5, 13, 15, 3, 3, 2, 1, 1), 16, 2},
    {"3x3_dilation2_pad2", Geometry(6, 12, 9, 3, 3, 1, 2, 2), 9, 1},
    {"5x3_stride2_nopad", Geometry(3, 17, 14, 5, 3, 2, 0, 1), 33, 1},
    {"7x7_stride2_pad3", Geometry(3, 23, 23, 7, 7, 2, 3, 1), 8, 1},
    {"1x1_pointwise", Geometry(24, 7, 9, 1, 1, 1, 0, 1), 40, 2},
    {"1x1_stride2", Geometry(16, 9, 9, 1, 1, 2, 0, 1), 12, 1},
    {"3x3_1x1_input_pad1", Geometry(4, 1, 1, 3, 3, 1, 1, 1), 6, 3},
    {"3x3_wide_tiles", Geometry(4, 40, 40, 3, 3, 1, 1, 1), 5, 1},
    {"3x3_stride3_dilation2", Geometry(3, 19, 20, 3, 3, 3, 2, 2), 7, 2},
    {"2x2_stride2", Geometry(5, 10, 11, 2, 2, 2, 0, 1), 17, 1},
};

class Conv2dTest : public ::testing::TestWithParam<Isa> {};

TEST_P(Conv2dTest, MatchesDirectConvolution) {
  const KernelTable* table = KernelsFor(GetParam());
  std::mt19937 rng(11);
  for (const ConvCase& cc : kCases) {
    for (std::string pattern : {"block4", "block16", "unstructured", "2:4"}) {
      for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
        for (int threads : {1, 2}) {
         for (ConvLowering lowering : {ConvLowering::kIm2col, ConvLowering::kAuto}) {
          SCOPED_TRACE(std::string(cc.name) + " " + pattern + " sparsity " + std::to_string(sparsity) +
                       " threads " + std::to_string(threads) +
                       (lowering == ConvLowering::kIm2col ? " im2col" : " auto"));
          const Conv2dGeometry& g = cc.g;
          const std::vector<float> dense = testing::RandomSparseWeights(cc.out_channels, g.k(), pattern, sparsity, rng);
          const std::vector<float> input = RandomVector(cc.batch * g.channels * g.height * g.width, rng);
          const std::vector<float> bias = threads == 1 ? RandomVector(cc.out_channels, rng) : std::vector<float>{};
          StatusOr<SparseConv2d> conv = SparseConv2d::Create(testing::PackAs(dense, cc.out_channels, g.k(), pattern),
                                                             g, bias, Conv2dOptions{lowering});
          ASSERT_TRUE(conv.ok()) << conv.status().ToString();
          const bool direct = lowering == ConvLowering::kAuto && pattern != "2:4";
          EXPECT_EQ(conv->lowering(), direct ? ConvLowering::kDirect : ConvLowering::kIm2col);
          const int64_t p = g.p();
          std::vector<float> out(cc.batch * cc.out_channels * p, -999.0f);
          SpmmOptions options;
          options.kernels = table;
          options.threads = threads;
          options.min_macs_per_thread = 1;
          ASSERT_TRUE(conv->Run(input.data(), cc.batch, out.data(), options).ok());
          const testing::Reference ref = testing::DirectConv(g, dense, cc.out_channels, input, cc.batch, bias);
          if (testing::ExpectNear(ref, out.data(), cc.batch * cc.out_channels, p, p, "conv") > 0) return;
         }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Conv2dTest, ::testing::ValuesIn(SupportedIsas()), testing::IsaParamName);

TEST(Im2colTest, ColumnRangesMatchTheWholeMatrix) {
  std::mt19937 rng(5);
  const Conv2dGeometry g = Geometry(3, 11, 13, 3, 3, 2, 1, 2);
  const std::vector<float> image = RandomVector(g.channels * g.height * g.width, rng);
  const int64_t k = g.k(), p = g.p();
  std::vector<float> whole(k * p);
  Im2col(g, image.data(), 0, p, whole.data(), p);
  for (int64_t row = 0; row < k; ++row) {
    const int64_t c = row / 9, i = row / 3 % 3, j = row % 3;
    for (int64_t q = 0; q < p; ++q) {
      const int64_t ih = q / g.out_w() * 2 - 1 + i * 2, iw = q % g.out_w() * 2 - 1 + j * 2;
      const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
      ASSERT_EQ(whole[row * p + q], inside ? image[(c * g.height + ih) * g.width + iw] : 0.0f) << row << " " << q;
    }
  }
  for (int64_t begin : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{7}, p - 1}) {
    for (int64_t end : {begin + 1, std::min(p, begin + 6), p}) {
      std::vector<float> part(k * (end - begin));
      Im2col(g, image.data(), begin, end, part.data(), end - begin);
      for (int64_t row = 0; row < k; ++row) {
        for (int64_t q = begin; q < end; ++q) {
          ASSERT_EQ(part[row * (end - begin) + q - begin], whole[row * p + q]) << begin << ".." << end;
        }
      }
    }
  }
}

TEST(SparseConv2dTest, RejectsBadShapes) {
  const std::vector<float> w(4 * 27, 1.0f);
  const SparseWeights packed = PackCsr(DenseView{w.data(), 4, 27}).value();
  EXPECT_TRUE(SparseConv2d::Create(packed, Geometry(3, 8, 8, 3, 3, 1, 1, 1)).ok());
  EXPECT_FALSE(SparseConv2d::Create(packed, Geometry(4, 8, 8, 3, 3, 1, 1, 1)).ok());  // K mismatch
  EXPECT_FALSE(SparseConv2d::Create(packed, Geometry(3, 8, 8, 3, 3, 1, 1, 1), std::vector<float>(3)).ok());
  EXPECT_FALSE(SparseConv2d::Create(packed, Geometry(3, 2, 2, 3, 3, 1, 0, 1)).ok());  // kernel > input
  EXPECT_FALSE(SparseConv2d::Create(packed, Geometry(3, 8, 8, 3, 3, 0, 1, 1)).ok());  // stride 0
  const std::vector<float> nm_dense(4 * 28, 0.0f);
  const SparseWeights nm = PackNm(DenseView{nm_dense.data(), 4, 28}, 2, 4).value();
  const Conv2dGeometry g4 = Geometry(7, 8, 8, 2, 2, 1, 1, 1);
  EXPECT_EQ(SparseConv2d::Create(nm, g4, {}, Conv2dOptions{ConvLowering::kDirect}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SparseConv2d::Create(nm, g4).value().lowering(), ConvLowering::kIm2col);
  SparseConv2d conv = SparseConv2d::Create(packed, Geometry(3, 8, 8, 3, 3, 1, 1, 1)).value();
  std::vector<float> in(3 * 64), out(4 * 64);
  EXPECT_EQ(conv.Run(in.data(), 0, out.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(conv.Run(nullptr, 1, out.data()).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs::kernels
