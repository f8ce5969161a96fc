// The exported model in Python; policies the compressor refuses; int8 layers as fake quantization.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/core/compressor_test_util.h"

namespace acs {
namespace {

using namespace compressor_test;  // NOLINT: the shared test helpers

// Loads each model file in Python PyTorch and prints its output on a fixed input.
const char* kRunInPython = R"(import sys
import torch
x = torch.linspace(-1, 1, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)
for path in sys.argv[1:]:
    m = torch.jit.load(path)
    with torch.no_grad():
        y = m(x)
    print(" ".join(repr(v) for v in y.flatten().tolist()))
)";

TEST(CompressorTest, ExportLoadsAndRunsInPython) {
  std::vector<std::string> paths;
  std::vector<torch::Tensor> expected;
  torch::Tensor input = torch::linspace(-1, 1, 2 * 3 * 16 * 16).reshape({2, 3, 16, 16});
  std::mt19937 rng(99);
  for (const std::string& name : test_models::TestModelNames()) {
    auto model = Import(BuildTestModel(name), TestInputShape());
    ASSERT_NE(model, nullptr);
    CompressorOptions options;
    options.calibration = Calibration(TestInputShape());
    StatusOr<CompressedModel> c = Compress(*model, RandomPolicy(model->graph, true, &rng), options);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    paths.push_back(test_models::TempPath("_" + name + ".pt"));
    ASSERT_TRUE(c->Save(paths.back()).ok());
    StatusOr<torch::Tensor> out = c->Forward(input);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    expected.push_back(out->flatten());
  }
  std::string output;
  if (!test_models::RunPython(kRunInPython, paths, &output)) {
    if (test_models::ExportTorchvisionModel("resnet18", false).empty()) GTEST_SKIP() << "no python with torch";
    FAIL() << "python could not load or run the exported models";
  }
  std::istringstream lines(output);
  for (size_t i = 0; i < paths.size(); ++i) {
    SCOPED_TRACE(test_models::TestModelNames()[i]);
    std::string line;
    ASSERT_TRUE(std::getline(lines, line));
    std::istringstream values(line);
    std::vector<float> got;
    for (double v; values >> v;) got.push_back(static_cast<float>(v));
    ASSERT_EQ(static_cast<int64_t>(got.size()), expected[i].numel());
    EXPECT_LE(MaxAbs(torch::tensor(got) - expected[i]), 1e-5 * MaxAbs(expected[i]) + 1e-6);
  }
}

// Compresses "grouped" with one layer's config and returns the status.
Status CompressWith(const std::string& layer, const LayerConfig& c, bool calibration = true) {
  auto model = Import(BuildTestModel("grouped"), TestInputShape());
  if (!model) return Status::Internal("import failed");
  Policy policy;
  policy.layers[layer] = c;
  CompressorOptions options;
  if (calibration) options.calibration = Calibration(TestInputShape());
  return Compress(*model, policy, options).status();
}

TEST(CompressorTest, InvalidPoliciesAreRejected) {
  LayerConfig unstructured;
  unstructured.pattern = Pattern::kUnstructured;
  unstructured.sparsity = 0.5;
  Status s = CompressWith("no_such_layer", unstructured);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("no_such_layer"));

  LayerConfig block = unstructured;
  block.pattern = Pattern::kBlock;
  block.block = 3;  // conv3 has 8 output channels
  s = CompressWith("conv3", block);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("conv3"));

  LayerConfig nm;
  nm.pattern = Pattern::kNM;
  nm.nm_n = 5;
  nm.nm_m = 4;
  s = CompressWith("conv3", nm);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();

  LayerConfig channel = unstructured;
  channel.pattern = Pattern::kChannel;
  s = CompressWith("conv1", channel);  // feeds the grouped conv
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("conv1"));
  s = CompressWith("fc", channel);  // the classifier output
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();

  LayerConfig too_sparse = unstructured;
  too_sparse.sparsity = 1.0;
  s = CompressWith("conv3", too_sparse);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();

  LayerConfig int8;
  int8.precision = Precision::kInt8;
  s = CompressWith("conv3", int8, /*calibration=*/false);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("calibration"));
  EXPECT_TRUE(CompressWith("conv3", int8, /*calibration=*/true).ok());
}

TEST(CompressorTest, ChannelPatternOnGroupedConvSaysWhy) {
  LayerConfig channel;
  channel.pattern = Pattern::kChannel;
  channel.sparsity = 0.5;
  Status s = CompressWith("gconv", channel);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  // The reason is the grouped conv, not a missing channel group.
  EXPECT_THAT(s.message(), HasSubstr("grouped conv")) << s.ToString();
}

TEST(CompressorTest, Int8LayersAreFakeQuantizedInTheExport) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  LayerConfig int8;
  int8.precision = Precision::kInt8;
  Policy policy;
  policy.layers["features.conv2"] = int8;
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape());
  StatusOr<CompressedModel> c = Compress(*model, policy, options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::shared_ptr<torch::jit::Graph> graph =
      torch::jit::toGraphFunction(c->module.get_method("forward").function()).graph();
  int fake_quant = 0;
  for (torch::jit::Node* node : graph->nodes()) {
    fake_quant += node->kind() == c10::Symbol::fromQualString("aten::fake_quantize_per_tensor_affine");
  }
  EXPECT_EQ(fake_quant, 1);
  // The stored weight is its int8 simulation.
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::Tensor w = Param(original, "features.conv2.weight");
  EXPECT_TRUE(torch::equal(StoredLayers(c->module).at(1).weight, SimulatePrecision(w, Precision::kInt8)));
}

}  // namespace
}  // namespace acs
