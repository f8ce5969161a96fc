#include "core/weight_transforms.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

namespace acs {
namespace {

torch::Tensor T(const std::vector<std::vector<float>>& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows) out.push_back(torch::tensor(r, torch::kFloat32));
  return torch::stack(out);
}

LayerConfig Config(Pattern pattern, double sparsity = 0.0, int block = 1, int n = 2, int m = 4) {
  LayerConfig c;
  c.pattern = pattern;
  c.sparsity = sparsity;
  c.block = block;
  c.nm_n = n;
  c.nm_m = m;
  return c;
}

void ExpectTensorEq(const torch::Tensor& actual, const torch::Tensor& expected) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::equal(actual, expected)) << "actual\n" << actual << "\nexpected\n" << expected;
}

TEST(PatternMaskTest, DenseAndChannelKeepEverything) {
  torch::Tensor w = torch::randn({4, 3, 3, 3});
  ExpectTensorEq(PatternMask(w, Config(Pattern::kDense)), torch::ones_like(w));
  ExpectTensorEq(PatternMask(w, Config(Pattern::kChannel, 0.5)), torch::ones_like(w));
}

TEST(PatternMaskTest, UnstructuredRemovesSmallestMagnitudes) {
  torch::Tensor w = T({{1, -5, 3}, {0.5, 4, -2}});
  // floor(0.5 * 6) = 3 removed: |0.5|, |1|, |-2|.
  ExpectTensorEq(PatternMask(w, Config(Pattern::kUnstructured, 0.5)), T({{0, 1, 1}, {0, 1, 0}}));
  // floor(0.34 * 6) = 2 removed.
  ExpectTensorEq(PatternMask(w, Config(Pattern::kUnstructured, 0.34)), T({{0, 1, 1}, {0, 1, 1}}));
  // floor(0.1 * 6) = 0 removed.
  ExpectTensorEq(PatternMask(w, Config(Pattern::kUnstructured, 0.1)), torch::ones_like(w));
}

TEST(PatternMaskTest, UnstructuredKeepsShapeOfConvWeight) {
  torch::Tensor w = torch::arange(1, 17, torch::kFloat32).reshape({2, 2, 2, 2});
  torch::Tensor mask = PatternMask(w, Config(Pattern::kUnstructured, 0.25));
  ASSERT_EQ(mask.sizes(), w.sizes());
  ExpectTensorEq(mask, (w > 4).to(torch::kFloat32));
}

TEST(PatternMaskTest, BlockRemovesBlocksOfSmallestL1WithShortLastBlock) {
  // 5 rows, N = 2: blocks are rows {0,1}, {2,3} and the short {4}, in each of 2 columns.
  // L1 per block: column 0: 3, 20, 4; column 1: 10, 0.2, 1.
  torch::Tensor w = T({{1, 5}, {-2, -5}, {-10, 0.1}, {10, -0.1}, {4, 1}});
  // floor(0.5 * 6) = 3 blocks removed: 0.2, 1 and 3.
  ExpectTensorEq(PatternMask(w, Config(Pattern::kBlock, 0.5, 2)), T({{0, 1}, {0, 1}, {1, 0}, {1, 0}, {1, 0}}));
  // floor(0.2 * 6) = 1 block removed: 0.2.
  ExpectTensorEq(PatternMask(w, Config(Pattern::kBlock, 0.2, 2)), T({{1, 1}, {1, 1}, {1, 0}, {1, 0}, {1, 1}}));
}

TEST(PatternMaskTest, BlockOfOneIsUnstructured) {
  torch::Tensor w = torch::randn({6, 10}, torch::Generator(at::detail::createCPUGenerator(3)));
  ExpectTensorEq(PatternMask(w, Config(Pattern::kBlock, 0.6, 1)), PatternMask(w, Config(Pattern::kUnstructured, 0.6)));
}

TEST(PatternMaskTest, NMKeepsNLargestPerRunWithShortLastRun) {
  // 2:4 on 6 columns: runs [1, -4, 3, 2] and the short [5, -6] (keeps min(2, 2)).
  ExpectTensorEq(PatternMask(T({{1, -4, 3, 2, 5, -6}}), Config(Pattern::kNM, 0, 1, 2, 4)), T({{0, 1, 1, 0, 1, 1}}));
  // 2:4 on 5 columns: the last run has one weight, which is kept.
  ExpectTensorEq(PatternMask(T({{1, 2, 3, 4, 0.5}}), Config(Pattern::kNM, 0, 1, 2, 4)), T({{0, 0, 1, 1, 1}}));
  // 1:4, rows independent.
  ExpectTensorEq(PatternMask(T({{0.1, 0.2, 0.3, 0.4, 0.9, 0.8}, {-9, 1, 1, 1, 0, -1}}), Config(Pattern::kNM, 0, 1, 1, 4)),
                 T({{0, 0, 0, 1, 1, 0}, {1, 0, 0, 0, 0, 1}}));
  // Sparsity is ignored.
  ExpectTensorEq(PatternMask(T({{1, -4, 3, 2}}), Config(Pattern::kNM, 0.9, 1, 2, 4)), T({{0, 1, 1, 0}}));
}

TEST(PatternMaskTest, NMRunsFollowTheFlattenedReductionAxis) {
  // [out=1, in=2, kh=1, kw=2]: the reduction (in, kh, kw) flattens to [1, 4, 3, 2].
  torch::Tensor w = torch::tensor({1.f, 4.f, 3.f, 2.f}).reshape({1, 2, 1, 2});
  torch::Tensor mask = PatternMask(w, Config(Pattern::kNM, 0, 1, 2, 4));
  ExpectTensorEq(mask, torch::tensor({0.f, 1.f, 1.f, 0.f}).reshape({1, 2, 1, 2}));
}

TEST(PatternMaskTest, NMWithMEqualNKeepsAll) {
  torch::Tensor w = torch::randn({3, 7});
  ExpectTensorEq(PatternMask(w, Config(Pattern::kNM, 0, 1, 4, 4)), torch::ones_like(w));
}

TEST(SimulatePrecisionTest, Fp32IsUnchanged) {
  torch::Tensor w = torch::randn({3, 5});
  ExpectTensorEq(SimulatePrecision(w, Precision::kFp32), w);
}

TEST(SimulatePrecisionTest, Int8IsSymmetricPerOutputChannel) {
  torch::Tensor w = T({{1.27f, -0.5f, 0.f, 0.013f}, {2.54f, 1.0f, -0.011f, 0.f}, {0.f, 0.f, 0.f, 0.f}});
  torch::Tensor q = SimulatePrecision(w, Precision::kInt8);
  // Scales 0.01 and 0.02: integers 127, -50, 0, 1 and 127, 50, -1 (-0.55 rounds to -1), 0.
  torch::Tensor expected = T({{1.27f, -0.5f, 0.f, 0.01f}, {2.54f, 1.0f, -0.02f, 0.f}, {0.f, 0.f, 0.f, 0.f}});
  EXPECT_TRUE(torch::allclose(q, expected, 0, 1e-6)) << q;
  // Zeros stay exactly zero; the all-zero row stays zero.
  EXPECT_TRUE(torch::equal(q == 0, w == 0));
}

TEST(SimulatePrecisionTest, Int8ValuesLieOnTheGrid) {
  torch::Tensor w = torch::randn({8, 3, 3, 3}, torch::Generator(at::detail::createCPUGenerator(5)));
  for (Precision p : {Precision::kInt8, Precision::kInt4w}) {
    double levels = p == Precision::kInt8 ? 127 : 7;
    torch::Tensor q = SimulatePrecision(w, p);
    ASSERT_EQ(q.sizes(), w.sizes());
    torch::Tensor scale = w.reshape({8, -1}).abs().amax(1, true) / levels;
    torch::Tensor steps = q.reshape({8, -1}) / scale;
    EXPECT_LT((steps - steps.round()).abs().max().item<double>(), 1e-3);
    EXPECT_LE(steps.abs().max().item<double>(), levels + 1e-3);
    // The largest magnitude of each row is exact; every value moved by at most half a step.
    EXPECT_TRUE(torch::allclose(q.reshape({8, -1}).abs().amax(1), w.reshape({8, -1}).abs().amax(1)));
    EXPECT_TRUE(((q - w).reshape({8, -1}).abs() <= scale / 2 + 1e-6).all().item<bool>());
  }
}

TEST(SimulatePrecisionTest, Int4wUsesSevenLevels) {
  torch::Tensor w = T({{0.7f, -0.32f, 0.1f, 0.f, 0.04f}});
  torch::Tensor expected = T({{0.7f, -0.3f, 0.1f, 0.f, 0.f}});  // scale 0.1; 0.04 rounds to 0
  EXPECT_TRUE(torch::allclose(SimulatePrecision(w, Precision::kInt4w), expected, 0, 1e-6));
}

TEST(SimulatePrecisionTest, Bf16RoundsTheMantissa) {
  // bfloat16 keeps 8 significant bits: 1 + 2^-10 rounds to 1, 1 + 2^-7 is exact.
  torch::Tensor w = torch::tensor({1.f + 1.f / 1024, 1.f + 1.f / 128, 3.f, 0.f, -2.5f});
  torch::Tensor q = SimulatePrecision(w.reshape({1, 5}), Precision::kBf16).reshape({5});
  ExpectTensorEq(q, torch::tensor({1.f, 1.f + 1.f / 128, 3.f, 0.f, -2.5f}));
  EXPECT_EQ(q.dtype(), torch::kFloat32);
}

TEST(ActivationQuantTest, RangeIsWidenedToContainZero) {
  ActivationQuant q = ActivationQuantFromRange(-0.5, 2.05);  // span 2.55
  EXPECT_NEAR(q.scale, 0.01, 1e-12);
  EXPECT_EQ(q.zero_point, 50);
  q = ActivationQuantFromRange(0.0, 2.55);
  EXPECT_NEAR(q.scale, 0.01, 1e-12);
  EXPECT_EQ(q.zero_point, 0);
  q = ActivationQuantFromRange(1.0, 2.0);  // widened to [0, 2]
  EXPECT_NEAR(q.scale, 2.0 / 255, 1e-12);
  EXPECT_EQ(q.zero_point, 0);
  q = ActivationQuantFromRange(-3.0, -1.0);  // widened to [-3, 0]
  EXPECT_NEAR(q.scale, 3.0 / 255, 1e-12);
  EXPECT_EQ(q.zero_point, 255);
  q = ActivationQuantFromRange(0.0, 0.0);
  EXPECT_EQ(q.scale, 1.0);
  EXPECT_EQ(q.zero_point, 0);
}

TEST(ActivationQuantTest, GridCoversTheRange) {
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{{-1, 1}, {-0.3, 7.1}, {-100, 0.01}, {0.2, 0.3}}) {
    ActivationQuant q = ActivationQuantFromRange(lo, hi);
    double eps = q.scale / 2;
    EXPECT_LE((ActivationQuant::kMin - q.zero_point) * q.scale, std::min(lo, 0.0) + eps) << lo << " " << hi;
    EXPECT_GE((ActivationQuant::kMax - q.zero_point) * q.scale, std::max(hi, 0.0) - eps) << lo << " " << hi;
    EXPECT_GE(q.zero_point, ActivationQuant::kMin);
    EXPECT_LE(q.zero_point, ActivationQuant::kMax);
  }
}

}  // namespace
}  // namespace acs
