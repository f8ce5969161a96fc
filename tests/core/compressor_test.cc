#include "core/compressor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "core/importer.h"
#include "core/weight_transforms.h"
#include "tests/core/test_models.h"

#include "tests/core/compressor_test_util.h"

namespace acs {
namespace {

using namespace compressor_test;  // NOLINT: the shared test helpers

struct ModelCase {
  std::string name;  // a test model, or "tv:<torchvision name>:<script|trace>"
  int policies;
};

class RandomPolicyTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(RandomPolicyTest, ExportMatchesMaskedSimulationAndPolicy) {
  const ModelCase& c = GetParam();
  std::string path;
  Shape shape = TestInputShape();
  if (c.name.rfind("tv:", 0) == 0) {
    size_t colon = c.name.find(':', 3);
    path = test_models::ExportTorchvisionModel(c.name.substr(3, colon - 3), c.name.substr(colon + 1) == "trace");
    if (path.empty()) GTEST_SKIP() << "/usr/bin/python3 with torchvision is not available";
    shape = {1, 3, 64, 64};
  } else {
    path = BuildTestModel(c.name);
  }
  auto model = Import(path, shape);
  ASSERT_NE(model, nullptr);
  torch::jit::Module original = torch::jit::load(path);
  original.eval();
  Shape input_shape = shape;
  input_shape[0] = 2;
  torch::Tensor input = Rand(input_shape, 11);
  torch::Tensor dense_out = original.forward({input}).toTensor();
  // The empty policy without calibration data reproduces the model (within 1e-5).
  StatusOr<CompressedModel> same = Compress(*model, Policy());
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  StatusOr<torch::Tensor> same_out = same->Forward(input);
  ASSERT_TRUE(same_out.ok()) << same_out.status().ToString();
  EXPECT_LE(MaxAbs(*same_out - dense_out), 1e-5 * MaxAbs(dense_out) + 1e-6);
  EXPECT_EQ(same->params_after, same->params_before);
  EXPECT_EQ(same->params_before, model->graph.TotalParams());

  torch::Tensor calibration = Calibration(shape);
  std::mt19937 rng(1234);
  for (int i = 0; i < c.policies; ++i) {
    Policy policy = RandomPolicy(model->graph, /*allow_int8=*/i % 2 == 1, &rng);
    SCOPED_TRACE("policy " + std::to_string(i) + ": " + policy.ToJson(-1));
    CheckPolicy(*model, policy, calibration, input, dense_out);
    if (HasFailure()) break;
  }
}

std::string CaseName(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string name = info.param.name;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(TestModels, RandomPolicyTest,
                         ::testing::Values(ModelCase{"plain", 15}, ModelCase{"residual", 15},
                                           ModelCase{"concat", 15}, ModelCase{"depthwise", 15},
                                           ModelCase{"grouped", 15}, ModelCase{"se", 15},
                                           ModelCase{"channel_constants", 15}, ModelCase{"unknown_ops", 15},
                                           ModelCase{"shared_weights", 10}),
                         CaseName);
INSTANTIATE_TEST_SUITE_P(Torchvision, RandomPolicyTest,
                         ::testing::Values(ModelCase{"tv:resnet18:script", 3},
                                           ModelCase{"tv:mobilenet_v3_small:trace", 3}),
                         CaseName);

TEST(CompressorTest, CompressingLeavesTheImportedModelUnchangedAndIsDeterministic) {
  auto model = Import(BuildTestModel("residual"), TestInputShape());
  ASSERT_NE(model, nullptr);
  torch::Tensor input = Rand({2, 3, 16, 16}, 3);
  StatusOr<torch::Tensor> before = RunGraph(model->frozen, model->module, input);
  ASSERT_TRUE(before.ok());
  std::mt19937 rng(5);
  Policy policy = RandomPolicy(model->graph, /*allow_int8=*/true, &rng);
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape());
  StatusOr<CompressedModel> a = Compress(*model, policy, options);
  StatusOr<CompressedModel> b = Compress(*model, policy, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(torch::equal(*a->Forward(input), *b->Forward(input)));
  EXPECT_EQ(a->policy_hash, policy.Hash());
  StatusOr<torch::Tensor> after = RunGraph(model->frozen, model->module, input);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(torch::equal(*before, *after));
}

TEST(CompressorTest, DefaultConfigAppliesToEveryTakingLayer) {
  auto model = Import(BuildTestModel("residual"), TestInputShape());
  ASSERT_NE(model, nullptr);
  const Graph& g = model->graph;
  LayerConfig channel;
  channel.pattern = Pattern::kChannel;
  channel.sparsity = 0.5;
  Policy policy;
  policy.default_config = channel;
  StatusOr<CompressedModel> c = Compress(*model, policy);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  CheckStoredWeights(g, ResolvePolicy(policy, g), *c, StoredLayers(c->module));
  int channel_layers = 0, prunable = 0;
  for (const LayerResult& r : c->layers) channel_layers += r.config.pattern == Pattern::kChannel;
  for (const Layer& l : g.layers) prunable += l.out_group >= 0 && g.groups[l.out_group].prunable;
  EXPECT_EQ(channel_layers, prunable);
  EXPECT_EQ(StoredLayers(c->module).back().weight.size(0), 10);  // the classifier keeps its outputs
}

TEST(CompressorTest, BatchNormIsRecalibratedOnTheCalibrationData) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  torch::Tensor calibration = Calibration(TestInputShape());
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::Tensor w0 = Param(original, "features.conv1.weight");
  for (double sparsity : {0.0, 0.5}) {
    SCOPED_TRACE(sparsity);
    Policy policy;
    if (sparsity > 0) {
      LayerConfig c;
      c.pattern = Pattern::kChannel;
      c.sparsity = sparsity;
      policy.layers["features.conv1"] = c;
    }
    CompressorOptions options;
    options.calibration = calibration;
    StatusOr<CompressedModel> compressed = Compress(*model, policy, options);
    ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
    std::string path = test_models::TempPath(".pt");
    ASSERT_TRUE(compressed->Save(path).ok());
    torch::jit::Module reloaded = torch::jit::load(path);
    StoredLayer conv1 = StoredLayers(reloaded).at(0);
    ASSERT_EQ(conv1.weight.size(0), sparsity > 0 ? 4 : 8);
    // The kept channels, found by matching the stored rows with the original ones.
    std::vector<int64_t> kept;
    for (int64_t r = 0; r < conv1.weight.size(0); ++r) {
      for (int64_t o = 0; o < w0.size(0); ++o) {
        if (torch::equal(conv1.weight[r], w0[o])) kept.push_back(o);
      }
    }
    ASSERT_EQ(static_cast<int64_t>(kept.size()), conv1.weight.size(0));
    torch::Tensor index = torch::tensor(kept);
    // Mean and unbiased variance (as batch_norm in training mode records) of the stored
    // conv's output over the calibration samples and positions.
    CheckFirstBatchNorm(reloaded, model->graph, calibration);
    torch::jit::Node* bn = FirstBatchNorm(reloaded);
    ASSERT_NE(bn, nullptr);
    // Affine parameters are the original ones of the kept channels.
    EXPECT_TRUE(torch::equal(Input(bn, 1), Param(original, "features.bn1.weight").index_select(0, index)));
    EXPECT_TRUE(torch::equal(Input(bn, 2), Param(original, "features.bn1.bias").index_select(0, index)));
    std::remove(path.c_str());
  }
}

TEST(CompressorTest, BatchNormStatisticsAverageCalibrationChunks) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape()).narrow(0, 0, 11);
  options.calibration_batch = 5;  // chunks of 5, 5 and 1; the single sample joins the last
  StatusOr<CompressedModel> compressed = Compress(*model, Policy(), options);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::Tensor y = torch::conv2d(options.calibration, Param(original, "features.conv1.weight"),
                                  Param(original, "features.conv1.bias"), 1, 1);
  // Per-chunk statistics weighted by chunk size: chunks [0, 5) and [5, 11).
  torch::Tensor a = y.narrow(0, 0, 5), b = y.narrow(0, 5, 6);
  torch::Tensor mean = (a.mean({0, 2, 3}) * 5 + b.mean({0, 2, 3}) * 6) / 11;
  torch::Tensor var = (a.var({0, 2, 3}, true) * 5 + b.var({0, 2, 3}, true) * 6) / 11;
  torch::jit::Node* bn = FirstBatchNorm(compressed->module);
  ASSERT_NE(bn, nullptr);
  EXPECT_TRUE(torch::allclose(Input(bn, 3), mean, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(Input(bn, 3), y.mean({0, 2, 3}), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(Input(bn, 4), var, 1e-4, 1e-5));
}

TEST(CompressorTest, CalibrationDataIsCheckedAndRecalibrationOptional) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  CompressorOptions options;
  options.calibration = torch::rand({4, 3, 8, 8});  // wrong sample shape
  EXPECT_EQ(Compress(*model, Policy(), options).status().code(), StatusCode::kInvalidArgument);
  options.calibration = Calibration(TestInputShape()).narrow(0, 0, 1);  // batch norm needs 2
  EXPECT_EQ(Compress(*model, Policy(), options).status().code(), StatusCode::kInvalidArgument);
  options.recalibrate_batch_norm = false;  // then the statistics stay
  StatusOr<CompressedModel> compressed = Compress(*model, Policy(), options);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::jit::Node* bn = FirstBatchNorm(compressed->module);
  ASSERT_NE(bn, nullptr);
  EXPECT_TRUE(torch::equal(Input(bn, 3), Param(original, "features.bn1.running_mean")));
  EXPECT_TRUE(torch::equal(Input(bn, 4), Param(original, "features.bn1.running_var")));
}

}  // namespace
}  // namespace acs
