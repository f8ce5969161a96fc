// The export of int8 layers as PyTorch's quantized ops, against the fake-quant simulation.
#include "core/quantized_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/function_impl.h>

#include <filesystem>

#include "tests/core/compressor_test_util.h"

namespace acs {
namespace {

using compressor_test::BuildTestModel;
using compressor_test::Calibration;
using compressor_test::Import;
using compressor_test::TestInputShape;
using ::testing::HasSubstr;

LayerConfig Int8() {
  LayerConfig c;
  c.precision = Precision::kInt8;
  return c;
}

// `model` compressed with `int8_layers` at int8 (every compressible layer when empty).
CompressedModel Simulated(const std::string& model, std::vector<std::string> int8_layers = {}) {
  std::shared_ptr<ImportedModel> imported = Import(BuildTestModel(model), TestInputShape());
  EXPECT_NE(imported, nullptr);
  if (int8_layers.empty()) {
    for (const Layer& l : imported->graph.layers) {
      if (l.compressible) int8_layers.push_back(l.name);
    }
  }
  Policy policy;
  for (const std::string& name : int8_layers) policy.layers[name] = Int8();
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape());
  StatusOr<CompressedModel> c = Compress(*imported, policy, options);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

QuantizedExport Export(const CompressedModel& simulated, bool drop_uneconomic_regions = false) {
  QuantizedExportOptions options;
  options.calibration = Calibration(TestInputShape());
  options.drop_uneconomic_regions = drop_uneconomic_regions;
  StatusOr<QuantizedExport> e = ExportQuantizedOps(simulated.module, options);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? *e : QuantizedExport{};
}

torch::Tensor Forward(torch::jit::Module module, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return module.forward({x}).toTensor();
}

int Count(const torch::jit::Module& module, const char* kind) {
  int n = 0;
  for (torch::jit::Node* node : module.get_method("forward").graph()->nodes()) {
    n += node->kind() == c10::Symbol::fromQualString(kind);
  }
  return n;
}

TEST(QuantizedExportTest, EveryTestModelRunsItsInt8LayersAsQuantizedOps) {
  const torch::Tensor x = Calibration(TestInputShape(), /*seed=*/11);
  for (const std::string& name : test_models::TestModelNames()) {
    SCOPED_TRACE(name);
    CompressedModel simulated = Simulated(name);
    QuantizedExport e = Export(simulated);
    EXPECT_GT(e.quantized_layers, 0);
    EXPECT_EQ(Count(e.module, "aten::fake_quantize_per_tensor_affine"), e.simulated_layers);
    EXPECT_EQ(Count(e.module, "quantized::conv2d") + Count(e.module, "quantized::conv2d_relu") +
                  Count(e.module, "quantized::linear") + Count(e.module, "quantized::linear_relu"),
              e.quantized_layers);
    // Every region starts with a quantize and ends with a dequantize.
    EXPECT_GE(e.quantize_nodes, 1);
    EXPECT_GE(e.dequantize_nodes, 1);
    // The export rounds a few values the simulation keeps in fp32 (calibrated_outputs):
    // within a tenth of the output's scale; a wrongly folded batch norm or a lost
    // zero point moves it by the whole scale.
    torch::Tensor want = Forward(simulated.module, x), got = Forward(e.module, x);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE((got - want).abs().max().item<double>(), 0.1 * want.abs().max().item<double>())
        << QuantizedExportSummary(e);
  }
}

TEST(QuantizedExportTest, AChainOfInt8LayersIsTheSimulationUpToTheLastRounding) {
  // fc1 -> relu -> fc2: fc1's output is quantized with fc2's input quantization, as the
  // simulation rounds it; only fc2's output is rounded to a calibrated range in addition.
  CompressedModel simulated = Simulated("plain", {"classifier.fc1", "classifier.fc2"});
  QuantizedExport e = Export(simulated);
  EXPECT_EQ(e.quantized_layers, 2);
  EXPECT_EQ(e.calibrated_outputs, 1);
  EXPECT_EQ(e.quantize_nodes, 1);
  EXPECT_EQ(e.dequantize_nodes, 1);
  EXPECT_EQ(Count(e.module, "quantized::linear_relu"), 1);
  const torch::Tensor calibration = Calibration(TestInputShape());
  torch::Tensor want = Forward(simulated.module, calibration), got = Forward(e.module, calibration);
  // The output range on the calibration data, with zero, as ActivationQuantFromRange takes it.
  const double lo = std::min(0.0, want.min().item<double>()), hi = std::max(0.0, want.max().item<double>());
  const double step = (hi - lo) / 255;
  EXPECT_LE((got - want).abs().max().item<double>(), step / 2 + 1e-4 * (hi - lo));
}

TEST(QuantizedExportTest, BatchNormIsFoldedAndReluFused) {
  CompressedModel simulated = Simulated("plain", {"features.conv1", "features.conv2"});
  QuantizedExport e = Export(simulated);
  EXPECT_EQ(e.quantized_layers, 2);
  EXPECT_EQ(Count(e.module, "quantized::conv2d_relu"), 2);
  EXPECT_EQ(Count(simulated.module, "aten::batch_norm"), 2);
  EXPECT_EQ(Count(e.module, "aten::batch_norm"), 0);
  EXPECT_EQ(Count(e.module, "aten::relu"), Count(simulated.module, "aten::relu") - 2);
  // conv1 -> bn1 -> relu -> max pool -> conv2: one region, pooled in int8.
  EXPECT_EQ(e.quantize_nodes, 1);
}

TEST(QuantizedExportTest, AViewOfAQuantizedOutputBecomesAReshape) {
  // quantized convs return channels-last tensors, which view refuses: int8 (conv2 -> view
  // -> fc1) and fp32 (conv2 -> dequantize -> view -> fp32 fc1) readers get a reshape.
  const torch::Tensor x = Calibration(TestInputShape(), /*seed=*/13);
  for (const std::vector<std::string>& int8 : {std::vector<std::string>{"features.conv2", "classifier.fc1"},
                                               std::vector<std::string>{"features.conv2"}}) {
    CompressedModel simulated = Simulated("plain_view", int8);
    QuantizedExport e = Export(simulated);
    EXPECT_EQ(e.quantized_layers, static_cast<int>(int8.size()));
    EXPECT_EQ(Count(e.module, "aten::view"), 0);
    torch::Tensor want = Forward(simulated.module, x), got = Forward(e.module, x);
    EXPECT_LE((got - want).abs().max().item<double>(), 0.1 * want.abs().max().item<double>());
  }
}

TEST(QuantizedExportTest, ResidualAddsOfInt8ValuesStayInt8) {
  QuantizedExport e = Export(Simulated("residual"));
  EXPECT_GT(e.quantized_adds, 0);
  EXPECT_EQ(e.quantized_adds, Count(e.module, "quantized::add") + Count(e.module, "quantized::add_relu"));
}

TEST(QuantizedExportTest, SavedFileLoadsAndComputesTheSame) {
  CompressedModel model = Simulated("residual");
  QuantizedExport e = Export(model);
  model.module = e.module;
  const std::string path = (std::filesystem::temp_directory_path() / "acs_quantized_export_test.pt").string();
  ASSERT_TRUE(model.Save(path).ok());
  torch::jit::Module loaded = torch::jit::load(path);
  std::filesystem::remove(path);
  const torch::Tensor x = Calibration(TestInputShape(), /*seed=*/3);
  EXPECT_TRUE(torch::equal(Forward(loaded, x), Forward(e.module, x)));
  EXPECT_EQ(Count(loaded, "quantized::add_relu") + Count(loaded, "quantized::add"), e.quantized_adds);
}

TEST(QuantizedExportTest, RegionsNotWorthTheirBordersRunInFp32) {
  // One small 1x1 layer between fp32 layers: quantizing its input and dequantizing its
  // output cost more than int8 saves on it.
  CompressedModel simulated = Simulated("grouped", {"conv3"});
  QuantizedExport kept = Export(simulated, /*drop_uneconomic_regions=*/false);
  EXPECT_EQ(kept.quantized_layers, 1);
  QuantizedExport dropped = Export(simulated, /*drop_uneconomic_regions=*/true);
  EXPECT_EQ(dropped.quantized_layers, 0);
  EXPECT_EQ(dropped.fp32_layers, 1);
  EXPECT_EQ(dropped.quantize_nodes + dropped.dequantize_nodes, 0);
  EXPECT_EQ(Count(dropped.module, "aten::fake_quantize_per_tensor_affine"), 0);
  EXPECT_THAT(QuantizedExportSummary(dropped), HasSubstr("1 int8 layers run in fp32"));
  // Its weights stay on the int8 grid; its input is no longer rounded.
  const torch::Tensor x = Calibration(TestInputShape(), /*seed=*/5);
  torch::Tensor want = Forward(simulated.module, x), got = Forward(dropped.module, x);
  EXPECT_LE((got - want).abs().max().item<double>(), 0.1 * want.abs().max().item<double>());
}

TEST(QuantizedExportTest, WithoutInt8LayersTheModelIsUnchanged) {
  CompressedModel simulated = Simulated("plain", {});
  Policy none;
  std::shared_ptr<ImportedModel> imported = Import(BuildTestModel("plain"), TestInputShape());
  StatusOr<CompressedModel> fp32 = Compress(*imported, none);
  ASSERT_TRUE(fp32.ok());
  StatusOr<QuantizedExport> e = ExportQuantizedOps(fp32->module);  // no calibration needed
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->quantized_layers + e->fp32_layers + e->simulated_layers, 0);
  const torch::Tensor x = Calibration(TestInputShape(), /*seed=*/5);
  EXPECT_TRUE(torch::equal(Forward(e->module, x), Forward(fp32->module, x)));
}

TEST(QuantizedExportTest, Int8LayersNeedCalibrationData) {
  CompressedModel simulated = Simulated("plain", {"features.conv2"});
  StatusOr<QuantizedExport> e = ExportQuantizedOps(simulated.module);
  EXPECT_EQ(e.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(e.status().message(), HasSubstr("calibration data"));
}

}  // namespace
}  // namespace acs
