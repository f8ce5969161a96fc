// int8 GEMM on every ISA this CPU runs: bit-identical to the scalar table (the int32
// accumulation is exact and every table dequantizes with the same float operations), and
// within float rounding of a double-precision reference on the dequantized values.
#include "devices/kernels/int8_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "devices/kernels/int8_kernel_table.h"
#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

// |y - reference| <= kDequantTol * (|dequantized sum| + |bias|): the reference is exact
// except for the three float roundings of the dequantization (int32 -> float, the scale
// product, the FMA), each at most 2^-24 relative.
constexpr double kDequantTol = 3e-7;

struct Shape {
  int64_t rows, cols, p;
};
// K around multiples of 4, 16, 32 and 64; O odd and around the row tiles (6, 8, 12, 4);
// P = 1, narrow (< 8), around 16-column vectors and 64-column tiles.
const std::vector<Shape> kShapes = {{1, 1, 1},     {3, 5, 1},     {7, 63, 1},    {13, 64, 1},   {5, 65, 2},
                                    {17, 130, 3},  {9, 31, 7},    {6, 33, 8},    {11, 4, 9},    {25, 97, 15},
                                    {12, 100, 16}, {8, 129, 17},  {19, 7, 31},   {24, 66, 33},  {31, 250, 47},
                                    {13, 300, 64}, {6, 577, 65},  {37, 72, 95},  {29, 45, 130}, {49, 191, 200}};

std::vector<int8_t> RandomWeights(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> v(-127, 127);
  std::vector<int8_t> w(n);
  for (int8_t& x : w) x = static_cast<int8_t>(v(rng));
  // Saturation edges: whole runs of +-127.
  for (int64_t i = 0; i + 8 <= n; i += 61) {
    for (int j = 0; j < 8; ++j) w[i + j] = (i / 61) % 2 ? 127 : -127;
  }
  return w;
}

std::vector<uint8_t> RandomActivations(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> v(0, 255);
  std::vector<uint8_t> x(n);
  for (uint8_t& q : x) q = static_cast<uint8_t>(v(rng));
  for (int64_t i = 0; i + 6 <= n; i += 53) {
    for (int j = 0; j < 6; ++j) x[i + j] = (i / 53) % 2 ? 255 : 0;
  }
  return x;
}

std::vector<float> RandomScales(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> s(1e-4f, 2e-2f);
  std::vector<float> v(n);
  for (float& x : v) x = s(rng);
  return v;
}

// y = scale_w * scale_x * sum_k w (x - zp) + bias in double, with the bound above.
testing::Reference Reference(const Int8Weights& w, const uint8_t* x, int64_t ldx, int64_t p,
                             const ActivationQuant& q, const float* bias, bool relu) {
  testing::Reference ref{std::vector<double>(w.rows * p), std::vector<double>(w.rows * p)};
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t j = 0; j < p; ++j) {
      int64_t acc = 0;
      for (int64_t k = 0; k < w.cols; ++k) acc += int64_t{w.at(o, k)} * (int64_t{x[k * ldx + j]} - q.zero_point);
      const double b = bias != nullptr ? bias[o] : 0.0;
      const double dq = static_cast<double>(w.scales[o]) * q.scale * static_cast<double>(acc);
      const double y = dq + b;
      ref.y[o * p + j] = relu ? std::max(y, 0.0) : y;
      ref.bound[o * p + j] = kDequantTol * (std::abs(dq) + std::abs(b)) + 1e-30;
    }
  }
  return ref;
}

constexpr float kSentinel = 12345.0f;

// Runs on u8 X with strided X and Y and sentinels past every Y row.
std::vector<float> RunU8(const Int8Weights& w, const Int8KernelTable& table, const std::vector<uint8_t>& x,
                         int64_t ldx, int64_t p, const ActivationQuant& q, const float* bias, bool relu,
                         int threads = 1) {
  const int64_t ldy = p + 5;
  std::vector<float> y(w.rows * ldy, kSentinel);
  Int8Options options;
  options.kernels = &table;
  options.threads = threads;
  options.min_macs_per_thread = 1;
  Int8GemmArgs a;
  a.xq = x.data();
  a.ldx = ldx;
  a.quant = q;
  a.y = y.data();
  a.ldy = ldy;
  a.p = p;
  a.bias = bias;
  a.relu = relu;
  const Status st = Int8Gemm(w, a, options);
  EXPECT_TRUE(st.ok()) << st.ToString();
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t j = p; j < ldy; ++j) EXPECT_EQ(y[o * ldy + j], kSentinel) << "write past column " << p;
  }
  return y;
}

// Bitwise equality of two outputs (rows x p, leading dimension ldy); returns failures.
int ExpectIdentical(const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t p, int64_t ldy,
                    const std::string& what) {
  int failures = 0;
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t j = 0; j < p; ++j) {
      if (std::memcmp(&a[o * ldy + j], &b[o * ldy + j], sizeof(float)) == 0) continue;
      if (++failures <= 3) {
        ADD_FAILURE() << what << ": y[" << o << "," << j << "] = " << a[o * ldy + j] << ", scalar table "
                      << b[o * ldy + j];
      }
    }
  }
  return failures;
}

class Int8GemmTest : public ::testing::TestWithParam<Isa> {
 protected:
  const Int8KernelTable& table() const { return *Int8KernelsFor(GetParam()); }
};

TEST_P(Int8GemmTest, MatchesScalarExactlyAndDoubleReference) {
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(11);
  for (int32_t zp : {0, 1, 128, 255}) {
    for (const Shape& s : kShapes) {
      const std::string what = std::string(IsaName(GetParam())) + " zp=" + std::to_string(zp) + " O=" +
                               std::to_string(s.rows) + " K=" + std::to_string(s.cols) + " P=" + std::to_string(s.p);
      SCOPED_TRACE(what);
      const std::vector<int8_t> values = RandomWeights(s.rows * s.cols, rng);
      const std::vector<float> scales = RandomScales(s.rows, rng);
      const Int8Weights w = PackInt8Weights(values.data(), s.rows, s.cols, scales.data()).value();
      const int64_t ldx = s.p + 3;
      const std::vector<uint8_t> x = RandomActivations(s.cols * ldx, rng);
      const std::vector<float> bias = testing::RandomVector(s.rows, rng);
      const float* b = s.p % 2 == 0 ? bias.data() : nullptr;
      const bool relu = s.rows % 2 == 1;
      const ActivationQuant q{0.0173f, zp};
      const std::vector<float> y = RunU8(w, table(), x, ldx, s.p, q, b, relu);
      const std::vector<float> y_scalar = RunU8(w, scalar, x, ldx, s.p, q, b, relu);
      if (ExpectIdentical(y, y_scalar, s.rows, s.p, s.p + 5, "vs scalar") > 0) return;
      const testing::Reference ref = Reference(w, x.data(), ldx, s.p, q, b, relu);
      if (testing::ExpectNear(ref, y.data(), s.rows, s.p, s.p + 5, "vs double") > 0) return;
    }
  }
}

// All activations 255 against all weights +127 / -127 at the largest K: sums of
// +-127 * 255 * 65536, just inside int32.
TEST_P(Int8GemmTest, ExtremeValuesAtLargestK) {
  const int64_t rows = 3, cols = kMaxInt8Cols;
  std::vector<int8_t> values(rows * cols);
  for (int64_t k = 0; k < cols; ++k) {
    values[k] = 127;
    values[cols + k] = -127;
    values[2 * cols + k] = k % 2 ? 127 : -127;
  }
  const std::vector<float> scales = {1.0f, 1.0f, 1.0f};
  const Int8Weights w = PackInt8Weights(values.data(), rows, cols, scales.data()).value();
  for (int64_t p : {1, 17}) {
    for (uint8_t xv : {uint8_t{0}, uint8_t{255}}) {
      const std::vector<uint8_t> x(cols * p, xv);
      const ActivationQuant q{1.0f, 0};
      const std::vector<float> y = RunU8(w, table(), x, p, p, q, nullptr, false);
      const double full = 127.0 * xv * cols;
      for (int64_t j = 0; j < p; ++j) {
        EXPECT_EQ(y[0 * (p + 5) + j], static_cast<float>(full)) << "P=" << p << " x=" << int{xv};
        EXPECT_EQ(y[1 * (p + 5) + j], static_cast<float>(-full));
        EXPECT_EQ(y[2 * (p + 5) + j], 0.0f);
      }
      // With the zero point at 255 every row sums to zero.
      const std::vector<float> z = RunU8(w, table(), x, p, p, ActivationQuant{1.0f, 255}, nullptr, false);
      const double shifted = 127.0 * (xv - 255.0) * cols;
      EXPECT_EQ(z[0], static_cast<float>(shifted));
      EXPECT_EQ(z[p + 5], static_cast<float>(-shifted));
    }
  }
}

// The fp32 entry point: quantization on the table's vector kernel, bit-identical to the
// scalar table, and close to the double product of the dequantized operands.
TEST_P(Int8GemmTest, Fp32InputMatchesScalarAndDequantizedReference) {
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(5);
  for (const Shape& s : kShapes) {
    SCOPED_TRACE("O=" + std::to_string(s.rows) + " K=" + std::to_string(s.cols) + " P=" + std::to_string(s.p));
    const std::vector<float> dense = testing::RandomVector(s.rows * s.cols, rng);
    const Int8Weights w = QuantizeInt8Weights(DenseView{dense.data(), s.rows, s.cols}).value();
    const int64_t ldx = s.p % 3 == 0 ? s.p : s.p + 2;  // contiguous and strided X
    std::vector<float> x = testing::RandomVector(s.cols * ldx, rng);
    x[0] = 100.0f;  // clamps to 255
    const ActivationQuant q = ChooseActivationQuant(-0.7f, 1.3f);
    const std::vector<float> bias = testing::RandomVector(s.rows, rng);
    std::vector<std::vector<float>> outs;
    for (const Int8KernelTable* t : {&table(), &scalar}) {
      Int8Options options;
      options.kernels = t;
      std::vector<float> y(s.rows * s.p, kSentinel);
      Int8GemmArgs a;
      a.x = x.data();
      a.ldx = ldx;
      a.quant = q;
      a.y = y.data();
      a.ldy = s.p;
      a.p = s.p;
      a.bias = bias.data();
      ASSERT_TRUE(Int8Gemm(w, a, options).ok());
      outs.push_back(y);
    }
    if (ExpectIdentical(outs[0], outs[1], s.rows, s.p, s.p, "fp32 vs scalar") > 0) return;
    std::vector<uint8_t> xq(s.cols * ldx);
    QuantizeActivations(x.data(), s.cols * ldx, q, xq.data(), &scalar);
    const testing::Reference ref = Reference(w, xq.data(), ldx, s.p, q, bias.data(), false);
    if (testing::ExpectNear(ref, outs[0].data(), s.rows, s.p, s.p, "fp32 vs double") > 0) return;
  }
}

TEST_P(Int8GemmTest, ThreadsGiveIdenticalResults) {
  std::mt19937 rng(3);
  for (const Shape& s : std::vector<Shape>{{77, 40, 1}, {50, 33, 30}, {45, 21, 300}, {19, 64, 1000}}) {
    SCOPED_TRACE("P=" + std::to_string(s.p));
    const std::vector<int8_t> values = RandomWeights(s.rows * s.cols, rng);
    const std::vector<float> scales = RandomScales(s.rows, rng);
    const Int8Weights w = PackInt8Weights(values.data(), s.rows, s.cols, scales.data()).value();
    const std::vector<uint8_t> x = RandomActivations(s.cols * s.p, rng);
    const ActivationQuant q{0.02f, 99};
    const std::vector<float> one = RunU8(w, table(), x, s.p, s.p, q, nullptr, true, 1);
    for (int threads : {2, 3}) {
      const std::vector<float> y = RunU8(w, table(), x, s.p, s.p, q, nullptr, true, threads);
      ExpectIdentical(y, one, s.rows, s.p, s.p + 5, "threads " + std::to_string(threads));
    }
  }
}

// The kernels on sub-slices (rows and columns not starting at 0 or at tile boundaries),
// called directly: the same values as the scalar kernel, nothing written outside.
TEST_P(Int8GemmTest, KernelsComputeExactlyTheirSlice) {
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(13);
  const int64_t rows = 70, cols = 45, p = 150;
  const std::vector<int8_t> values = RandomWeights(rows * cols, rng);
  const std::vector<float> scales = RandomScales(rows, rng);
  const Int8Weights w = PackInt8Weights(values.data(), rows, cols, scales.data()).value();
  const std::vector<uint8_t> x = RandomActivations(cols * p, rng);
  const std::vector<float> bias = testing::RandomVector(rows, rng);
  struct Range {
    int64_t row_begin, row_end, p_begin, p_end;
  };
  for (const Range& r : std::vector<Range>{{5, 70, 0, 1}, {3, 40, 7, 12}, {17, 18, 70, 135}, {1, 69, 3, 150},
                                           {33, 70, 100, 101}, {0, 70, 64, 128}, {20, 52, 1, 4}}) {
    SCOPED_TRACE("rows " + std::to_string(r.row_begin) + ".." + std::to_string(r.row_end) + " columns " +
                 std::to_string(r.p_begin) + ".." + std::to_string(r.p_end));
    std::vector<std::vector<float>> outs;
    for (const Int8KernelTable* t : {&table(), &scalar}) {
      std::vector<float> y(rows * p, kSentinel);
      std::vector<uint8_t> scratch(t->gemm_scratch_bytes(cols, r.p_end - r.p_begin));
      Int8GemmSlice s;
      s.x = x.data();
      s.ldx = p;
      s.x_zero_point = 131;
      s.x_scale = 0.01f;
      s.y = y.data();
      s.ldy = p;
      s.bias = bias.data();
      s.p_begin = r.p_begin;
      s.p_end = r.p_end;
      s.row_begin = r.row_begin;
      s.row_end = r.row_end;
      s.scratch = scratch.data();
      t->gemm(ViewOf(w), s);
      for (int64_t o = 0; o < rows; ++o) {
        for (int64_t j = 0; j < p; ++j) {
          const bool inside = o >= r.row_begin && o < r.row_end && j >= r.p_begin && j < r.p_end;
          if (!inside) {
            EXPECT_EQ(y[o * p + j], kSentinel) << "wrote y[" << o << "," << j << "]";
          }
        }
      }
      outs.push_back(y);
    }
    ExpectIdentical(outs[0], outs[1], rows, p, p, "slice vs scalar");
  }
}

// Every table's quantizer equals the scalar one bit for bit, tails and edge inputs included.
TEST_P(Int8GemmTest, QuantizeMatchesScalar) {
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(9);
  const ActivationQuant q{0.05f, 77};
  std::vector<float> x = testing::RandomVector(300, rng);
  for (float& v : x) v *= 8.0f;
  const float edges[] = {0.0f, -0.0f, 1e30f, -1e30f, std::numeric_limits<float>::infinity(),
                         -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                         0.025f, 0.075f, -3.85f, -3.875f};  // ties at x / scale = k + 0.5
  for (size_t i = 0; i < std::size(edges); ++i) x[3 * i + 1] = edges[i];
  for (int64_t n : {0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 300}) {
    std::vector<uint8_t> a(n + 1, 7), b(n + 1, 7);
    QuantizeActivations(x.data(), n, q, a.data(), &table());
    QuantizeActivations(x.data(), n, q, b.data(), &scalar);
    EXPECT_EQ(a, b) << "n=" << n;
    EXPECT_EQ(a[n], 7) << "write past n=" << n;
  }
  // Every code's value quantizes back to that code.
  std::vector<float> codes(256);
  for (int i = 0; i < 256; ++i) codes[i] = q.scale * static_cast<float>(i - q.zero_point);
  std::vector<uint8_t> back(256);
  QuantizeActivations(codes.data(), 256, q, back.data(), &table());
  for (int i = 0; i < 256; ++i) EXPECT_EQ(back[i], i);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8GemmTest, ::testing::ValuesIn(Int8SupportedIsas()), testing::IsaParamName);

TEST(Int8WeightsTest, QuantizesPerRowSymmetric) {
  const std::vector<float> dense = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f, 3.0f, 2.0f, -1.5f};
  const Int8Weights w = QuantizeInt8Weights(DenseView{dense.data(), 3, 3}).value();
  EXPECT_EQ(w.ld, 4);
  EXPECT_FLOAT_EQ(w.scales[0], 1.0f / 127);
  EXPECT_EQ(w.at(0, 1), -127);
  EXPECT_EQ(w.scales[1], 1.0f);  // all-zero row
  EXPECT_EQ(w.at(2, 0), 127);
  for (int64_t o = 0; o < 3; ++o) {
    int32_t sum = 0;
    for (int64_t k = 0; k < 3; ++k) {
      sum += w.at(o, k);
      EXPECT_LE(std::abs(w.scales[o] * w.at(o, k) - dense[o * 3 + k]), 0.5f * w.scales[o] + 1e-7f);
    }
    EXPECT_EQ(w.row_sums[o], sum);
    EXPECT_EQ(w.at(o, 3), 0);  // padding
  }
  EXPECT_EQ(w.values.size(), static_cast<size_t>(3 * 4 + kLowBitWeightSlack));
}

TEST(Int8WeightsTest, RejectsBadInput) {
  const std::vector<int8_t> ok = {1, 2}, bad = {-128, 0};
  const std::vector<float> scale = {1.0f}, zero = {0.0f}, nan = {std::nanf("")};
  EXPECT_TRUE(PackInt8Weights(ok.data(), 1, 2, scale.data()).ok());
  EXPECT_EQ(PackInt8Weights(bad.data(), 1, 2, scale.data()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackInt8Weights(ok.data(), 1, 2, zero.data()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackInt8Weights(ok.data(), 1, 2, nan.data()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackInt8Weights(ok.data(), 0, 2, scale.data()).status().code(), StatusCode::kInvalidArgument);
  const std::vector<float> inf = {std::numeric_limits<float>::infinity()};
  EXPECT_EQ(QuantizeInt8Weights(DenseView{inf.data(), 1, 1}).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> wide(kMaxInt8Cols + 1, 0.0f);
  EXPECT_EQ(QuantizeInt8Weights(DenseView{wide.data(), 1, kMaxInt8Cols + 1}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Int8ActivationQuantTest, CoversRangeAndZero) {
  const ActivationQuant q = ChooseActivationQuant(-1.0f, 3.0f);
  EXPECT_FLOAT_EQ(q.scale, 4.0f / 255);
  EXPECT_EQ(q.zero_point, 64);  // round(63.75)
  EXPECT_TRUE(Validate(q).ok());
  EXPECT_EQ(ChooseActivationQuant(0.5f, 2.0f).zero_point, 0);     // range widened to 0
  EXPECT_EQ(ChooseActivationQuant(-2.0f, -1.0f).zero_point, 255);
  EXPECT_EQ(ChooseActivationQuant(0.0f, 0.0f).scale, 1.0f);
  EXPECT_FALSE(Validate(ActivationQuant{0.0f, 0}).ok());
  EXPECT_FALSE(Validate(ActivationQuant{1.0f, 256}).ok());
  EXPECT_FALSE(Validate(ActivationQuant{1.0f, -1}).ok());
}

TEST(Int8GemmArgsTest, RejectsBadArguments) {
  const std::vector<int8_t> values = {1, 2, 3, 4};
  const std::vector<float> scales = {1.0f, 1.0f};
  const Int8Weights w = PackInt8Weights(values.data(), 2, 2, scales.data()).value();
  std::vector<float> x(4, 1.0f), y(4);
  std::vector<uint8_t> xq(4, 3);
  Int8GemmArgs a;
  a.x = x.data();
  a.ldx = 2;
  a.y = y.data();
  a.ldy = 2;
  a.p = 2;
  EXPECT_TRUE(Int8Gemm(w, a).ok());
  EXPECT_EQ(y, (std::vector<float>{3, 3, 7, 7}));
  Int8GemmArgs both = a;
  both.xq = xq.data();
  EXPECT_EQ(Int8Gemm(w, both).code(), StatusCode::kInvalidArgument);
  Int8GemmArgs none = a;
  none.x = nullptr;
  EXPECT_EQ(Int8Gemm(w, none).code(), StatusCode::kInvalidArgument);
  Int8GemmArgs narrow = a;
  narrow.ldx = 1;
  EXPECT_EQ(Int8Gemm(w, narrow).code(), StatusCode::kInvalidArgument);
  Int8GemmArgs empty = a;
  empty.p = 0;
  EXPECT_EQ(Int8Gemm(w, empty).code(), StatusCode::kInvalidArgument);
  Int8GemmArgs bad_quant = a;
  bad_quant.quant.zero_point = 300;
  EXPECT_EQ(Int8Gemm(w, bad_quant).code(), StatusCode::kInvalidArgument);
}

TEST(Int8KernelTableTest, ChoosesARunnableIsa) {
  const std::vector<Isa> isas = Int8SupportedIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  EXPECT_LE(Int8Kernels().isa, ActiveIsa());
  for (Isa isa : isas) {
    const Int8KernelTable* t = Int8KernelsFor(isa);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->isa, isa);
    EXPECT_NE(t->quantize_u8, nullptr);
    EXPECT_NE(t->gemm, nullptr);
    EXPECT_NE(t->gemm_scratch_bytes, nullptr);
    EXPECT_NE(t->int4_gemv, nullptr);
    EXPECT_NE(KernelsFor(isa), nullptr);
  }
}

}  // namespace
}  // namespace acs::kernels
