// Fine-tuning a compressed model: the loss falls, zeros stay zero, layers in other
// precisions keep their weights, the result saves and loads, bad input is refused.
#include "core/fine_tune.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <algorithm>
#include <filesystem>

#include "core/compressor.h"
#include "core/importer.h"
#include "core/torchscript_model.h"
#include "tests/core/fine_tune_test_util.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

using fine_tune_test::CompressedInBlocks;
using fine_tune_test::Fixture;
using fine_tune_test::Make;
using fine_tune_test::Top1;
using fine_tune_test::Weights;

// Whether every row of `w` is a multiple of its own max|w| / 127 (up to float rounding).
bool OnInt8Grid(const torch::Tensor& w) {
  const torch::Tensor rows = w.reshape({w.size(0), -1});
  torch::Tensor scale = rows.abs().amax(1, /*keepdim=*/true) / 127;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  const torch::Tensor q = rows / scale;
  return (q - q.round()).abs().max().item<double>() < 1e-3;
}

TEST(FineTuneTest, LowersTheLossKeepsZerosAndTrainsInt8OnItsGrid) {
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
  EXPECT_EQ(result->layers_int8, 1);  // classifier.fc1, quantization-aware
  EXPECT_EQ(result->layers_kept, 0);
  EXPECT_LT(result->last_loss, result->first_loss);
  EXPECT_EQ(result->kept_epoch, 3);  // no validator: the last epoch's weights

  const std::vector<torch::Tensor> after = Weights(*compressed);
  ASSERT_EQ(after.size(), before.size());
  bool changed = false;
  for (size_t i = 0; i < after.size(); ++i) {
    changed |= !torch::equal(after[i], before[i]);
    if (i == 2) continue;  // the dense int8 layer: its zeros are rounding, not pruning
    EXPECT_TRUE(
        torch::equal(after[i].masked_select(before[i] == 0), torch::zeros({(before[i] == 0).sum().item<int64_t>()})))
        << "layer " << i << " lost zeros";
  }
  EXPECT_TRUE(changed);
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(torch::allclose(compressed->module.forward({probe}).toTensor(), out_before));
  }
  const std::vector<std::string> names = {"features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"};
  ASSERT_EQ(compressed->weighted_configs.size(), names.size());
  // The int8 layer trained too, and ends on its per-channel int8 grid.
  EXPECT_FALSE(torch::equal(after[2], before[2]));
  EXPECT_TRUE(OnInt8Grid(after[2]));
  EXPECT_EQ(test_models::FirstNodeOfKind(compressed->module, "aten::fake_quantize_per_channel_affine"), nullptr);
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

TEST(FineTuneTest, DivergingRecoveryLeavesTheModelNoWorse) {
  Fixture f = Make();
  auto compressed = CompressedInBlocks(f, 0.5);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  Dataset held_out{f.data.images.slice(0, 192), f.data.labels.slice(0, 192), "held out"};
  Dataset train{f.data.images.slice(0, 0, 192), f.data.labels.slice(0, 0, 192), "train"};
  const std::vector<torch::Tensor> before = Weights(*compressed);
  const double score_before = Top1(*compressed, held_out);

  FineTuneOptions far_too_high;
  far_too_high.epochs = 3;
  far_too_high.batch_size = 32;
  far_too_high.learning_rate = 1e4;
  auto r = FineTune(*compressed, train, far_too_high, nullptr,
                    [&](CompressedModel& c) -> StatusOr<double> { return Top1(c, held_out); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(r->score_before, score_before);
  // The learning rate did harm: a loss that was not finite, or an epoch that scored lower.
  const double worst =
      r->epoch_scores.empty() ? 1.0 : *std::min_element(r->epoch_scores.begin(), r->epoch_scores.end());
  EXPECT_TRUE(r->diverged_at_step >= 0 || worst < score_before)
      << "diverged at " << r->diverged_at_step << ", worst epoch " << worst << " vs " << score_before;
  EXPECT_GE(r->kept_score(), score_before);
  EXPECT_GE(Top1(*compressed, held_out), score_before);
  if (r->kept_epoch == 0) {
    const std::vector<torch::Tensor> after = Weights(*compressed);
    for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i])) << "layer " << i;
  }
}

TEST(FineTuneTest, KeepsTheEpochThatScoresBest) {
  Fixture f = Make();
  auto compressed = CompressedInBlocks(f, 0.75);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  FineTuneOptions ft;
  ft.epochs = 4;
  ft.batch_size = 32;
  ft.learning_rate = 0.01;
  // A validator that prefers the second epoch, whatever the weights: its weights are kept.
  int calls = 0;
  std::vector<torch::Tensor> second;
  auto r = FineTune(*compressed, f.data, ft, nullptr, [&](CompressedModel& c) -> StatusOr<double> {
    if (calls == 2) second = Weights(c);
    return std::vector<double>{0.1, 0.5, 0.9, 0.2, 0.3}.at(calls++);
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(r->kept_epoch, 2);
  EXPECT_DOUBLE_EQ(r->kept_score(), 0.9);
  const std::vector<torch::Tensor> after = Weights(*compressed);
  ASSERT_EQ(after.size(), second.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], second[i])) << "layer " << i;
  // A validator's error (here after the first epoch) ends fine-tuning, the weights restored.
  const std::vector<torch::Tensor> kept = Weights(*compressed);
  int failing_calls = 0;
  auto failed = FineTune(*compressed, f.data, ft, nullptr, [&](CompressedModel&) -> StatusOr<double> {
    if (failing_calls++ == 0) return 0.5;
    return Status::Internal("validation data unreadable");
  });
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  const std::vector<torch::Tensor> restored = Weights(*compressed);
  for (size_t i = 0; i < restored.size(); ++i) EXPECT_TRUE(torch::equal(restored[i], kept[i])) << "layer " << i;
}

// Distillation alone needs no labels: the compressed model moves toward the dense one
// (the fixture's labels are the dense model's predictions, used here only to score).
TEST(FineTuneTest, DistillsFromTheDenseModelWithoutLabels) {
  Fixture f = Make();
  auto compressed = CompressedInBlocks(f, 0.75);
  auto dense = Compress(*f.model, Policy());
  ASSERT_TRUE(compressed.ok() && dense.ok());
  const double agreement_before = Top1(*compressed, f.data);
  const std::vector<torch::Tensor> before = Weights(*compressed);
  FineTuneOptions ft;
  ft.epochs = 5;
  ft.batch_size = 32;
  ft.learning_rate = 0.05;
  ft.distill_weight = 1;
  ft.teacher = [&](const torch::Tensor& batch) { return dense->module.forward({batch}).toTensor(); };
  Dataset unlabelled{f.data.images, {}, "unlabelled"};
  const torch::Tensor probe = f.data.images.slice(0, 0, 8);
  const torch::Tensor dense_before = dense->module.forward({probe}).toTensor();
  auto r = FineTune(*compressed, unlabelled, ft);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The dense model (whose unpruned layers the compressed one was made from) is untouched.
  EXPECT_TRUE(torch::equal(dense->module.forward({probe}).toTensor(), dense_before));
  EXPECT_LT(r->last_loss, r->first_loss);
  EXPECT_GT(Top1(*compressed, f.data), agreement_before);
  const std::vector<torch::Tensor> after = Weights(*compressed);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {  // every pruned weight stays zero
    EXPECT_EQ((before[i] == 0).logical_and(after[i] != 0).sum().item<int64_t>(), 0) << "layer " << i;
  }

  // Mixed with cross-entropy it needs labels; a teacher of other logits is refused.
  ft.distill_weight = 0.5;
  EXPECT_EQ(FineTune(*compressed, unlabelled, ft).status().code(), StatusCode::kInvalidArgument);
  ft.teacher = [](const torch::Tensor& batch) { return torch::zeros({batch.size(0), 3}); };
  auto other = FineTune(*compressed, f.data, ft);
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("the teacher's logits are [256x3]"), std::string::npos)
      << other.status().message();
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

TEST(FineTuneTest, AllInt8ModelTrainsQuantizationAwareAndStaysOnTheGrid) {
  Fixture f = Make();
  Policy policy;
  policy.default_config = LayerConfig{};
  policy.default_config->precision = Precision::kInt8;
  CompressorOptions options;
  options.calibration = f.data.images.slice(0, 0, 64);
  auto compressed = Compress(*f.model, policy, options);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  const std::vector<torch::Tensor> before = Weights(*compressed);
  FineTuneOptions ft;
  ft.epochs = 2;
  ft.batch_size = 32;
  ft.learning_rate = 0.01;
  ft.int8_aware = false;  // nothing left to train
  EXPECT_EQ(FineTune(*compressed, f.data, ft).status().code(), StatusCode::kFailedPrecondition);
  ft.int8_aware = true;
  auto result = FineTune(*compressed, f.data, ft, nullptr, [&](CompressedModel& c) { return Top1(c, f.data); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->layers_int8, 4);
  EXPECT_GE(result->kept_score(), result->score_before);
  // The weights kept are those scored (up to the rounding of ties on the grid).
  EXPECT_NEAR(Top1(*compressed, f.data), result->kept_score(), 2.0 / 256);
  const std::vector<torch::Tensor> after = Weights(*compressed);
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(OnInt8Grid(after[i])) << "layer " << i;
  if (result->kept_epoch > 0) {
    bool changed = false;
    for (size_t i = 0; i < after.size(); ++i) changed |= !torch::equal(after[i], before[i]);
    EXPECT_TRUE(changed);
  }
}

}  // namespace
}  // namespace acs
