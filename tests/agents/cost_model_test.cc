#include "agents/cost_model.h"

#include <cmath>

#include <gtest/gtest.h>

#include "agents/latency_cost.h"
#include "core/compressor.h"
#include "predictors/features.h"
#include "predictors/sampling.h"
#include "tests/agents/agent_test_util.h"
#include "tests/agents/latency_test_util.h"

namespace acs {
namespace {

using test_util::Anchored;
using test_util::Import;
using test_util::MadeUpPredictor;

TEST(CostModelTest, DenseCostIsTheGraphTotal) {
  auto m = Import("plain");
  EXPECT_DOUBLE_EQ(DenseCost(m->graph, FlopsCostModel()), static_cast<double>(m->graph.TotalFlops()));
  EXPECT_DOUBLE_EQ(DenseCost(m->graph, ParamsCostModel()), static_cast<double>(m->graph.TotalParams()));
  EXPECT_DOUBLE_EQ(DenseCost(m->graph, BytesCostModel()), 4.0 * m->graph.TotalParams());
  EXPECT_DOUBLE_EQ(PolicyCost(m->graph, Policy(), FlopsCostModel()), DenseCost(m->graph, FlopsCostModel()));
}

TEST(CostModelTest, InLayerSparsityAndPrecision) {
  auto m = Import("plain");
  const Layer& conv2 = m->graph.layers[m->graph.FindLayer("features.conv2")];
  LayerConfig c;
  c.pattern = Pattern::kUnstructured;
  c.sparsity = 0.75;
  c.precision = Precision::kInt8;
  EXPECT_DOUBLE_EQ(FlopsCostModel().LayerCost(conv2, c), 0.25 * conv2.flops);
  EXPECT_DOUBLE_EQ(ParamsCostModel().LayerCost(conv2, c), 0.25 * conv2.params);
  EXPECT_DOUBLE_EQ(BytesCostModel().LayerCost(conv2, c), 0.25 * conv2.params);
  c.pattern = Pattern::kNM;
  EXPECT_DOUBLE_EQ(FlopsCostModel().LayerCost(conv2, c), 0.5 * conv2.flops);
}

TEST(CostModelTest, ChannelPruningShrinksConsumers) {
  auto m = Import("plain");
  const Graph& g = m->graph;
  Policy p;
  p.layers["features.conv2"] = {0.5, Pattern::kChannel};
  const Layer& conv1 = g.layers[g.FindLayer("features.conv1")];
  const Layer& conv2 = g.layers[g.FindLayer("features.conv2")];
  const Layer& fc1 = g.layers[g.FindLayer("classifier.fc1")];
  const Layer& fc2 = g.layers[g.FindLayer("classifier.fc2")];
  double expected = conv1.flops + 0.5 * conv2.flops + 0.5 * fc1.flops + fc2.flops;
  EXPECT_NEAR(PolicyCost(g, p, FlopsCostModel()), expected, 1.0);
  Layer shrunk = ShrinkLayer(fc1, g, KeptChannels(g, p));
  EXPECT_EQ(shrunk.in_channels, 128);
  EXPECT_EQ(shrunk.out_channels, 32);
}

// The channel counts of the cost model are those the compressor produces.
TEST(CostModelTest, KeptChannelsMatchTheCompressor) {
  for (const std::string name : {"plain", "residual", "concat", "depthwise", "grouped"}) {
    auto m = Import(name);
    const Graph& g = m->graph;
    for (double s : {0.3, 0.55, 0.8}) {
      Policy p;
      int i = 0;
      for (const Layer& l : g.layers) {
        if (!l.compressible || l.depthwise()) continue;
        bool prunable = l.out_group >= 0 && g.groups[l.out_group].prunable;
        if (prunable && i++ % 2 == 0) p.layers[l.name] = {s, Pattern::kChannel};
      }
      auto compressed = Compress(*m, p);
      ASSERT_TRUE(compressed.ok()) << name << ": " << compressed.status().ToString();
      const std::vector<int64_t> kept = KeptChannels(g, p);
      for (const LayerResult& r : compressed->layers) {
        Layer shrunk = ShrinkLayer(g.layers[g.FindLayer(r.name)], g, kept);
        EXPECT_EQ(shrunk.out_channels, r.out_channels_after) << name << " " << r.name << " s=" << s;
        EXPECT_EQ(shrunk.in_channels, r.in_channels_after) << name << " " << r.name << " s=" << s;
      }
    }
  }
}

TEST(CostModelTest, MakeCostModel) {
  EXPECT_TRUE(MakeCostModel("flops").ok());
  EXPECT_TRUE(MakeCostModel("bytes").ok());
  EXPECT_EQ(MakeCostModel("latency").status().code(), StatusCode::kInvalidArgument);
}

// The dense layers' predicted latency, as an uncalibrated budget sums it.
double DenseLayersUs(const Graph& graph, const predictors::TrainedPredictor& predictor) {
  StatusOr<LatencyBudget> plain = MakeLatencyBudget(graph, predictor, 1, 0.5);
  EXPECT_TRUE(plain.ok()) << plain.status().ToString();
  return plain.ok() ? DenseCost(graph, *plain->cost) : 0;
}

// A measured dense latency anchors the budget: the dense model is predicted at the
// measurement (the layers scaled up or down to it beside the fitted overhead), and the
// Env's share keeps the whole model at ratio x the measurement.
TEST(LatencyBudgetTest, CalibratedToTheMeasuredDenseModel) {
  auto m = Import("residual");
  const predictors::TrainedPredictor predictor = MadeUpPredictor();
  StatusOr<LatencyBudget> plain = MakeLatencyBudget(m->graph, predictor, 1, 0.5);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->calibrated);
  const double layers = DenseCost(m->graph, *plain->cost);
  for (double measured : {3.0 * layers, 0.5 * layers}) {
    StatusOr<LatencyBudget> b = MakeLatencyBudget(m->graph, predictor, 1, 0.5, Anchored(measured, 0, 0));
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_TRUE(b->calibrated);
    EXPECT_DOUBLE_EQ(b->dense_us, measured);
    EXPECT_NEAR(b->PredictUs(m->graph, Policy()), measured, 1e-9 * measured);
    EXPECT_DOUBLE_EQ(b->overhead_us, 0.0);  // this predictor has no fitted overhead
    EXPECT_NEAR(b->layer_scale, measured / layers, 1e-12);
    // A policy at the Env's budget is at half the measured dense latency.
    EXPECT_NEAR(b->layer_scale * b->env_budget * layers + b->overhead_us, 0.5 * measured, 1e-9 * measured);
  }
}

TEST(LatencyCostTest, LayersRunInTheContextOfTheirPolicysWeights) {
  KernelSpec conv;
  conv.in_channels = 256;
  conv.out_channels = 512;
  conv.kernel = {3, 3};
  conv.input = {1, 256, 8, 8};
  KernelSpec fc;
  fc.op = "linear";
  fc.in_channels = 512;
  fc.out_channels = 1000;
  fc.input = {1, 512};
  // 4 x (512 x 256 x 9 + 1000 x 512) = 6.77 MB, nearest power of two 8 MiB.
  EXPECT_DOUBLE_EQ(WeightBytes({conv, fc}), 4.0 * (512 * 256 * 9 + 1000 * 512));
  EXPECT_EQ(ContextOf({conv, fc}), 8 << 20);
  fc.config.precision = Precision::kInt8;  // 1 byte a weight: 4.72 MB + 0.51 MB
  EXPECT_EQ(ContextOf({conv, fc}), 4 << 20);

  auto m = Import("residual");
  const predictors::ModelShape dense = ModelShapeOf(m->graph, Policy(), 1);
  Policy sparse;
  for (const Layer& layer : m->graph.layers) sparse.layers[layer.name] = LayerConfig{0.9, Pattern::kUnstructured};
  const predictors::ModelShape compressed = ModelShapeOf(m->graph, sparse, 1);
  for (const auto* shape : {&dense, &compressed}) {
    for (const KernelSpec& spec : shape->layers) EXPECT_EQ(spec.context_bytes, ContextOf(shape->layers));
  }
  EXPECT_LT(WeightBytes(compressed.layers), WeightBytes(dense.layers));
}

TEST(LatencyBudgetTest, TheUncompressedRuntimeAnchorsThePredictions) {
  auto m = Import("residual");
  const predictors::TrainedPredictor predictor = MadeUpPredictor();
  const double layers = DenseLayersUs(m->graph, predictor);
  // The runtime runs the uncompressed model at 0.8x of the dense baseline (its own
  // depthwise kernel, say): the budget is half the baseline, the predictions the runtime's.
  const double dense = 3.0 * layers, uncompressed = 2.4 * layers;
  StatusOr<LatencyBudget> b = MakeLatencyBudget(m->graph, predictor, 1, 0.5, Anchored(dense, uncompressed, 0));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_DOUBLE_EQ(b->dense_us, dense);
  EXPECT_NEAR(b->PredictUs(m->graph, Policy()), uncompressed, 1e-9 * dense);
  EXPECT_NEAR(b->layer_scale, 2.4, 1e-12);
  EXPECT_NEAR(b->layer_scale * b->env_budget * layers, 0.5 * dense, 1e-9 * dense);
  EXPECT_NEAR(b->env_budget, 0.5 * 3.0 / 2.4, 1e-12);
  // A budget the uncompressed runtime meets already: the Env's share is capped at 1.
  b = MakeLatencyBudget(m->graph, predictor, 1, 0.9, Anchored(dense, uncompressed, 0));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_DOUBLE_EQ(b->env_budget, 1.0);
  // A profiled share outside the layers is the overhead, which compression leaves.
  b = MakeLatencyBudget(m->graph, predictor, 1, 0.5, Anchored(dense, uncompressed, 0.1));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NEAR(b->overhead_us, 0.1 * uncompressed, 1e-9 * dense);
  EXPECT_NEAR(b->PredictUs(m->graph, Policy()), uncompressed, 1e-9 * dense);
  EXPECT_NEAR(b->layer_scale * b->env_budget * layers + b->overhead_us, 0.5 * dense, 1e-9 * dense);
}

// The closed loop: policies measured in an earlier round refit the layers' scale so that
// they are predicted at their measured ratio (the median over them), within [0.5, 2].
TEST(LatencyBudgetTest, VerifiedPoliciesRefitTheLayersScale) {
  auto m = Import("residual");
  const predictors::TrainedPredictor predictor = MadeUpPredictor();
  const double layers = DenseLayersUs(m->graph, predictor);
  const double dense = 3.0 * layers, uncompressed = 2.4 * layers;
  const ModelCalibration anchored = Anchored(dense, uncompressed, 0.1);
  StatusOr<LatencyBudget> before = MakeLatencyBudget(m->graph, predictor, 1, 0.5, anchored);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_DOUBLE_EQ(before->verified_scale, 1.0);
  EXPECT_EQ(before->verified_policies, 0);

  Policy sparse;
  for (const Layer& layer : m->graph.layers) sparse.layers[layer.name] = LayerConfig{0.9, Pattern::kUnstructured};
  const double predicted_ratio = before->PredictUs(m->graph, sparse) / dense;
  ModelCalibration refit = anchored;
  refit.verified = {{sparse, 1.2 * predicted_ratio}};  // measured 20% slower than predicted
  StatusOr<LatencyBudget> after = MakeLatencyBudget(m->graph, predictor, 1, 0.5, refit);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->verified_policies, 1);
  EXPECT_GT(after->verified_scale, 1.2);  // the overhead does not shrink: the layers take all of it
  EXPECT_NEAR(after->PredictUs(m->graph, sparse), 1.2 * predicted_ratio * dense, 1e-9 * dense);
  EXPECT_LT(after->env_budget, before->env_budget);  // the search must compress more
  EXPECT_DOUBLE_EQ(after->dense_us, dense);          // the budget's 1.0x stays the measurement

  // The median of several: one far outlier does not move it.
  refit.verified = {{sparse, 1.2 * predicted_ratio}, {sparse, 1.2 * predicted_ratio}, {sparse, 30.0}};
  StatusOr<LatencyBudget> median = MakeLatencyBudget(m->graph, predictor, 1, 0.5, refit);
  ASSERT_TRUE(median.ok()) << median.status().ToString();
  EXPECT_EQ(median->verified_policies, 3);
  EXPECT_NEAR(median->verified_scale, after->verified_scale, 1e-12);
  // Clamped: a measurement 10x off says more about the measurement than the layers.
  refit.verified = {{sparse, 10 * predicted_ratio}};
  StatusOr<LatencyBudget> clamped = MakeLatencyBudget(m->graph, predictor, 1, 0.5, refit);
  ASSERT_TRUE(clamped.ok()) << clamped.status().ToString();
  EXPECT_DOUBLE_EQ(clamped->verified_scale, 2.0);
}

// Probes: uniform policies whose compressible layers run the runtime's own kernels.
TEST(LatencyBudgetTest, ProbesRunTheRuntimesOwnKernels) {
  for (const std::string name : {"residual", "depthwise"}) {
    auto m = Import(name);
    const std::vector<Policy> probes = ProbePolicies(m->graph, SearchSpace{});
    // 1x8 blocks at 70%, int8, blocks on every other layer, 30% channel pruning.
    ASSERT_EQ(probes.size(), 4u) << name;
    for (size_t i = 0; i < 3; ++i) {
      const Policy& probe = probes[i];
      ASSERT_FALSE(probe.layers.empty());
      for (const auto& [layer_name, config] : probe.layers) {
        const Layer* layer = nullptr;
        for (const Layer& l : m->graph.layers) layer = l.name == layer_name ? &l : layer;
        ASSERT_NE(layer, nullptr);
        EXPECT_TRUE(RunsOwnKernel(SpecOfLayer(*layer, config))) << name << " " << layer_name;
      }
    }
    EXPECT_EQ(probes[0].layers.begin()->second.pattern, Pattern::kBlock);
    EXPECT_EQ(probes[0].layers.begin()->second.block, 8);
    EXPECT_EQ(probes[1].layers.begin()->second.precision, Precision::kInt8);
    EXPECT_EQ(probes[2].layers.size(), (probes[0].layers.size() + 1) / 2);
    for (const auto& [layer_name, config] : probes[2].layers) EXPECT_EQ(probes[0].Get(layer_name), config);
    // The channel probe prunes every prunable group; each layer runs the kind it runs dense.
    const Policy& channels = probes[3];
    ASSERT_FALSE(channels.layers.empty()) << name;
    for (const auto& [layer_name, config] : channels.layers) {
      EXPECT_EQ(config.pattern, Pattern::kChannel);
      EXPECT_DOUBLE_EQ(config.sparsity, 0.3);
    }
    const std::vector<KernelSpec> pruned = ModelShapeOf(m->graph, channels, 1).layers;
    const std::vector<KernelSpec> dense = ModelShapeOf(m->graph, Policy{}, 1).layers;
    ASSERT_EQ(pruned.size(), dense.size());
    for (size_t i = 0; i < pruned.size(); ++i) EXPECT_EQ(RunsOwnKernel(pruned[i]), RunsOwnKernel(dense[i])) << i;
  }
  SearchSpace fp32_channels;
  fp32_channels.patterns = {Pattern::kChannel};
  fp32_channels.precisions = {Precision::kFp32};
  EXPECT_TRUE(ProbePolicies(Import("residual")->graph, fp32_channels).empty());
}

// Isolated kernels that miss their in-model run by different factors on aten ops and on the
// runtime's own kernels: the anchor and the probes recover both factors, and every
// measured policy is then predicted at its measurement.
TEST(LatencyBudgetTest, ProbesFitTheOwnKernelsScale) {
  for (const std::string name : {"residual", "depthwise"}) {
    auto m = Import(name);
    const predictors::TrainedPredictor predictor = MadeUpPredictor();
    StatusOr<LatencyBudget> plain = MakeLatencyBudget(m->graph, predictor, 1, 0.5);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    const double aten_scale = 0.6, own_scale = 1.1, share = 0.1;
    // The layers' true time and the whole run with 10% of the anchor outside them.
    auto layers_us = [&](const Policy& p) {
      return test_util::ScaledLayersUs(*plain->cost, m->graph, p, aten_scale, own_scale);
    };
    const double anchor = layers_us(Policy()) / (1 - share);
    const double dense = 1.2 * anchor;  // the dense baseline is slower than the runtime
    ModelCalibration measured = Anchored(dense, anchor, share);
    const std::vector<Policy> probes = ProbePolicies(m->graph, SearchSpace{});
    for (const Policy& p : probes) measured.probes.push_back({p, (share * anchor + layers_us(p)) / dense});

    StatusOr<LatencyBudget> b = MakeLatencyBudget(m->graph, predictor, 1, 0.5, measured);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(b->probe_policies, 4);
    EXPECT_NEAR(b->layer_scale, aten_scale, 1e-6) << name;
    EXPECT_NEAR(b->own_kernel_factor, own_scale / aten_scale, 1e-6) << name;
    EXPECT_NEAR(b->PredictUs(m->graph, Policy()), anchor, 1e-6 * anchor);
    for (const MeasuredPolicy& p : measured.probes) {
      EXPECT_NEAR(b->PredictUs(m->graph, p.policy), p.ratio * dense, 1e-6 * dense);
    }
    // The Env's costs carry the factor: a policy at its budget is at half the dense latency.
    EXPECT_NEAR(b->layer_scale * b->env_budget * DenseCost(m->graph, *b->cost) + b->overhead_us, 0.5 * dense,
                1e-9 * dense);

    // Probes no scale pair explains within [0.2, 5] leave the anchor's single scale.
    ModelCalibration wild = measured;
    for (MeasuredPolicy& p : wild.probes) p.ratio *= 40;
    StatusOr<LatencyBudget> single = MakeLatencyBudget(m->graph, predictor, 1, 0.5, wild);
    ASSERT_TRUE(single.ok()) << single.status().ToString();
    EXPECT_EQ(single->probe_policies, 0);
    EXPECT_DOUBLE_EQ(single->own_kernel_factor, 1.0);
    EXPECT_NEAR(single->PredictUs(m->graph, Policy()), anchor, 1e-6 * anchor);
  }
}

// The closed loop with probes: policies the search proposed, measured off the probes' fit by
// errors of opposite sign on the two kinds of layers, refit both scales; one factor could
// not bring both closer. Policies measured where the fit predicts them change nothing.
TEST(LatencyBudgetTest, VerifiedPoliciesRefitBothScalesWithTheProbes) {
  auto m = Import("residual");
  const predictors::TrainedPredictor predictor = MadeUpPredictor();
  StatusOr<LatencyBudget> plain = MakeLatencyBudget(m->graph, predictor, 1, 0.5);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  const double share = 0.1;
  auto layers_us = [&](const Policy& p, double aten_scale, double own_scale) {
    return test_util::ScaledLayersUs(*plain->cost, m->graph, p, aten_scale, own_scale);
  };
  const double anchor = layers_us(Policy(), 0.6, 1.1) / (1 - share), dense = 1.2 * anchor;
  ModelCalibration measured = Anchored(dense, anchor, share);
  const std::vector<Policy> probes = ProbePolicies(m->graph, SearchSpace{});
  for (const Policy& p : probes) measured.probes.push_back({p, (share * anchor + layers_us(p, 0.6, 1.1)) / dense});
  StatusOr<LatencyBudget> before = MakeLatencyBudget(m->graph, predictor, 1, 0.5, measured);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_EQ(before->probe_policies, 4);

  const Policy& pruned = probes[3];  // aten layers only
  const Policy& own = probes[0];     // the runtime's own kernels wherever they run
  auto error = [&](const LatencyBudget& b, const MeasuredPolicy& p) {
    return b.PredictUs(m->graph, p.policy) / (p.ratio * dense) - 1;
  };
  ModelCalibration loop = measured;
  loop.verified = {{pruned, 1.15 * before->PredictUs(m->graph, pruned) / dense},
                   {own, 0.9 * before->PredictUs(m->graph, own) / dense}};
  StatusOr<LatencyBudget> after = MakeLatencyBudget(m->graph, predictor, 1, 0.5, loop);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->verified_policies, 2);
  EXPECT_GT(after->verified_scale, 1.0);      // aten layers dearer
  EXPECT_LT(after->verified_own_scale, 1.0);  // own kernels cheaper
  for (const MeasuredPolicy& p : loop.verified) {
    EXPECT_LT(std::abs(error(*after, p)), std::abs(error(*before, p))) << p.policy.ToJson();
  }
  EXPECT_NEAR(after->layer_scale * after->own_kernel_factor,
              before->layer_scale * before->own_kernel_factor * after->verified_own_scale, 1e-9);

  loop.verified = {{pruned, before->PredictUs(m->graph, pruned) / dense},
                   {own, before->PredictUs(m->graph, own) / dense}};
  StatusOr<LatencyBudget> same = MakeLatencyBudget(m->graph, predictor, 1, 0.5, loop);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_NEAR(same->verified_scale, 1.0, 1e-9);
  EXPECT_NEAR(same->verified_own_scale, 1.0, 1e-9);

  // However far off the measurements, neither scale moves past x2 either way: a refit that
  // would leaves the single clamped factor (own-kernel layers unchanged), as some of these do.
  int single = 0;
  for (double off : {0.3, 0.5, 2.0, 4.0, 16.0}) {
    loop.verified = {{pruned, off * before->PredictUs(m->graph, pruned) / dense},
                     {own, off * before->PredictUs(m->graph, own) / dense}};
    StatusOr<LatencyBudget> wild = MakeLatencyBudget(m->graph, predictor, 1, 0.5, loop);
    ASSERT_TRUE(wild.ok()) << wild.status().ToString();
    for (double change : {wild->verified_scale, wild->verified_own_scale}) {
      EXPECT_GE(change, 0.5) << off;
      EXPECT_LE(change, 2.0) << off;
    }
    single += wild->verified_policies > 0 && wild->verified_own_scale == 1.0;
  }
  EXPECT_GT(single, 0);
}

// A graph of wide layers (2.4 MB of fp32 weights each) without data flow: enough for the
// cost model, whose contexts it makes differ by factor.
Graph WideGraph() {
  Graph g;
  for (int i = 0; i < 3; ++i) {
    Layer l;
    l.name = "conv" + std::to_string(i);
    l.compressible = true;
    l.in_channels = l.out_channels = 256;
    l.kernel = {3, 3};
    l.padding = {1, 1};
    l.input_shape = l.output_shape = {1, 256, 8, 8};
    l.params = 256 * 256 * 9;
    l.flops = 2 * l.params * 64;
    g.layers.push_back(l);
  }
  return g;
}

// Isolated kernels whose time grows with the cache context by their weight bytes (cold
// weights stream from memory): the probes find the context the in-model runs are in, and
// every probe is then predicted at its measurement; left at the weights' own context, not.
TEST(LatencyBudgetTest, ProbesFitTheContext) {
  const Graph g = WideGraph();
  predictors::KernelSampler sampler(predictors::ShapePrior::Builtin(), predictors::SampleSpace{}, 5);
  std::vector<predictors::KernelSample> samples;
  for (const KernelSpec& s : sampler.Sample(800)) {
    const predictors::KernelShapeStats stats = predictors::ShapeStats(s);
    const double cold = std::log2(1.0 + static_cast<double>(s.context_bytes) / (1 << 18));
    samples.push_back({s, 2.0 + stats.macs_nonzero / 20e3 + cold * stats.weight_bytes / 4e3});
  }
  predictors::TrainedPredictor predictor;
  auto k = predictors::XgbLatencyModel::Train(samples);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  predictor.kernels = std::move(k).value();
  const std::vector<Policy> probes = ProbePolicies(g, SearchSpace{});
  ASSERT_EQ(probes.size(), 3u);  // WideGraph has no data flow, so no prunable channel group
  const double dense_weight_bytes = WeightBytes(ModelShapeOf(g, Policy{}, 1).layers);
  for (const ContextRule truth :
       {ContextRule{0, true}, ContextRule{0.25, true}, ContextRule{4, true}, ContextRule{1, false}}) {
    LatencyCostModel in_model(predictor.kernels, 1);
    in_model.SetContextRule(truth, dense_weight_bytes);
    auto layers_us = [&](const Policy& p) { return test_util::ScaledLayersUs(in_model, g, p, 0.7, 1.2); };
    const double anchor = layers_us(Policy()), dense = 1.1 * anchor;
    ModelCalibration measured = Anchored(dense, anchor, 0);
    for (const Policy& p : probes) measured.probes.push_back({p, layers_us(p) / dense});

    StatusOr<LatencyBudget> b = MakeLatencyBudget(g, predictor, 1, 0.5, measured);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    const std::string described = truth.Describe();
    EXPECT_TRUE(b->context == truth) << described;
    EXPECT_TRUE(b->cost->context_rule() == truth) << described;
    EXPECT_NEAR(b->layer_scale, 0.7, 1e-6) << described;
    double worst_fixed = 0;
    measured.context_rules = {ContextRule{}};
    StatusOr<LatencyBudget> fixed = MakeLatencyBudget(g, predictor, 1, 0.5, measured);
    ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
    EXPECT_TRUE(fixed->context == ContextRule{});
    for (const MeasuredPolicy& p : measured.probes) {
      EXPECT_NEAR(b->PredictUs(g, p.policy), p.ratio * dense, 1e-6 * dense) << described;
      worst_fixed = std::max(worst_fixed, std::abs(fixed->PredictUs(g, p.policy) / (p.ratio * dense) - 1));
    }
    EXPECT_GT(worst_fixed, 0.01) << described;  // the context matters for these layers
  }
}

}  // namespace
}  // namespace acs
