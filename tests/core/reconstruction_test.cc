// Least-squares reconstruction: the solver on problems with known answers, and its effect
// on a compressed model.
#include "core/reconstruction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "core/compressor.h"
#include "core/evaluator.h"
#include "core/importer.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

TEST(SolveMaskedLeastSquaresTest, RecoversMaskedWeightsAndBiasFromNoiselessData) {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({12, 300});
  torch::Tensor mask = (torch::rand({5, 12}) > 0.4).to(torch::kFloat32);
  torch::Tensor w = torch::randn({5, 12}) * mask;
  torch::Tensor b = torch::randn({5});
  torch::Tensor y = w.matmul(x) + b.unsqueeze(1);
  auto [w_fit, b_fit] = SolveMaskedLeastSquares(x, y, mask, /*fit_bias=*/true, /*ridge=*/1e-10);
  EXPECT_TRUE(torch::allclose(w_fit, w, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(b_fit, b, 1e-4, 1e-4));
  EXPECT_EQ((w_fit.masked_select(mask == 0) != 0).sum().item<int64_t>(), 0) << "pruned weights stay zero";
}

TEST(SolveMaskedLeastSquaresTest, FullSupportMatchesOrdinaryLeastSquares) {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({6, 50}, torch::kFloat64);
  torch::Tensor y = torch::randn({3, 50}, torch::kFloat64);
  auto [w_fit, b_fit] = SolveMaskedLeastSquares(x, y, torch::Tensor(), /*fit_bias=*/false, /*ridge=*/0.0);
  EXPECT_FALSE(b_fit.defined());
  torch::Tensor expected = std::get<0>(torch::linalg_lstsq(x.t(), y.t())).t();
  EXPECT_TRUE(torch::allclose(w_fit, expected, 1e-8, 1e-8));
}

TEST(SolveMaskedLeastSquaresSweepTest, WithoutAMaskItIsTheExactSolution) {
  torch::manual_seed(6);
  torch::Tensor x = torch::randn({40, 200}, torch::kFloat64);
  torch::Tensor y = torch::randn({7, 200}, torch::kFloat64);
  auto [w_exact, b_exact] = SolveMaskedLeastSquares(x, y, torch::Tensor(), /*fit_bias=*/true);
  auto [w_sweep, b_sweep] = SolveMaskedLeastSquaresSweep(x, y, torch::Tensor(), /*fit_bias=*/true);
  EXPECT_TRUE(torch::allclose(w_sweep, w_exact, 1e-8, 1e-8));
  EXPECT_TRUE(torch::allclose(b_sweep, b_exact, 1e-8, 1e-8));
}

// On correlated inputs with every row's own mask, the sweep's fit lies between the exact
// restricted solution (the optimum) and masking the unconstrained solution.
TEST(SolveMaskedLeastSquaresSweepTest, LiesBetweenMaskingAndTheExactFitWithPrunedWeightsZero) {
  torch::manual_seed(7);
  const int64_t k = 300, rows = 16, samples = 1000;
  torch::Tensor mix = torch::randn({k, k}, torch::kFloat64) / std::sqrt(static_cast<double>(k));
  torch::Tensor x = (torch::eye(k, torch::kFloat64) + mix).matmul(torch::randn({k, samples}, torch::kFloat64));
  torch::Tensor y = torch::randn({rows, k}, torch::kFloat64).matmul(x) + 0.5;
  torch::Tensor mask = (torch::rand({rows, k}) > 0.6).to(torch::kFloat64);
  auto residual = [&](const torch::Tensor& w, const torch::Tensor& b) {
    return (y - w.matmul(x) - b.unsqueeze(1)).pow(2).sum().item<double>();
  };
  auto [w_exact, b_exact] = SolveMaskedLeastSquares(x, y, mask, /*fit_bias=*/true);
  auto [w_sweep, b_sweep] = SolveMaskedLeastSquaresSweep(x, y, mask, /*fit_bias=*/true);
  auto [w_free, b_free] = SolveMaskedLeastSquares(x, y, torch::Tensor(), /*fit_bias=*/true);
  const double exact = residual(w_exact, b_exact), sweep = residual(w_sweep, b_sweep),
               masked = residual(w_free * mask, b_free);
  std::cout << "residual: exact " << exact << ", sweep " << sweep << ", masked unconstrained " << masked << "\n";
  EXPECT_LE(exact, sweep * (1 + 1e-9));
  EXPECT_LT(sweep, masked);
  EXPECT_EQ((w_sweep.masked_select(mask == 0) != 0).sum().item<int64_t>(), 0) << "pruned weights are exactly zero";
  EXPECT_EQ(w_sweep.dtype(), y.dtype());
}

TEST(LayerInputColumnsTest, ConvColumnsAreTheIm2colPatches) {
  Layer conv;
  conv.type = LayerType::kConv2d;
  conv.kernel = {3, 3};
  conv.padding = {1, 1};
  conv.stride = {2, 2};
  conv.output_shape = {1, 4, 3, 3};
  torch::Tensor input = torch::randn({2, 2, 5, 5});
  EXPECT_EQ(LayerInputColumnCount(conv, input), 18);
  torch::Tensor cols = LayerInputColumns(conv, input, torch::arange(18));
  ASSERT_EQ(cols.sizes(), (std::vector<int64_t>{18, 18}));
  // A conv is the weight times these columns.
  torch::Tensor w = torch::randn({4, 2, 3, 3});
  torch::Tensor direct = torch::conv2d(input, w, {}, 2, 1);  // [2, 4, 3, 3]
  torch::Tensor via_cols = w.reshape({4, 18}).matmul(cols).reshape({4, 2, 9}).permute({1, 0, 2}).reshape({2, 4, 3, 3});
  EXPECT_TRUE(torch::allclose(direct, via_cols, 1e-5, 1e-5));
}

// Pruning half the channels of the first conv removes input channels of the second;
// refitting the second brings the compressed model's outputs closer to the dense model's,
// exactly or by the sweep (forced by a zero budget for exact solves).
TEST(ReconstructionTest, RefitBringsTheCompressedModelCloserToTheDenseOne) {
  std::string path = test_models::BuildTestModel("plain");
  auto model = ImportTorchScript(path, {test_models::TestInputShape()});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Shape shape = test_models::TestInputShape();
  shape[0] = 64;
  torch::manual_seed(5);
  torch::Tensor data = torch::rand(shape);
  Policy policy;
  LayerConfig channel;
  channel.pattern = Pattern::kChannel;
  channel.sparsity = 0.5;
  policy.layers["features.conv1"] = channel;
  LayerConfig sparse;
  sparse.pattern = Pattern::kUnstructured;
  sparse.sparsity = 0.6;
  policy.layers["features.conv2"] = sparse;

  torch::jit::Module dense = torch::jit::load(path);
  dense.eval();
  Dataset eval_data;
  eval_data.images = data;
  enum Mode { kNone, kExact, kSweep };
  double kl[3];
  for (Mode mode : {kNone, kExact, kSweep}) {
    CompressorOptions options;
    options.calibration = data;
    options.reconstruct = mode != kNone;
    if (mode == kSweep) {
      options.max_reconstruction_flops = 0;
      options.max_sweep_flops = 1e11;
    }
    auto compressed = Compress(**model, policy, options);
    ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
    auto fidelity = EvaluateFidelity([&](const torch::Tensor& x) { return dense.forward({x}).toTensor(); },
                                     [&](const torch::Tensor& x) { return *compressed->Forward(x); }, eval_data);
    ASSERT_TRUE(fidelity.ok()) << fidelity.status().ToString();
    kl[mode] = fidelity->mean_kl;
  }
  std::cout << "mean KL to the dense model: no refit " << kl[kNone] << ", exact " << kl[kExact] << ", sweep "
            << kl[kSweep] << "\n";
  EXPECT_LT(kl[kExact], kl[kNone]);
  EXPECT_LT(kl[kSweep], kl[kNone]);
}

}  // namespace
}  // namespace acs
