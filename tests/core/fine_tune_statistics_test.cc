// Fine-tuning's statistics: batch norms and int8 activation ranges re-estimated for the
// weights kept, and the gradient norm bound.
#include <gtest/gtest.h>
#include <torch/script.h>

#include "core/calibration.h"
#include "core/fine_tune.h"
#include "core/weight_transforms.h"
#include "tests/core/fine_tune_test_util.h"

namespace acs {
namespace {

using fine_tune_test::CompressedInBlocks;
using fine_tune_test::Fixture;
using fine_tune_test::Make;
using fine_tune_test::Weights;

bool IsKind(torch::jit::Node* n, const char* kind) { return n->kind() == c10::Symbol::fromQualString(kind); }

// The model's statistics as its forward graph holds them, in graph order: each batch norm's
// running (mean, var), each activation fake-quant's (scale, zero point).
struct Statistics {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> bn;
  std::vector<std::pair<double, int64_t>> quant;
};
Statistics HeldStatistics(CompressedModel& c) {
  Statistics s;
  for (torch::jit::Node* n : c.module.get_method("forward").graph()->nodes()) {
    if (IsKind(n, "aten::batch_norm")) {
      s.bn.push_back({test_models::Input(n, 3).clone(), test_models::Input(n, 4).clone()});
    }
    if (IsKind(n, "aten::fake_quantize_per_tensor_affine")) {
      s.quant.push_back({torch::jit::toIValue(n->input(1))->toDouble(), torch::jit::toIValue(n->input(2))->toInt()});
    }
  }
  return s;
}

// Measured here, independently of core/calibration: the batch statistics (mean, unbiased
// variance per channel) of each batch norm's input on `x`, and the (min, max) of each
// fake-quant's input, with the fake-quants bypassed (as the compressor measures).
struct Observed {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> bn;
  std::vector<std::pair<double, double>> quant;
};
Observed Observe(CompressedModel& c, const torch::Tensor& x) {
  std::shared_ptr<torch::jit::Graph> graph = c.module.get_method("forward").graph()->copy();
  std::vector<torch::jit::Value*> bn_inputs, quant_inputs;
  for (torch::jit::Node* n : graph->nodes()) {
    if (IsKind(n, "aten::batch_norm")) bn_inputs.push_back(n->input(0));
    if (IsKind(n, "aten::fake_quantize_per_tensor_affine")) {
      quant_inputs.push_back(n->input(0));
      n->output()->replaceAllUsesWith(n->input(0));
    }
  }
  std::vector<torch::jit::Value*> values = bn_inputs;
  values.insert(values.end(), quant_inputs.begin(), quant_inputs.end());
  auto got = RunForValues(graph, c.module, x, values);
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  Observed o;
  if (!got.ok()) return o;
  for (size_t k = 0; k < values.size(); ++k) {
    const torch::Tensor t = (*got)[k].toTensor();
    if (k < bn_inputs.size()) {
      o.bn.push_back({t.mean({0, 2, 3}), t.var({0, 2, 3}, /*unbiased=*/true)});
    } else {
      o.quant.push_back({t.min().item<double>(), t.max().item<double>()});
    }
  }
  return o;
}

// conv2 (after bn1) and fc1 int8, compressed with calibration data.
StatusOr<CompressedModel> CompressedWithInt8(const Fixture& f) {
  Policy policy;
  LayerConfig int8;
  int8.precision = Precision::kInt8;
  policy.layers["features.conv2"] = int8;
  policy.layers["classifier.fc1"] = int8;
  CompressorOptions options;
  options.calibration = f.data.images.slice(0, 0, 64);
  return Compress(*f.model, policy, options);
}

TEST(FineTuneTest, ReestimatesBatchNormsAndInt8RangesForTheTrainedWeights) {
  Fixture f = Make();
  auto compressed = CompressedWithInt8(f);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  const Statistics before = HeldStatistics(*compressed);
  ASSERT_EQ(before.bn.size(), 2u);
  ASSERT_EQ(before.quant.size(), 2u);
  FineTuneOptions ft;
  ft.epochs = 2;
  ft.batch_size = 32;
  ft.learning_rate = 0.05;
  ft.calibration = f.data.images.slice(0, 0, 48);  // one chunk: statistics of all 48
  auto r = FineTune(*compressed, f.data, ft);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->reestimation_kept);
  EXPECT_EQ(r->batch_norms_reestimated, 2);
  EXPECT_EQ(r->int8_ranges_reestimated, 2);
  EXPECT_DOUBLE_EQ(r->reestimated_score, -1);  // no validator

  const Statistics held = HeldStatistics(*compressed);
  const Observed observed = Observe(*compressed, ft.calibration);
  ASSERT_EQ(held.bn.size(), observed.bn.size());
  ASSERT_EQ(held.quant.size(), observed.quant.size());
  bool moved = false;
  for (size_t k = 0; k < held.bn.size(); ++k) {
    EXPECT_TRUE(torch::allclose(held.bn[k].first, observed.bn[k].first, 1e-4, 1e-5)) << "batch norm " << k;
    EXPECT_TRUE(torch::allclose(held.bn[k].second, observed.bn[k].second, 1e-4, 1e-5)) << "batch norm " << k;
    moved |= !torch::allclose(before.bn[k].first, observed.bn[k].first, 1e-4, 1e-5);
  }
  EXPECT_TRUE(moved) << "training did not change the batch norms' inputs: the test shows nothing";
  for (size_t k = 0; k < held.quant.size(); ++k) {
    const auto [lo, hi] = observed.quant[k];
    const auto [scale, zero_point] = held.quant[k];
    const ActivationQuant expected = ActivationQuantFromRange(lo, hi);
    EXPECT_NEAR(scale, expected.scale, 1e-6 * expected.scale) << "fake-quant " << k;
    EXPECT_EQ(zero_point, expected.zero_point) << "fake-quant " << k;
    // The quantization grid covers the input's range (up to half a step of zero-point rounding).
    EXPECT_LE((ActivationQuant::kMin - zero_point) * scale, lo + scale / 2) << "fake-quant " << k;
    EXPECT_GE((ActivationQuant::kMax - zero_point) * scale, hi - scale / 2) << "fake-quant " << k;
  }
  // Nothing left over from re-estimating, and without calibration data nothing is re-estimated.
  EXPECT_EQ(test_models::FirstNodeOfKind(compressed->module, "aten::min"), nullptr);
  FineTuneOptions plain = ft;
  plain.calibration = torch::Tensor();
  auto without = FineTune(*compressed, f.data, plain);
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_FALSE(without->reestimation_kept);
  EXPECT_EQ(without->batch_norms_reestimated, 0);
  // Calibration samples of another shape than the data's are refused before training.
  plain.calibration = torch::rand({4, 3, 8, 8});
  EXPECT_EQ(FineTune(*compressed, f.data, plain).status().code(), StatusCode::kInvalidArgument);
}

// On a model just compressed, re-estimating on the compressor's calibration data gives the
// compressor's statistics: one method.
TEST(FineTuneTest, ReestimationMatchesTheCompressor) {
  Fixture f = Make();
  auto compressed = CompressedWithInt8(f);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  const Statistics before = HeldStatistics(*compressed);
  auto graph = compressed->module.get_method("forward").graph();
  auto r = ReestimateStatistics(*graph, compressed->module, f.data.images.slice(0, 0, 64), 64);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->batch_norms, 2);
  EXPECT_EQ(r->int8_ranges, 2);
  compressed->module = ModuleFromGraph(*graph);
  const Statistics after = HeldStatistics(*compressed);
  ASSERT_EQ(after.bn.size(), before.bn.size());
  ASSERT_EQ(after.quant.size(), before.quant.size());
  for (size_t k = 0; k < after.bn.size(); ++k) {
    EXPECT_TRUE(torch::allclose(after.bn[k].first, before.bn[k].first, 1e-5, 1e-6)) << "batch norm " << k;
    EXPECT_TRUE(torch::allclose(after.bn[k].second, before.bn[k].second, 1e-5, 1e-6)) << "batch norm " << k;
  }
  for (size_t k = 0; k < after.quant.size(); ++k) {
    EXPECT_NEAR(after.quant[k].first, before.quant[k].first, 1e-6 * before.quant[k].first) << "fake-quant " << k;
    EXPECT_EQ(after.quant[k].second, before.quant[k].second) << "fake-quant " << k;
  }
}

// The validator decides between the re-estimated statistics and the previous ones.
TEST(FineTuneTest, ValidatorDecidesOnReestimation) {
  Fixture f = Make();
  for (const double reestimated : {0.4, 0.7}) {
    auto compressed = CompressedWithInt8(f);
    ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
    const Statistics before = HeldStatistics(*compressed);
    FineTuneOptions ft;
    ft.epochs = 1;
    ft.batch_size = 32;
    ft.learning_rate = 0.05;
    ft.calibration = f.data.images.slice(0, 0, 48);
    int calls = 0;  // before, after the epoch, re-estimated
    auto r = FineTune(*compressed, f.data, ft, nullptr, [&](CompressedModel&) -> StatusOr<double> {
      return std::vector<double>{0.5, 0.6, reestimated}.at(calls++);
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(r->kept_epoch, 1);
    EXPECT_DOUBLE_EQ(r->reestimated_score, reestimated);
    const bool kept = reestimated > 0.6;
    EXPECT_EQ(r->reestimation_kept, kept);
    EXPECT_EQ(r->batch_norms_reestimated, kept ? 2 : 0);
    EXPECT_DOUBLE_EQ(r->kept_score(), kept ? reestimated : 0.6);
    const Statistics after = HeldStatistics(*compressed);
    ASSERT_EQ(after.bn.size(), before.bn.size());
    for (size_t k = 0; k < after.bn.size(); ++k) {
      EXPECT_EQ(torch::equal(after.bn[k].first, before.bn[k].first), !kept) << "batch norm " << k;
    }
    for (size_t k = 0; k < after.quant.size(); ++k) {
      if (!kept) {
        EXPECT_EQ(after.quant[k], before.quant[k]) << "fake-quant " << k;
      }
    }
  }
}

// One step moves the weights by at most the learning rate times the gradient norm bound
// (plain SGD, the whole data one batch), and without the bound further.
TEST(FineTuneTest, GradientNormBoundLimitsAStep) {
  Fixture f = Make();
  double moved[2];
  for (const double bound : {0.01, 0.0}) {
    auto compressed = CompressedInBlocks(f, 0.5);
    ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
    const std::vector<torch::Tensor> before = Weights(*compressed);
    FineTuneOptions ft;
    ft.epochs = 1;
    ft.batch_size = f.data.size();
    ft.learning_rate = 0.5;
    ft.momentum = 0;
    ft.weight_decay = 0;
    ft.max_gradient_norm = bound;
    auto r = FineTune(*compressed, f.data, ft);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->steps, 1);
    const std::vector<torch::Tensor> after = Weights(*compressed);
    double squares = 0;
    for (size_t k = 0; k < after.size(); ++k) squares += (after[k] - before[k]).pow(2).sum().item<double>();
    moved[bound > 0 ? 0 : 1] = std::sqrt(squares);
  }
  EXPECT_LE(moved[0], 0.5 * 0.01 * (1 + 1e-4));
  EXPECT_GT(moved[0], 0);
  EXPECT_GT(moved[1], 0.5 * 0.01 * 2) << "the gradient was small anyway: the test shows nothing";
  FineTuneOptions negative;
  negative.max_gradient_norm = -1;
  auto compressed = CompressedInBlocks(f, 0.5);
  ASSERT_TRUE(compressed.ok());
  EXPECT_EQ(FineTune(*compressed, f.data, negative).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs
