// 3x3 depthwise conv on every ISA: the whole layer against a double-precision direct
// convolution (tolerance of kernel_test_util.h), and every SIMD kernel against the scalar
// reference on the same prepared planes (|simd - scalar| <= 1e-6 * (|bias| + sum |w x|):
// the sums differ only by FMA rounding).
#include "devices/kernels/depthwise_conv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "devices/kernels/kernel_impls.h"
#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

using testing::RandomVector;

Conv2dGeometry Geometry(int64_t c, int64_t h, int64_t w, int64_t stride, int64_t pad) {
  Conv2dGeometry g;
  g.channels = c;
  g.height = h;
  g.width = w;
  g.kernel_h = g.kernel_w = 3;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  return g;
}

// The depthwise layer as a groups = 1 convolution with block-diagonal weights, clamped.
testing::Reference DirectDepthwise(const Conv2dGeometry& g, const std::vector<float>& w, const std::vector<float>& x,
                                   int64_t batch, const std::vector<float>& bias, float lo, float hi) {
  std::vector<float> dense(g.channels * g.k(), 0.0f);
  for (int64_t c = 0; c < g.channels; ++c) std::copy(&w[c * 9], &w[c * 9] + 9, &dense[c * g.k() + c * 9]);
  testing::Reference ref = testing::DirectConv(g, dense, g.channels, x, batch, bias);
  for (double& y : ref.y) y = std::min<double>(std::max<double>(y, lo), hi);
  return ref;
}

struct DepthwiseCase {
  const char* name;
  Conv2dGeometry g;
  int64_t batch;
  bool relu6;
};

std::vector<DepthwiseCase> Cases() {
  return {
      {"s1 p1 56x56", Geometry(8, 56, 56, 1, 1), 1, false},
      {"s1 p1 odd 13x17", Geometry(5, 13, 17, 1, 1), 2, true},
      {"s2 p1 28x28", Geometry(6, 28, 28, 2, 1), 1, true},
      {"s2 p1 odd 15x9", Geometry(3, 15, 9, 2, 1), 3, false},
      {"s1 p0 7x7", Geometry(4, 7, 7, 1, 0), 1, false},
      {"s2 p0 8x11", Geometry(4, 8, 11, 2, 0), 1, false},
      {"s1 p2 4x4", Geometry(2, 4, 4, 1, 2), 1, false},
      {"s2 p1 tiny 3x3", Geometry(7, 3, 3, 2, 1), 2, true},
      {"s1 p1 wide 5x40", Geometry(3, 5, 40, 1, 1), 1, false},
      {"s2 p1 wide 6x67", Geometry(2, 6, 67, 2, 1), 1, true},
      {"s2 p1 one column 5x1", Geometry(3, 5, 1, 2, 1), 2, false},
      {"s1 p1 one pixel 1x1", Geometry(3, 1, 1, 1, 1), 1, false},
      {"s2 p2 6x6", Geometry(2, 6, 6, 2, 2), 1, false},
  };
}

class DepthwiseIsaTest : public ::testing::TestWithParam<Isa> {};

TEST_P(DepthwiseIsaTest, MatchesTheDirectConvolution) {
  const KernelTable* table = KernelsFor(GetParam());
  ASSERT_NE(table, nullptr);
  std::mt19937 rng(7);
  for (const DepthwiseCase& tc : Cases()) {
    const Conv2dGeometry& g = tc.g;
    const std::vector<float> w = RandomVector(g.channels * 9, rng);
    const std::vector<float> bias = (rng() & 1) ? RandomVector(g.channels, rng) : std::vector<float>();
    const std::vector<float> x = RandomVector(tc.batch * g.channels * g.height * g.width, rng);
    DepthwiseOptions clamp;
    if (tc.relu6) {
      clamp.min = 0.0f;
      clamp.max = 0.5f;  // small, so that both sides of the clamp are hit
    }
    StatusOr<DepthwiseConv2d> conv = DepthwiseConv2d::Create(w, g, bias, clamp);
    ASSERT_TRUE(conv.ok()) << tc.name << ": " << conv.status().ToString();
    const testing::Reference ref = DirectDepthwise(g, w, x, tc.batch, bias, clamp.min, clamp.max);
    for (int threads : {1, 2}) {
      std::vector<float> y(ref.y.size(), NAN);
      DepthwiseRunOptions run;
      run.threads = threads;
      run.min_outputs_per_thread = 1;
      run.kernels = table;
      ASSERT_TRUE(conv->Run(x.data(), tc.batch, y.data(), run).ok());
      testing::ExpectNear(ref, y.data(), 1, static_cast<int64_t>(y.size()), static_cast<int64_t>(y.size()),
                          std::string(tc.name) + " threads " + std::to_string(threads));
    }
  }
}

// The kernel alone on planes with random contents (no zero padding), every out_w up to
// three vectors plus a remainder, both strides: the SIMD result equals the scalar one up to
// FMA rounding, and nothing past the output is written.
TEST_P(DepthwiseIsaTest, KernelMatchesTheScalarReference) {
  const KernelTable* table = KernelsFor(GetParam());
  ASSERT_NE(table, nullptr);
  std::mt19937 rng(11);
  for (int stride : {1, 2}) {
    for (int64_t out_w = 1; out_w <= 50; ++out_w) {
      const int64_t out_h = 1 + out_w % 4;
      const int64_t pitch = out_w + 2 / stride + (rng() % 3);
      const int64_t rows = (out_h - 1) * stride + 3;
      const std::vector<float> plane = RandomVector(rows * stride * pitch, rng);
      const std::vector<float> w = RandomVector(9, rng);
      DepthwisePlane a;
      a.plane = plane.data();
      a.pitch = pitch;
      a.stride = stride;
      a.w = w.data();
      a.bias = 0.25f;
      a.lo = -0.75f;
      a.hi = 1.5f;
      a.out_h = out_h;
      a.out_w = out_w;
      std::vector<float> expect(out_h * out_w + 1, 42.0f), got(out_h * out_w + 1, 42.0f);
      a.y = expect.data();
      internal::Depthwise3x3Scalar(a);
      a.y = got.data();
      table->depthwise3x3(a);
      for (int64_t i = 0; i < out_h * out_w; ++i) {
        ASSERT_NEAR(got[i], expect[i], 1e-6 * (0.25 + 9.0)) << "stride " << stride << " out_w " << out_w << " at " << i;
      }
      EXPECT_EQ(got.back(), 42.0f) << "wrote past the output, stride " << stride << " out_w " << out_w;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, DepthwiseIsaTest, ::testing::ValuesIn(SupportedIsas()), testing::IsaParamName);

// Layers run alternately on one thread share its plane buffer: each must see its own zero
// padding, not the pixels another layer left there.
TEST(DepthwiseConv2dTest, AlternatingLayersKeepTheirPadding) {
  std::mt19937 rng(3);
  const Conv2dGeometry padded = Geometry(2, 6, 6, 1, 1), unpadded = Geometry(2, 8, 8, 1, 0);  // same plane size
  const std::vector<float> w = RandomVector(2 * 9, rng);
  const std::vector<float> x_padded = RandomVector(2 * 36, rng), x_unpadded = RandomVector(2 * 64, rng);
  StatusOr<DepthwiseConv2d> a = DepthwiseConv2d::Create(w, padded), b = DepthwiseConv2d::Create(w, unpadded);
  ASSERT_TRUE(a.ok() && b.ok());
  const testing::Reference ref_a = DirectDepthwise(padded, w, x_padded, 1, {}, -INFINITY, INFINITY);
  const testing::Reference ref_b = DirectDepthwise(unpadded, w, x_unpadded, 1, {}, -INFINITY, INFINITY);
  for (int round = 0; round < 2; ++round) {
    std::vector<float> ya(ref_a.y.size()), yb(ref_b.y.size());
    ASSERT_TRUE(b->Run(x_unpadded.data(), 1, yb.data()).ok());
    ASSERT_TRUE(a->Run(x_padded.data(), 1, ya.data()).ok());
    testing::ExpectNear(ref_a, ya.data(), 1, static_cast<int64_t>(ya.size()), static_cast<int64_t>(ya.size()), "padded");
    testing::ExpectNear(ref_b, yb.data(), 1, static_cast<int64_t>(yb.size()), static_cast<int64_t>(yb.size()),
                        "unpadded");
  }
}

TEST(DepthwiseConv2dTest, Errors) {
  const std::vector<float> w(4 * 9, 0.5f);
  EXPECT_FALSE(DepthwiseConv2d::Create(w, Geometry(4, 8, 8, 3, 1)).ok());  // stride 3
  Conv2dGeometry five = Geometry(4, 8, 8, 1, 2);
  five.kernel_h = five.kernel_w = 5;
  EXPECT_FALSE(DepthwiseConv2d::Create(std::vector<float>(4 * 25), five).ok());
  Conv2dGeometry dilated = Geometry(4, 8, 8, 1, 2);
  dilated.dilation_h = dilated.dilation_w = 2;
  EXPECT_FALSE(DepthwiseConv2d::Create(w, dilated).ok());
  Conv2dGeometry mixed = Geometry(4, 8, 8, 1, 1);
  mixed.stride_w = 2;
  EXPECT_FALSE(DepthwiseConv2d::Create(w, mixed).ok());
  EXPECT_FALSE(DepthwiseConv2d::Create(std::vector<float>(3 * 9), Geometry(4, 8, 8, 1, 1)).ok());
  EXPECT_FALSE(DepthwiseConv2d::Create(w, Geometry(4, 8, 8, 1, 1), std::vector<float>(3)).ok());
  DepthwiseOptions bad;
  bad.min = 1.0f;
  bad.max = 0.0f;
  EXPECT_FALSE(DepthwiseConv2d::Create(w, Geometry(4, 8, 8, 1, 1), {}, bad).ok());
  StatusOr<DepthwiseConv2d> ok = DepthwiseConv2d::Create(w, Geometry(4, 8, 8, 1, 1));
  ASSERT_TRUE(ok.ok());
  std::vector<float> x(4 * 64), y(4 * 64);
  EXPECT_EQ(ok->Run(nullptr, 1, y.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ok->Run(x.data(), 0, y.data()).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs::kernels
