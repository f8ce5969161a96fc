// The runtime against the compressed model run by LibTorch: the same outputs up to fp32
// summation order, for random block / unstructured / N:M / channel policies on the test
// models, at 1 and 2 threads; the same for int8 / int4w policies up to quantization
// rounding; batch-norm folding, activation fusion and which layers stay aten ops.
//
// Tolerance (fp32 and int4w layers): |runtime - compressed| <= 1e-4 * max(1, max
// |compressed|). The kernels sum in another order than oneDNN, and folded batch norm
// rounds w * gamma / sigma once instead of normalizing the output; both stay orders of
// magnitude below this.
//
// Tolerance with int8 layers: the int8 kernels sum exactly and dequantize once, so a layer
// alone differs from its fake-quant simulation by fp32 rounding; but a value that the two
// graphs compute a few ulps apart may round to neighbouring uint8 steps at the next int8
// layer's input (the kernels also quantize with one fused multiply-add where LibTorch
// rounds the product first). Such a step moves the outputs by about scale * |w|. Held to:
// max |runtime - compressed| <= 2e-2 * max(1, max |compressed|), and the mean difference
// <= 1e-3 * max(1, max |compressed|).
#include "devices/runtime/runtime.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <tuple>

#include "core/importer.h"
#include "core/kernel_spec.h"
#include "devices/runtime/packed_depthwise.h"
#include "devices/runtime/packed_int8.h"
#include "tests/core/test_models.h"

#include "tests/devices/runtime_test_util.h"

namespace acs::runtime {
namespace {

using namespace runtime_test;  // NOLINT: the shared test helpers

class RandomPolicyTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(RandomPolicyTest, MatchesTheCompressedModel) {
  const auto& [name, threads] = GetParam();
  std::shared_ptr<ImportedModel> model = Import(name);
  ASSERT_NE(model, nullptr);
  int sparse_layers = 0;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    const Policy policy = RandomPolicy(model->graph, seed);
    Built b = Build(*model, policy, AllSparse(threads));
    for (const LayerKernel& k : b.rt.layers()) {
      const bool sparse_config = k.config.pattern == Pattern::kBlock || k.config.pattern == Pattern::kUnstructured ||
                                 k.config.pattern == Pattern::kNM;
      const Layer& layer = model->graph.layers[model->graph.FindLayer(k.name)];
      if (layer.depthwise()) {  // every depthwise layer of the test models is 3x3
        EXPECT_EQ(k.kind, KernelKind::kDepthwise) << k.name;
      } else if (sparse_config && layer.groups == 1) {
        EXPECT_TRUE(IsSparseKind(k.kind)) << k.name << ": " << k.why_dense;
      } else {
        EXPECT_EQ(k.kind, KernelKind::kDense) << k.name;
      }
      sparse_layers += IsSparseKind(k.kind);
    }
    ExpectSameOutputAtBatches(b, policy, name + " seed " + std::to_string(seed), seed);
  }
  EXPECT_GT(sparse_layers, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Models, RandomPolicyTest,
    ::testing::Combine(::testing::ValuesIn(test_models::TestModelNames()), ::testing::Values(1, 2)),
    [](const auto& info) { return std::get<0>(info.param) + "_t" + std::to_string(std::get<1>(info.param)); });

TEST(RuntimeTest, FoldsBatchNormIntoDenseAndSparseConvolutions) {
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  for (bool sparse : {false, true}) {
    Policy policy;
    if (sparse) policy.layers["features.conv2"] = LayerConfig{0.7, Pattern::kBlock, 8};
    Built b = Build(*model, policy, AllSparse(1));
    EXPECT_EQ(b.rt.CountNodes("aten::batch_norm"), 0);
    EXPECT_TRUE(Kernel(b.rt, "features.conv1").folded_batch_norm);
    EXPECT_TRUE(Kernel(b.rt, "features.conv2").folded_batch_norm);
    EXPECT_EQ(Kernel(b.rt, "features.conv2").kind, sparse ? KernelKind::kBlockSparse : KernelKind::kDense);
    ExpectSameOutput(b.compressed, b.rt, torch::randn({4, 3, 16, 16}), sparse ? "sparse" : "dense");
  }
  RuntimeOptions no_fold = AllSparse(1);
  no_fold.fold_batch_norm = false;
  no_fold.optimize_dense = false;  // which folds batch norms itself
  Built b = Build(*model, Policy(), no_fold);
  EXPECT_EQ(b.rt.CountNodes("aten::batch_norm"), 2);
  EXPECT_FALSE(Kernel(b.rt, "features.conv1").folded_batch_norm);
}

TEST(RuntimeTest, FusesReluAndRelu6IntoSparseOps) {
  std::shared_ptr<ImportedModel> plain = Import("plain");
  ASSERT_NE(plain, nullptr);
  Policy policy;
  policy.layers["features.conv1"] = LayerConfig{0.5, Pattern::kBlock, 4};
  policy.layers["features.conv2"] = LayerConfig{0.5, Pattern::kUnstructured};
  policy.layers["classifier.fc1"] = LayerConfig{0.0, Pattern::kNM, 1, 2, 4};
  Built b = Build(*plain, policy, AllSparse(1));
  EXPECT_EQ(Kernel(b.rt, "features.conv1").activation, "relu");
  EXPECT_EQ(Kernel(b.rt, "features.conv2").activation, "relu");
  EXPECT_EQ(Kernel(b.rt, "classifier.fc1").kind, KernelKind::kNm);
  EXPECT_EQ(Kernel(b.rt, "classifier.fc1").activation, "relu");
  EXPECT_EQ(b.rt.CountNodes("aten::relu"), 0);
  EXPECT_EQ(b.rt.CountNodes(kSparseConv2dOp), 2);
  EXPECT_EQ(b.rt.CountNodes(kSparseLinearOp), 1);
  ExpectSameOutput(b.compressed, b.rt, torch::randn({2, 3, 16, 16}), "plain");

  std::shared_ptr<ImportedModel> mobile = Import("depthwise");
  ASSERT_NE(mobile, nullptr);
  Policy expand;
  expand.layers["block.expand"] = LayerConfig{0.5, Pattern::kBlock, 8};
  Built m = Build(*mobile, expand, AllSparse(1));
  EXPECT_EQ(Kernel(m.rt, "block.expand").activation, "hardtanh(0,6)");
  ExpectSameOutput(m.compressed, m.rt, torch::randn({2, 3, 16, 16}), "depthwise");

  RuntimeOptions no_fuse = AllSparse(1);
  no_fuse.fuse_activation = false;
  no_fuse.optimize_dense = false;  // whose oneDNN regions rewrite relus
  Built n = Build(*plain, policy, no_fuse);
  EXPECT_EQ(Kernel(n.rt, "features.conv1").activation, "");
  EXPECT_EQ(n.rt.CountNodes("aten::relu"), 3);
}

TEST(RuntimeTest, GroupedConvolutionsStayAtenAndDepthwiseRunTheDepthwiseKernel) {
  std::shared_ptr<ImportedModel> grouped = Import("grouped");
  ASSERT_NE(grouped, nullptr);
  Policy policy;
  policy.layers["gconv"] = LayerConfig{0.75, Pattern::kUnstructured};
  Built b = Build(*grouped, policy, AllSparse(2));
  EXPECT_EQ(Kernel(b.rt, "gconv").kind, KernelKind::kDense);
  EXPECT_NE(Kernel(b.rt, "gconv").why_dense.find("groups"), std::string::npos) << Kernel(b.rt, "gconv").why_dense;
  ExpectSameOutput(b.compressed, b.rt, torch::randn({2, 3, 16, 16}), "grouped");

  using NameAndLayer = std::pair<std::string, std::string>;
  for (const auto& [name, layer] : {NameAndLayer{"depthwise", "block.dw"}, NameAndLayer{"concat", "dw"}}) {
    std::shared_ptr<ImportedModel> model = Import(name);
    ASSERT_NE(model, nullptr);
    for (const LayerConfig& config : {LayerConfig{}, LayerConfig{0.75, Pattern::kUnstructured}}) {
      Policy p;
      p.layers[layer] = config;
      for (int threads : {1, 2}) {
        Built d = Build(*model, p, AllSparse(threads));
        EXPECT_EQ(Kernel(d.rt, layer).kind, KernelKind::kDepthwise) << name;
        EXPECT_EQ(Kernel(d.rt, layer).folded_batch_norm, name == "depthwise");  // concat's dw has no BN
        EXPECT_FALSE(Kernel(d.rt, layer).activation.empty()) << name;
        EXPECT_EQ(d.rt.CountNodes(kDepthwiseConv2dOp), 1) << name;
        ExpectSameOutput(d.compressed, d.rt, torch::randn({3, 3, 16, 16}), name + " " + PatternName(config.pattern));
      }
    }
  }
}

TEST(RuntimeTest, StridedPaddedAndDilatedConvolutionsRunSparse) {
  for (const std::string name : {"residual", "se"}) {
    std::shared_ptr<ImportedModel> model = Import(name);
    ASSERT_NE(model, nullptr);
    const Policy policy = UniformPolicy(model->graph, LayerConfig{0.8, Pattern::kBlock, 4}, {"fc"});
    for (int threads : {1, 2}) {
      Built b = Build(*model, policy, Threads(threads));  // default selection: 80% block is sparse
      for (const LayerKernel& k : b.rt.layers()) {
        if (k.config.pattern == Pattern::kBlock) {
          EXPECT_EQ(k.kind, KernelKind::kBlockSparse) << k.name;
        }
      }
      ExpectSameOutput(b.compressed, b.rt, torch::randn({3, 3, 16, 16}), name);
    }
  }
}

TEST(RuntimeTest, DenseEnoughLayersStayDenseByDefault) {
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["features.conv2"] = LayerConfig{0.2, Pattern::kUnstructured};
  Built b = Build(*model, policy, RuntimeOptions{});
  EXPECT_EQ(Kernel(b.rt, "features.conv2").kind, KernelKind::kDense);
  EXPECT_NE(Kernel(b.rt, "features.conv2").why_dense.find("density"), std::string::npos);
  EXPECT_NEAR(Kernel(b.rt, "features.conv2").density, 0.8, 0.01);
}

// int8 on about half the compressible layers (with random sparsity patterns), int4w on
// some linear layers, the rest fp32.
Policy RandomLowPrecisionPolicy(const Graph& g, uint32_t seed) {
  Policy p = RandomPolicy(g, seed);
  std::mt19937 rng(seed * 7919u);
  for (auto& [name, config] : p.layers) {
    const Layer& layer = g.layers[g.FindLayer(name)];
    const uint32_t r = rng() % 4;
    if (r < 2) {
      config.precision = Precision::kInt8;
    } else if (r == 2 && layer.type == LayerType::kLinear && config.pattern != Pattern::kChannel) {
      config.precision = Precision::kInt4w;
    }
  }
  return p;
}

class Int8PolicyTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(Int8PolicyTest, MatchesTheCompressedModelUpToQuantizationSteps) {
  const auto& [name, threads] = GetParam();
  std::shared_ptr<ImportedModel> model = Import(name);
  ASSERT_NE(model, nullptr);
  int int8_layers = 0;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    const Policy policy = RandomLowPrecisionPolicy(model->graph, seed);
    torch::manual_seed(seed);
    CompressorOptions calibrate;
    calibrate.calibration = torch::randn({16, 3, 16, 16});
    Built b = Build(*model, policy, Threads(threads), calibrate);
    int simulated = 0;
    for (const LayerKernel& k : b.rt.layers()) {
      const Layer& layer = model->graph.layers[model->graph.FindLayer(k.name)];
      if (k.config.precision == Precision::kInt8) {
        // The test models' depthwise convs have kernels the int8 depthwise kernel runs.
        const bool kernel = layer.groups == 1 || layer.depthwise();
        EXPECT_EQ(k.kind, kernel ? KernelKind::kInt8 : KernelKind::kInt8Simulated) << k.name;
        simulated += k.kind == KernelKind::kInt8Simulated;
      }
      if (k.config.precision == Precision::kInt4w && !IsSparseKind(k.kind)) {
        EXPECT_EQ(k.kind, KernelKind::kInt4w) << k.name;
      }
      int8_layers += k.kind == KernelKind::kInt8;
    }
    // Only the layers left simulated keep their fake-quant node.
    EXPECT_EQ(b.rt.CountNodes("aten::fake_quantize_per_tensor_affine"), simulated);
    ExpectSameOutputAtBatches(b, policy, name + " seed " + std::to_string(seed), seed + 100, /*int8=*/true);
  }
  EXPECT_GT(int8_layers, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Models, Int8PolicyTest,
    ::testing::Combine(::testing::ValuesIn(test_models::TestModelNames()), ::testing::Values(1, 2)),
    [](const auto& info) { return std::get<0>(info.param) + "_t" + std::to_string(std::get<1>(info.param)); });

TEST(RuntimeTest, Int8LayersRunTheInt8KernelsWithBatchNormAndReluFused) {
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  const Policy policy = LowPrecisionPolicy();
  CompressorOptions calibrate;
  calibrate.calibration = torch::rand({8, 3, 16, 16});
  Built b = Build(*model, policy, AllSparse(1), calibrate);
  const LayerKernel& conv2 = Kernel(b.rt, "features.conv2");
  EXPECT_EQ(conv2.kind, KernelKind::kInt8);
  EXPECT_TRUE(conv2.folded_batch_norm);
  EXPECT_EQ(conv2.activation, "relu");
  EXPECT_EQ(Kernel(b.rt, "classifier.fc1").kind, KernelKind::kInt8);
  EXPECT_EQ(Kernel(b.rt, "classifier.fc2").kind, KernelKind::kInt4w);
  EXPECT_EQ(b.rt.CountNodes("aten::fake_quantize_per_tensor_affine"), 0);
  EXPECT_EQ(b.rt.CountNodes("aten::batch_norm"), 0);
  EXPECT_EQ(b.rt.CountNodes(kInt8Conv2dOp), 1);
  EXPECT_EQ(b.rt.CountNodes(kInt8LinearOp), 1);
  EXPECT_EQ(b.rt.CountNodes(kInt4LinearOp), 1);
  ExpectSameOutput(b.compressed, b.rt, calibrate.calibration, "int8", /*int8=*/true);
  ExpectSameOutput(b.compressed, b.rt, torch::rand({1, 3, 16, 16}), "int8 batch 1", /*int8=*/true);
  EXPECT_TRUE(HasInt8Activations(*b.rt.graph()));
  EXPECT_FALSE(HasInt8Activations(*model->frozen));
}

// The optimized form's check: fp32 rounding passes, another function does not; where int8
// layers quantize activations, a value moved across a rounding step passes too.
TEST(RuntimeTest, OptimizedFormsDifferOnlyByRounding) {
  torch::manual_seed(3);
  const torch::Tensor expect = torch::randn({2, 500});
  for (bool int8 : {false, true}) {
    EXPECT_EQ(OptimizedDiffers(expect + 1e-7, expect, int8), "") << int8;
    EXPECT_NE(OptimizedDiffers(torch::randn({2, 500}), expect, int8), "") << int8;
    EXPECT_NE(OptimizedDiffers(expect.narrow(1, 0, 10), expect, int8), "") << int8;
  }
  torch::Tensor one_step = expect.clone();
  one_step[0][7] += 0.02;  // one output moved by an int8 step upstream
  EXPECT_EQ(OptimizedDiffers(one_step, expect, true), "");
  EXPECT_NE(OptimizedDiffers(one_step, expect, false).find("max error 0.02"), std::string::npos);
}

// One int8 layer on its own: nothing upstream differs, so the only departures from the
// simulation are fp32 rounding and, rarely, a rounding tie of the input quantization.
TEST(RuntimeTest, SingleInt8LayerIsWithinOneQuantizationStep) {
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["features.conv1"] = LayerConfig{0.0, Pattern::kDense, 1, 2, 4, Precision::kInt8};
  CompressorOptions calibrate;
  calibrate.calibration = torch::rand({8, 3, 16, 16});
  Built b = Build(*model, policy, AllSparse(1), calibrate);
  ASSERT_EQ(Kernel(b.rt, "features.conv1").kind, KernelKind::kInt8);
  ExpectSameOutput(b.compressed, b.rt, calibrate.calibration, "conv1");
}

TEST(RuntimeTest, TracedTorchvisionModel) {
  const std::string path = test_models::ExportTorchvisionModel("resnet18", /*trace=*/true);
  if (path.empty()) GTEST_SKIP() << "python3 with torch and torchvision is not available";
  std::shared_ptr<ImportedModel> model = Import("resnet18", path, {1, 3, 64, 64});
  ASSERT_NE(model, nullptr);
  const Policy policy = UniformPolicy(model->graph, LayerConfig{0.8, Pattern::kBlock, 8}, {"fc"});
  Built b = Build(*model, policy, Threads(2));
  EXPECT_GT(b.rt.CountNodes(kSparseConv2dOp), 10);
  EXPECT_EQ(b.rt.CountNodes("aten::batch_norm"), 0);
  ExpectSameOutput(b.compressed, b.rt, torch::randn({2, 3, 64, 64}), "resnet18");
}

TEST(RuntimeTest, Errors) {
  std::shared_ptr<ImportedModel> plain = Import("plain"), residual = Import("residual");
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(residual, nullptr);
  StatusOr<CompressedModel> c = Compress(*plain, Policy());
  ASSERT_TRUE(c.ok());
  StatusOr<RuntimeModel> wrong = CompileForRuntime(*residual, Policy(), *c);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInternal);
  EXPECT_EQ(CompileForRuntime(*plain, Policy(), *c, Threads(0)).status().code(), StatusCode::kInvalidArgument);
  Policy unknown;
  unknown.layers["nope"] = LayerConfig{0.5, Pattern::kUnstructured};
  EXPECT_EQ(CompileForRuntime(*plain, unknown, *c).status().code(), StatusCode::kNotFound);

  Policy sparse;
  sparse.layers["features.conv1"] = LayerConfig{0.5, Pattern::kBlock, 4};
  Built b = Build(*plain, sparse, AllSparse(1));
  StatusOr<torch::Tensor> bad = b.rt.Forward(torch::randn({1, 3, 20, 20}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected input"), std::string::npos) << bad.status().message();
}

// Dense convolutions run on oneDNN with prepacked weights, each as the kernel
// measurements time it (dense_ops.h), a relu after it fused, beside the acs_rt ops; the
// output stays the compressed model's at any batch size.
TEST(RuntimeTest, DenseConvolutionsRunPrepackedAsMeasured) {
  std::shared_ptr<ImportedModel> model = Import("residual");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["layer1.conv2"] = LayerConfig{0.9, Pattern::kBlock, 8};
  RuntimeOptions options = Threads(1);
  options.prepack_dense = true;
  Built b = Build(*model, policy, options);
  EXPECT_EQ(b.rt.CountNodes(kSparseConv2dOp), 1);
  int dense_convs = 0, fused = 0;
  for (const LayerKernel& k : b.rt.layers()) {
    if (k.op != "conv2d" || k.kind != KernelKind::kDense) continue;
    ++dense_convs;
    EXPECT_TRUE(k.prepacked) << k.name << ": " << k.why_dense;
    fused += k.activation == "relu";
  }
  EXPECT_GT(dense_convs, 1);
  EXPECT_GT(fused, 0);
  EXPECT_EQ(b.rt.CountNodes("mkldnn_prepacked::conv2d_run"), dense_convs);
  EXPECT_TRUE(b.rt.dense_optimized()) << b.rt.why_dense_not_optimized();
  EXPECT_EQ(b.rt.CountNodes("aten::conv2d") + b.rt.CountNodes("aten::_convolution"), 0);
  EXPECT_EQ(b.rt.CountNodes("prim::mkldnn_convolution"), 0);  // no whole-graph rewrite on top
  ExpectSameOutputAtBatches(b, policy, "prepacked", 3);
}

// Without prepack_dense, the layers left to LibTorch run as optimize_for_inference runs
// them when that is faster on this machine (which one is, timing says).
TEST(RuntimeTest, DenseLayersRunOptimizedForInferenceWhenFaster) {
  std::shared_ptr<ImportedModel> model = Import("residual");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["layer1.conv2"] = LayerConfig{0.9, Pattern::kBlock, 8};
  for (bool optimize : {true, false}) {
    RuntimeOptions options = Threads(1);
    options.prepack_dense = false;
    options.optimize_dense = optimize;
    Built b = Build(*model, policy, options);
    EXPECT_EQ(b.rt.CountNodes(kSparseConv2dOp), 1);
    EXPECT_EQ(b.rt.CountNodes("mkldnn_prepacked::conv2d_run"), 0);
    const bool mkldnn = b.rt.CountNodes("prim::mkldnn_convolution") > 0;
    EXPECT_EQ(mkldnn, b.rt.dense_optimized());
    EXPECT_EQ(b.rt.CountNodes("aten::conv2d") + b.rt.CountNodes("aten::_convolution") > 0, !mkldnn);
    if (!optimize) {
      EXPECT_FALSE(mkldnn);
    }
    if (!b.rt.dense_optimized()) {
      EXPECT_FALSE(b.rt.why_dense_not_optimized().empty());
    }
    ExpectSameOutputAtBatches(b, policy, optimize ? "optimized" : "plain", 3);
  }
  // The baseline too: optimized or not, the same function at any batch size.
  StatusOr<DenseModel> dense = DenseModel::Create(*model, 1);
  ASSERT_TRUE(dense.ok());
  EXPECT_EQ(dense->form() == DenseForm::kPlain, !dense->why_not_optimized().empty());
}

TEST(RuntimeTest, DenseModelRunsTheOriginalGraph) {
  std::shared_ptr<ImportedModel> model = Import("residual");
  ASSERT_NE(model, nullptr);
  const torch::Tensor x = torch::randn({2, 3, 16, 16});
  StatusOr<torch::Tensor> expect = RunGraph(model->frozen, model->module, x);
  ASSERT_TRUE(expect.ok());
  for (DenseForm form : {DenseForm::kPlain, DenseForm::kOptimized}) {
    StatusOr<DenseModel> dense = DenseModel::Create(*model, 2, form);
    ASSERT_TRUE(dense.ok()) << dense.status().ToString();
    for (int64_t batch : {2, 1}) {  // any batch size
      StatusOr<torch::Tensor> got = dense->Forward(x.narrow(0, 0, batch));
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(torch::allclose(*got, expect->narrow(0, 0, batch), 1e-4, 1e-5)) << DenseFormName(form);
    }
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_NE(RuntimeVersion().find("libtorch"), std::string::npos);
}

// Any config, sparsity from 0 (below every kernel's threshold too), any precision.
}  // namespace
}  // namespace acs::runtime
