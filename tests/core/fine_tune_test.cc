// Fine-tuning a compressed model: the loss falls, zeros stay zero, layers in other
// precisions keep their weights, the result saves and loads, bad input is refused.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>

#include "core/compressor.h"
#include "core/fine_tune.h"
#include "core/importer.h"
#include "core/torchscript_model.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

struct Fixture {
  std::shared_ptr<ImportedModel> model;
  Dataset data;  // labels: the dense model's own predictions, so that they can be learned
};

Fixture Make() {
  Fixture f;
  const std::string path = test_models::BuildTestModel("plain", 5);
  auto m = ImportTorchScript(path, {test_models::TestInputShape()});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  f.model = *m;
  torch::manual_seed(3);
  f.data.images = torch::rand({256, 3, 16, 16});
  torch::NoGradGuard no_grad;
  f.data.labels = f.model->module.forward({f.data.images}).toTensor().argmax(1);
  f.data.source = "dense predictions";
  return f;
}

// The weight tensors of the compressed model's weighted ops, copied.
std::vector<torch::Tensor> Weights(CompressedModel& c) {
  std::vector<torch::Tensor> out;
  auto graph = c.module.get_method("forward").graph();
  for (torch::jit::Node* n : WeightedNodes(*graph)) out.push_back(n->inputs()[1]->node()->t(c10::attr::value).clone());
  return out;
}

TEST(FineTuneTest, LowersTheLossAndKeepsZerosAndOtherPrecisions) {
  Fixture f = Make();
  Policy policy;
  LayerConfig block;
  block.pattern = Pattern::kBlock;
  block.block = 4;
  block.sparsity = 0.75;
  policy.layers["features.conv2"] = block;
  LayerConfig int8;
  int8.precision = Precision::kInt8;
  policy.layers["classifier.fc1"] = int8;
  CompressorOptions options;
  options.calibration = f.data.images.slice(0, 0, 64);
  auto compressed = Compress(*f.model, policy, options);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  const std::vector<torch::Tensor> before = Weights(*compressed);
  // Run it first, as the export does to measure the accuracy before fine-tuning: plans
  // the executor made then must not hide the trained weights.
  torch::Tensor probe = f.data.images.slice(0, 0, 8);
  torch::Tensor out_before;
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) out_before = compressed->module.forward({probe}).toTensor();
  }

  FineTuneOptions ft;
  ft.epochs = 3;
  ft.batch_size = 32;
  ft.learning_rate = 0.01;
  int64_t calls = 0;
  auto result = FineTune(*compressed, f.data, ft, [&](int64_t step, int64_t steps, double) {
    ++calls;
    EXPECT_LE(step, steps);
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->steps, 3 * 8);
  EXPECT_EQ(calls, result->steps);
  EXPECT_EQ(result->layers_kept, 1);  // classifier.fc1 in int8
  EXPECT_LT(result->last_loss, result->first_loss);

  const std::vector<torch::Tensor> after = Weights(*compressed);
  ASSERT_EQ(after.size(), before.size());
  bool changed = false;
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(torch::equal(after[i].masked_select(before[i] == 0), torch::zeros({(before[i] == 0).sum().item<int64_t>()})))
        << "layer " << i << " lost zeros";
    changed |= !torch::equal(after[i], before[i]);
  }
  EXPECT_TRUE(changed);
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(torch::allclose(compressed->module.forward({probe}).toTensor(), out_before));
  }
  const std::vector<std::string> names = {"features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"};
  ASSERT_EQ(compressed->weighted_configs.size(), names.size());
  EXPECT_TRUE(torch::equal(after[2], before[2])) << "the int8 layer changed";
  EXPECT_GE((after[1] == 0).sum().item<int64_t>(), after[1].numel() * 3 / 4);

  // The tuned weights are what is saved.
  const std::string path = (std::filesystem::temp_directory_path() / "acs_fine_tuned.pt").string();
  ASSERT_TRUE(compressed->Save(path).ok());
  torch::jit::Module loaded = torch::jit::load(path);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = f.data.images.slice(0, 0, 8);
  EXPECT_TRUE(torch::allclose(loaded.forward({x}).toTensor(), compressed->module.forward({x}).toTensor(), 1e-5, 1e-6));
  std::filesystem::remove(path);
}

TEST(FineTuneTest, RefusesBadInput) {
  Fixture f = Make();
  auto compressed = Compress(*f.model, Policy());
  ASSERT_TRUE(compressed.ok());
  Dataset unlabelled{f.data.images, {}, "unlabelled"};
  auto r = FineTune(*compressed, unlabelled, {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  FineTuneOptions zero;
  zero.epochs = 0;
  EXPECT_EQ(FineTune(*compressed, f.data, zero).status().code(), StatusCode::kInvalidArgument);
  // Data of another shape: the model fails to run; the weights are restored.
  const std::vector<torch::Tensor> before = Weights(*compressed);
  Dataset wrong{torch::rand({8, 2, 16, 16}), torch::zeros({8}, torch::kLong), "wrong"};
  EXPECT_EQ(FineTune(*compressed, wrong, {}).status().code(), StatusCode::kInternal);
  const std::vector<torch::Tensor> after = Weights(*compressed);
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i]));
}

}  // namespace
}  // namespace acs
