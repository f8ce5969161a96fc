// Every sparse kernel, on every ISA this CPU runs, against the scalar reference table and
// a naive double-precision dense product (tolerance: kernel_test_util.h).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "devices/kernels/kernel_table.h"
#include "devices/kernels/spmm.h"
#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

using testing::DenseReference;
using testing::ExpectNear;
using testing::PackAs;
using testing::RandomSparseWeights;
using testing::RandomVector;
using testing::Reference;

const std::vector<std::string> kPatterns = {"block4", "block8", "block16", "block32", "unstructured",
                                            "2:4", "1:4", "2:8", "3:5"};
const std::vector<double> kSparsities = {0.0, 0.5, 0.9, 1.0};

struct Shape {
  int64_t rows, cols, p;
};
// Rows not multiples of N, odd K, P below / around / above every vector and tile width.
const std::vector<Shape> kShapes = {{1, 1, 1},    {5, 7, 1},    {13, 9, 2},   {17, 33, 3},  {33, 17, 5},
                                    {8, 64, 7},   {64, 27, 8},  {40, 31, 9},  {31, 130, 15}, {70, 65, 16},
                                    {9, 50, 17},  {36, 12, 31}, {16, 40, 33}, {35, 23, 47}, {12, 19, 48},
                                    {67, 45, 49}, {20, 77, 95}, {24, 96, 97}, {3, 11, 130}, {41, 129, 200}};

class SpmmTest : public ::testing::TestWithParam<Isa> {
 protected:
  const KernelTable& table() const { return *KernelsFor(GetParam()); }
};

// Runs the kernel of `table` with strided X and Y and sentinels around every Y row, and
// checks that nothing outside Y's p columns was written.
std::vector<float> RunStrided(const SparseWeights& w, const KernelTable& table, const std::vector<float>& x,
                              int64_t ldx, int64_t p, const float* bias, int threads) {
  constexpr float kSentinel = 12345.0f;
  const int64_t rows = Rows(w), ldy = p + 5;
  std::vector<float> y(rows * ldy, kSentinel);
  SpmmOptions options;
  options.kernels = &table;
  options.threads = threads;
  options.min_macs_per_thread = 1;  // split even these small products
  const Status st = Spmm(w, SpmmArgs{x.data(), ldx, y.data(), ldy, p, bias}, options);
  EXPECT_TRUE(st.ok()) << st.ToString();
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t j = p; j < ldy; ++j) {
      EXPECT_EQ(y[o * ldy + j], kSentinel) << "write past column " << p << " in row " << o;
    }
  }
  return y;
}

TEST_P(SpmmTest, MatchesScalarAndDenseReference) {
  const KernelTable& scalar = *KernelsFor(Isa::kScalar);
  std::mt19937 rng(42);
  for (const std::string& pattern : kPatterns) {
    for (double sparsity : kSparsities) {
      for (const Shape& shape : kShapes) {
        const std::string what = std::string(IsaName(GetParam())) + " " + pattern + " sparsity " +
                                 std::to_string(sparsity) + " O=" + std::to_string(shape.rows) +
                                 " K=" + std::to_string(shape.cols) + " P=" + std::to_string(shape.p);
        SCOPED_TRACE(what);
        const std::vector<float> dense = RandomSparseWeights(shape.rows, shape.cols, pattern, sparsity, rng);
        const SparseWeights w = PackAs(dense, shape.rows, shape.cols, pattern);
        const int64_t ldx = shape.p + 3;
        const std::vector<float> x = RandomVector(shape.cols * ldx, rng);
        const std::vector<float> bias = RandomVector(shape.rows, rng);
        const float* b = (shape.p % 2 == 0) ? bias.data() : nullptr;  // with and without bias
        const Reference ref = DenseReference(dense, shape.rows, shape.cols, x.data(), ldx, shape.p, b);

        const std::vector<float> y = RunStrided(w, table(), x, ldx, shape.p, b, 1);
        const std::vector<float> y_scalar = RunStrided(w, scalar, x, ldx, shape.p, b, 1);
        const int64_t ldy = shape.p + 5;
        if (ExpectNear(ref, y.data(), shape.rows, shape.p, ldy, "vs dense") > 0) return;
        Reference scalar_ref = ref;
        for (int64_t o = 0; o < shape.rows; ++o) {
          for (int64_t j = 0; j < shape.p; ++j) scalar_ref.y[o * shape.p + j] = y_scalar[o * ldy + j];
        }
        if (ExpectNear(scalar_ref, y.data(), shape.rows, shape.p, ldy, "vs scalar") > 0) return;
      }
    }
  }
}

TEST_P(SpmmTest, ThreadsSplitRowsOrColumns) {
  std::mt19937 rng(7);
  // Few columns (rows are split) and many columns (columns are split).
  for (const Shape& shape : std::vector<Shape>{{77, 40, 1}, {50, 33, 30}, {45, 21, 300}, {19, 64, 1000}}) {
    for (std::string pattern : {"block8", "block16", "unstructured", "2:4"}) {
      SCOPED_TRACE(pattern + " P=" + std::to_string(shape.p));
      const std::vector<float> dense = RandomSparseWeights(shape.rows, shape.cols, pattern, 0.6, rng);
      const SparseWeights w = PackAs(dense, shape.rows, shape.cols, pattern);
      const std::vector<float> x = RandomVector(shape.cols * shape.p, rng);
      const std::vector<float> bias = RandomVector(shape.rows, rng);
      const Reference ref = DenseReference(dense, shape.rows, shape.cols, x.data(), shape.p, shape.p, bias.data());
      for (int threads : {2, 3}) {
        const std::vector<float> y = RunStrided(w, table(), x, shape.p, shape.p, bias.data(), threads);
        ExpectNear(ref, y.data(), shape.rows, shape.p, shape.p + 5, "threads " + std::to_string(threads));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, SpmmTest, ::testing::ValuesIn(SupportedIsas()), testing::IsaParamName);

TEST(SpmmArgsTest, RejectsBadArguments) {
  const std::vector<float> dense = {1, 0, 0, 2};
  const CsrMatrix w = PackCsr(DenseView{dense.data(), 2, 2}).value();
  std::vector<float> x(4, 1.0f), y(4);
  EXPECT_EQ(Spmm(w, SpmmArgs{nullptr, 2, y.data(), 2, 2, nullptr}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Spmm(w, SpmmArgs{x.data(), 2, y.data(), 2, 0, nullptr}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Spmm(w, SpmmArgs{x.data(), 1, y.data(), 2, 2, nullptr}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Spmm(w, SpmmArgs{x.data(), 2, y.data(), 1, 2, nullptr}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(Spmm(w, SpmmArgs{x.data(), 2, y.data(), 2, 2, nullptr}).ok());
  EXPECT_EQ(y, (std::vector<float>{1, 1, 2, 2}));
}

TEST(SpmmArgsTest, SmallProductsUseFewerThreads) {
  SpmmOptions options;
  options.threads = 4;
  options.min_macs_per_thread = 100;
  EXPECT_EQ(ThreadsFor(0, options), 1);
  EXPECT_EQ(ThreadsFor(250, options), 2);
  EXPECT_EQ(ThreadsFor(1000000, options), 4);
  options.threads = 0;
  EXPECT_EQ(ThreadsFor(1000000, options), 1);
}

TEST(KernelTableTest, ChoosesARunnableIsa) {
  const std::vector<Isa> isas = SupportedIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  EXPECT_EQ(isas.back(), DetectIsa());
  EXPECT_LE(ActiveIsa(), DetectIsa());
  EXPECT_EQ(Kernels().isa, ActiveIsa());
  for (Isa isa : isas) {
    const KernelTable* t = KernelsFor(isa);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->isa, isa);
    EXPECT_NE(t->block_sparse, nullptr);
    EXPECT_NE(t->csr, nullptr);
    EXPECT_NE(t->nm, nullptr);
  }
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) EXPECT_EQ(ParseIsa(IsaName(isa)), isa);
  EXPECT_FALSE(ParseIsa("sse9").has_value());
}

}  // namespace
}  // namespace acs::kernels
