#include "core/evaluator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace acs {
namespace {

constexpr int64_t kClasses = 7;

// Sample i holds, as a [1, 1, 7] image, logits that rank class (i + r) % 7 at place r + 1.
// Its label sits at place rank[i] + 1, so top-1 hits where rank is 0 and top-5 where rank <= 4.
Dataset RankedData(const std::vector<int64_t>& rank) {
  const int64_t n = static_cast<int64_t>(rank.size());
  torch::Tensor images = torch::empty({n, 1, 1, kClasses});
  torch::Tensor labels = torch::empty({n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < kClasses; ++c)
      images[i][0][0][c] = -static_cast<float>((c - i + 7 * kClasses) % kClasses);
    labels[i] = (i + rank[i]) % kClasses;
  }
  Dataset data;
  data.images = images;
  data.labels = labels;
  data.source = "ranked";
  return data;
}

// A fixed linear map: logits = 2 * flattened input, so the ranking is the input's.
torch::Tensor Linear(const torch::Tensor& batch) { return batch.flatten(1).matmul(2 * torch::eye(kClasses)); }

const std::vector<int64_t> kRanks = {0, 0, 0, 1, 2, 4, 5, 6, 3, 0};  // top-1 4/10, top-5 8/10

TEST(EvaluatorTest, TopOneAndTopFiveOfALinearModel) {
  EvalOptions options;
  options.batch_size = 3;  // batches of 3, 3, 3, 1
  StatusOr<Accuracy> acc = EvaluateAccuracy(Linear, RankedData(kRanks), options);
  ASSERT_TRUE(acc.ok()) << acc.status().ToString();
  EXPECT_EQ(acc->samples, 10);
  EXPECT_DOUBLE_EQ(acc->top1, 0.4);
  EXPECT_DOUBLE_EQ(acc->top5, 0.8);

  options.limit = 5;
  acc = EvaluateAccuracy(Linear, RankedData(kRanks), options);
  ASSERT_TRUE(acc.ok()) << acc.status().ToString();
  EXPECT_EQ(acc->samples, 5);
  EXPECT_DOUBLE_EQ(acc->top1, 0.6);
  EXPECT_DOUBLE_EQ(acc->top5, 1.0);
}

TEST(EvaluatorTest, TopFiveClampsToClassCount) {
  Dataset data;
  data.images = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}).view({2, 1, 1, 3});
  data.labels = torch::tensor({0, 1}, torch::kLong);
  auto identity = [](const torch::Tensor& b) { return b.flatten(1); };
  StatusOr<Accuracy> acc = EvaluateAccuracy(identity, data);
  ASSERT_TRUE(acc.ok()) << acc.status().ToString();
  EXPECT_DOUBLE_EQ(acc->top1, 0.5);
  EXPECT_DOUBLE_EQ(acc->top5, 1.0);
}

TEST(EvaluatorTest, AccuracyNeedsFittingLabels) {
  Dataset data = RankedData(kRanks);
  data.labels[4] = kClasses;
  EXPECT_EQ(EvaluateAccuracy(Linear, data).status().code(), StatusCode::kInvalidArgument);
  data.labels = torch::Tensor();
  EXPECT_EQ(EvaluateAccuracy(Linear, data).status().code(), StatusCode::kFailedPrecondition);
  EvalOptions options;
  options.batch_size = 0;
  EXPECT_EQ(EvaluateAccuracy(Linear, RankedData(kRanks), options).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EvaluatorTest, FidelityOfAModelWithItselfIsPerfect) {
  Dataset data = RankedData(kRanks);
  data.images = data.images + torch::randn(data.images.sizes());
  data.labels = torch::Tensor();  // fidelity needs no labels
  EvalOptions options;
  options.batch_size = 4;
  StatusOr<Fidelity> fid = EvaluateFidelity(Linear, Linear, data, options);
  ASSERT_TRUE(fid.ok()) << fid.status().ToString();
  EXPECT_EQ(fid->samples, 10);
  EXPECT_DOUBLE_EQ(fid->top1_agreement, 1.0);
  EXPECT_NEAR(fid->mean_kl, 0.0, 1e-12);
}

TEST(EvaluatorTest, FidelityAgainstADifferentModel) {
  Dataset data = RankedData(kRanks);
  // Halving the logits keeps every argmax but flattens the softmax.
  auto half = [](const torch::Tensor& b) { return Linear(b) / 2; };
  // Reversing class order changes every argmax.
  auto reversed = [](const torch::Tensor& b) { return Linear(b).flip({1}); };
  StatusOr<Fidelity> fid = EvaluateFidelity(Linear, half, data);
  ASSERT_TRUE(fid.ok()) << fid.status().ToString();
  EXPECT_DOUBLE_EQ(fid->top1_agreement, 1.0);
  const torch::Tensor p = torch::log_softmax(Linear(data.images).to(torch::kDouble), 1);
  const torch::Tensor q = torch::log_softmax(half(data.images).to(torch::kDouble), 1);
  const double expected = (p.exp() * (p - q)).sum(1).mean().item<double>();
  EXPECT_GT(expected, 0.1);
  EXPECT_NEAR(fid->mean_kl, expected, 1e-9);

  fid = EvaluateFidelity(Linear, reversed, data);
  ASSERT_TRUE(fid.ok()) << fid.status().ToString();
  EXPECT_LT(fid->top1_agreement, 0.5);
  EXPECT_GT(fid->mean_kl, 1.0);
}

TEST(EvaluatorTest, ModelErrorsBecomeStatus) {
  const Dataset data = RankedData(kRanks);
  auto torch_error = [](const torch::Tensor& b) -> torch::Tensor {
    TORCH_CHECK(false, "shape boom");
    return b;
  };
  StatusOr<Accuracy> acc = EvaluateAccuracy(torch_error, data);
  ASSERT_FALSE(acc.ok());
  EXPECT_EQ(acc.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(acc.status().message().find("shape boom"), std::string::npos) << acc.status().ToString();

  auto std_error = [](const torch::Tensor& b) -> torch::Tensor { throw std::runtime_error("plain boom"); };
  StatusOr<Fidelity> fid = EvaluateFidelity(Linear, std_error, data);
  ASSERT_FALSE(fid.ok());
  EXPECT_EQ(fid.status().code(), StatusCode::kInternal);
  EXPECT_NE(fid.status().message().find("plain boom"), std::string::npos) << fid.status().ToString();
}

TEST(EvaluatorTest, RejectsMisshapenOutputs) {
  const Dataset data = RankedData(kRanks);
  auto rank4 = [](const torch::Tensor& b) { return b; };
  EXPECT_EQ(EvaluateAccuracy(rank4, data).status().code(), StatusCode::kInvalidArgument);
  auto one_row = [](const torch::Tensor& b) { return Linear(b).narrow(0, 0, 1); };
  EXPECT_EQ(EvaluateAccuracy(one_row, data).status().code(), StatusCode::kInvalidArgument);
  auto fewer_classes = [](const torch::Tensor& b) { return Linear(b).narrow(1, 0, 3); };
  EXPECT_EQ(EvaluateFidelity(Linear, fewer_classes, data).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs
