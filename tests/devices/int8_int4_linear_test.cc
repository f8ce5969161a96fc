// int4 weight-only linear: packing round trip, and every ISA's kernel against the scalar
// table and a double-precision product with the dequantized weights. Float sums in a
// different order: |error| <= kInt4RelTol * (|bias| + sum_k |w x|) + 1e-6 for K <= ~1100.
#include "devices/kernels/int4_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

constexpr double kInt4RelTol = 2e-5;

struct Shape {
  int64_t rows, cols, p;
};
// K around multiples of 16 and 32, O odd and around the row tiles (4, 8), P = 1..9.
const std::vector<Shape> kShapes = {{1, 1, 1},    {3, 5, 1},     {7, 31, 1},   {8, 32, 1},   {9, 33, 2},
                                    {4, 48, 3},   {13, 64, 4},   {17, 100, 5}, {5, 257, 6},  {31, 500, 7},
                                    {16, 1000, 1}, {10, 1100, 9}, {33, 127, 8}, {64, 512, 1}};

std::vector<int8_t> RandomInt4(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> v(-8, 7);
  std::vector<int8_t> out(n);
  for (int8_t& x : out) x = static_cast<int8_t>(v(rng));
  return out;
}

testing::Reference Reference(const Int4Weights& w, const std::vector<float>& x, int64_t ldx, int64_t p,
                             const float* bias, bool relu) {
  testing::Reference ref{std::vector<double>(w.rows * p), std::vector<double>(w.rows * p)};
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t j = 0; j < p; ++j) {
      const double b = bias != nullptr ? bias[o] : 0.0;
      double sum = b, mag = std::abs(b);
      for (int64_t k = 0; k < w.cols; ++k) {
        const double t = static_cast<double>(w.scales[o]) * w.at(o, k) * x[k * ldx + j];
        sum += t;
        mag += std::abs(t);
      }
      ref.y[o * p + j] = relu ? std::max(sum, 0.0) : sum;
      ref.bound[o * p + j] = kInt4RelTol * mag + 1e-6;
    }
  }
  return ref;
}

std::vector<float> RunInt4(const Int4Weights& w, const Int8KernelTable& table, const std::vector<float>& x,
                           int64_t ldx, int64_t p, const float* bias, bool relu, int threads = 1) {
  const int64_t ldy = p + 3;
  std::vector<float> y(w.rows * ldy, 12345.0f);
  Int8Options options;
  options.kernels = &table;
  options.threads = threads;
  options.min_macs_per_thread = 1;
  const Status st = Int4Linear(w, Int4LinearArgs{x.data(), ldx, y.data(), ldy, p, bias, relu}, options);
  EXPECT_TRUE(st.ok()) << st.ToString();
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t j = p; j < ldy; ++j) EXPECT_EQ(y[o * ldy + j], 12345.0f) << "write past column " << p;
  }
  return y;
}

class Int4LinearTest : public ::testing::TestWithParam<Isa> {};

TEST_P(Int4LinearTest, MatchesScalarAndDoubleReference) {
  const Int8KernelTable& table = *Int8KernelsFor(GetParam());
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(17);
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(std::string(IsaName(GetParam())) + " O=" + std::to_string(s.rows) + " K=" + std::to_string(s.cols) +
                 " P=" + std::to_string(s.p));
    const std::vector<int8_t> values = RandomInt4(s.rows * s.cols, rng);
    std::vector<float> scales = testing::RandomVector(s.rows, rng);
    for (float& v : scales) v = std::abs(v) + 0.01f;
    const Int4Weights w = PackInt4Weights(values.data(), s.rows, s.cols, scales.data()).value();
    const int64_t ldx = s.p + (s.p % 2);
    const std::vector<float> x = testing::RandomVector(s.cols * ldx, rng);
    const std::vector<float> bias = testing::RandomVector(s.rows, rng);
    const float* b = s.rows % 2 ? bias.data() : nullptr;
    const bool relu = s.p % 2 == 0;
    const testing::Reference ref = Reference(w, x, ldx, s.p, b, relu);
    const std::vector<float> y = RunInt4(w, table, x, ldx, s.p, b, relu);
    if (testing::ExpectNear(ref, y.data(), s.rows, s.p, s.p + 3, "vs double") > 0) return;
    const std::vector<float> y_scalar = RunInt4(w, scalar, x, ldx, s.p, b, relu);
    testing::Reference scalar_ref = ref;
    for (int64_t o = 0; o < s.rows; ++o) {
      for (int64_t j = 0; j < s.p; ++j) scalar_ref.y[o * s.p + j] = y_scalar[o * (s.p + 3) + j];
    }
    if (testing::ExpectNear(scalar_ref, y.data(), s.rows, s.p, s.p + 3, "vs scalar") > 0) return;
    for (int threads : {2, 3}) {
      const std::vector<float> yt = RunInt4(w, table, x, ldx, s.p, b, relu, threads);
      EXPECT_EQ(yt, y) << threads << " threads";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int4LinearTest, ::testing::ValuesIn(Int8SupportedIsas()), testing::IsaParamName);

TEST(Int4WeightsTest, PackUnpackRoundTrip) {
  std::mt19937 rng(2);
  for (int64_t cols : {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100}) {
    const int64_t rows = 5;
    std::vector<int8_t> values = RandomInt4(rows * cols, rng);
    values[0] = -8;
    values.back() = 7;
    const std::vector<float> scales(rows, 0.5f);
    const Int4Weights w = PackInt4Weights(values.data(), rows, cols, scales.data()).value();
    EXPECT_EQ(w.ld, (cols + 31) / 32 * 16);
    EXPECT_EQ(w.packed.size(), static_cast<size_t>(rows * w.ld + kLowBitWeightSlack));
    EXPECT_EQ(UnpackInt4Weights(w), values) << "cols=" << cols;
    // Layout: byte j of a block holds column j (low nibble) and j + 16 (high), value + 8.
    EXPECT_EQ(w.packed[0] & 0xf, values[0] + 8);
    if (cols > 16) {
      EXPECT_EQ(w.packed[0] >> 4, values[16] + 8);
    }
    // Padding columns are zero.
    for (int64_t k = cols; k < w.ld * 2; ++k) {
      const uint8_t byte = w.packed[k / 32 * 16 + k % 16];
      EXPECT_EQ((k % 32 < 16 ? byte & 0xf : byte >> 4), 8) << "pad column " << k;
    }
  }
}

TEST(Int4WeightsTest, QuantizesPerRowSymmetric) {
  const std::vector<float> dense = {0.7f, -0.35f, 0.1f, 0.0f, 0.0f, 0.0f, -2.0f, 1.0f, 0.3f};
  const Int4Weights w = QuantizeInt4Weights(DenseView{dense.data(), 3, 3}).value();
  EXPECT_FLOAT_EQ(w.scales[0], 0.1f);
  EXPECT_EQ(w.at(0, 0), 7);
  EXPECT_EQ(w.at(2, 0), -7);
  EXPECT_EQ(w.scales[1], 1.0f);
  for (int64_t o = 0; o < 3; ++o) {
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_LE(std::abs(w.scales[o] * w.at(o, k) - dense[o * 3 + k]), 0.5f * w.scales[o] + 1e-6f);
    }
  }
}

TEST(Int4WeightsTest, RejectsBadInput) {
  const std::vector<int8_t> ok = {-8, 7}, bad = {8, 0};
  const std::vector<float> scale = {1.0f}, zero = {0.0f};
  EXPECT_TRUE(PackInt4Weights(ok.data(), 1, 2, scale.data()).ok());
  EXPECT_EQ(PackInt4Weights(bad.data(), 1, 2, scale.data()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackInt4Weights(ok.data(), 1, 2, zero.data()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackInt4Weights(ok.data(), 1, 0, scale.data()).status().code(), StatusCode::kInvalidArgument);
  const std::vector<float> nan = {std::nanf("")};
  EXPECT_EQ(QuantizeInt4Weights(DenseView{nan.data(), 1, 1}).status().code(), StatusCode::kInvalidArgument);
  const Int4Weights w = PackInt4Weights(ok.data(), 1, 2, scale.data()).value();
  std::vector<float> x(2, 1.0f), y(1);
  EXPECT_EQ(Int4Linear(w, Int4LinearArgs{nullptr, 1, y.data(), 1, 1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Int4Linear(w, Int4LinearArgs{x.data(), 1, y.data(), 1, 0}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(Int4Linear(w, Int4LinearArgs{x.data(), 1, y.data(), 1, 1}).ok());
  EXPECT_EQ(y[0], -1.0f);
}

}  // namespace
}  // namespace acs::kernels
