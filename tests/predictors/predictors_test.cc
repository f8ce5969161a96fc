// Features, the XGBoost latency model, baselines, metrics, whole-model overhead and sampling.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "predictors/baselines.h"
#include "predictors/evaluation.h"
#include "predictors/features.h"
#include "predictors/model_latency.h"
#include "predictors/sampling.h"
#include "predictors/xgb_model.h"

namespace acs::predictors {
namespace {

KernelSpec Conv(int64_t c, int64_t o, int64_t k, int64_t size, int64_t groups = 1) {
  KernelSpec s;
  s.in_channels = c;
  s.out_channels = o;
  s.kernel = {k, k};
  s.padding = {k / 2, k / 2};
  s.groups = groups;
  s.input = {1, c, size, size};
  return s;
}

TEST(FeaturesTest, KnownConvolution) {
  KernelSpec s = Conv(64, 128, 3, 56);
  KernelShapeStats st = ShapeStats(s);
  EXPECT_DOUBLE_EQ(st.macs, 56.0 * 56 * 128 * 64 * 9);
  EXPECT_DOUBLE_EQ(st.density, 1.0);
  EXPECT_DOUBLE_EQ(st.weight_bytes, 128.0 * 64 * 9 * 4);
  EXPECT_DOUBLE_EQ(st.input_bytes, 4.0 * 64 * 56 * 56);
  s.config.pattern = Pattern::kBlock;
  s.config.block = 8;
  s.config.sparsity = 0.75;
  st = ShapeStats(s);
  EXPECT_DOUBLE_EQ(st.macs_nonzero, st.macs * 0.25);
  EXPECT_DOUBLE_EQ(st.weight_bytes, 128.0 * 64 * 9 * 0.25 * (4.0 + 0.5));  // fp32 + index per 8 values
  auto feature = [](const KernelSpec& spec, const std::string& name) {
    const auto f = Features(spec);
    for (int i = 0; i < kNumFeatures; ++i) {
      if (name == FeatureNames()[i]) return f[i];
    }
    ADD_FAILURE() << name;
    return -1.0f;
  };
  EXPECT_EQ(feature(s, "pat_block"), 1.0f);
  EXPECT_EQ(feature(s, "pat_dense"), 0.0f);
  EXPECT_EQ(feature(s, "prec_fp32"), 1.0f);
  EXPECT_EQ(feature(s, "block"), 8.0f);
  EXPECT_FLOAT_EQ(feature(s, "sparsity"), 0.75f);
  EXPECT_EQ(feature(s, "out_hw"), 56.0f * 56.0f);
  // As run: int8 runs the dense int8 kernel whatever the pattern, and a block config too
  // dense for the 1xN kernel runs dense fp32 (core/kernel_plan.h).
  KernelSpec int8 = s;
  int8.config.precision = Precision::kInt8;
  EXPECT_EQ(feature(int8, "pat_dense"), 1.0f);
  EXPECT_EQ(feature(int8, "prec_int8"), 1.0f);
  EXPECT_FLOAT_EQ(feature(int8, "sparsity"), 0.0f);
  EXPECT_DOUBLE_EQ(ShapeStats(int8).weight_bytes, 128.0 * 64 * 9);
  KernelSpec barely = s;
  barely.config.sparsity = 0.1;
  EXPECT_EQ(feature(barely, "pat_dense"), 1.0f);
  EXPECT_EQ(feature(barely, "block"), 0.0f);
  EXPECT_DOUBLE_EQ(ShapeStats(barely).macs_nonzero, ShapeStats(barely).macs);
  EXPECT_EQ(KindOf(s), KernelKindId::kConv2d);
  EXPECT_EQ(KindOf(Conv(32, 32, 3, 16, 32)), KernelKindId::kDepthwise);
}

TEST(FeaturesTest, ChannelPatternRunsDenseAndSmaller) {
  KernelSpec s = Conv(64, 100, 3, 8);
  s.config.pattern = Pattern::kChannel;
  s.config.sparsity = 0.3;
  const KernelSpec r = AsRun(s);
  EXPECT_EQ(r.out_channels, 70);
  EXPECT_EQ(r.in_channels, 64);
  EXPECT_EQ(r.config.pattern, Pattern::kDense);
  KernelSpec dw = Conv(40, 40, 3, 8, 40);
  dw.config.pattern = Pattern::kChannel;
  dw.config.sparsity = 0.5;
  const KernelSpec rdw = AsRun(dw);  // 20 channels, aligned to 24 (ChannelsKept: 40 is a multiple of 8)
  EXPECT_EQ(rdw.out_channels, 24);
  EXPECT_EQ(rdw.in_channels, 24);
  EXPECT_EQ(rdw.groups, 24);
  EXPECT_EQ(rdw.input[1], 24);
  EXPECT_DOUBLE_EQ(ShapeStats(s).macs, ShapeStats(r).macs);
}

// A made-up device: fixed cost plus compute at a rate that depends on the pattern, plus a
// memory term. Smooth enough that a good regressor gets within a few percent.
double SyntheticLatency(const KernelSpec& spec) {
  const KernelSpec s = AsRun(spec);
  const KernelShapeStats st = RunStats(s);
  double rate = 50.0;  // GFLOP/s
  if (s.config.pattern == Pattern::kBlock) rate = 30.0 + 2.0 * s.config.block;
  if (s.config.pattern == Pattern::kUnstructured) rate = 12.0;
  if (s.config.pattern == Pattern::kNM) rate = 25.0;
  if (s.config.precision == Precision::kInt8) rate *= 3.0;
  rate *= s.threads == 2 ? 1.8 : 1.0;
  return 3.0 + 2.0 * st.macs_nonzero / (rate * 1e3) + (st.input_bytes + st.output_bytes) / 20e3;
}

std::vector<KernelSample> SyntheticSamples(int n, uint64_t seed) {
  KernelSampler sampler(ShapePrior::Builtin(), SampleSpace{}, seed);
  std::vector<KernelSample> out;
  for (const KernelSpec& s : sampler.Sample(n)) out.push_back({s, SyntheticLatency(s)});
  return out;
}

TEST(XgbModelTest, RecoversASyntheticLatencyFunction) {
  const std::vector<KernelSample> train = SyntheticSamples(1500, 1), test = SyntheticSamples(300, 2);
  XgbOptions o;
  o.rounds = 300;
  StatusOr<std::unique_ptr<XgbLatencyModel>> m = XgbLatencyModel::Train(train, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  StatusOr<std::vector<double>> pred = (*m)->Predict(SpecsOf(test));
  ASSERT_TRUE(pred.ok()) << pred.status().ToString();
  const AccuracyMetrics acc = ComputeMetrics(*pred, LatenciesOf(test));
  EXPECT_GE(acc.within10, 0.9) << "MAPE " << acc.mape;
  EXPECT_GE(acc.spearman, 0.98);
  // The FLOPs baseline cannot tell the patterns apart and does clearly worse.
  StatusOr<FlopsModel> flops = FlopsModel::Fit(train);
  ASSERT_TRUE(flops.ok());
  const AccuracyMetrics fa = ComputeMetrics(*flops->Predict(SpecsOf(test)), LatenciesOf(test));
  EXPECT_LT(fa.within10, acc.within10);
}

TEST(XgbModelTest, SaveLoadRoundTripPredictsTheSame) {
  const std::vector<KernelSample> train = SyntheticSamples(300, 3), test = SyntheticSamples(50, 4);
  XgbOptions o;
  o.rounds = 50;
  auto m = XgbLatencyModel::Train(train, o);
  ASSERT_TRUE(m.ok());
  StatusOr<std::string> blob = (*m)->Save();
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  auto loaded = XgbLatencyModel::Load(*blob);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const auto a = *(*m)->Predict(SpecsOf(test));
  const auto b = *(*loaded)->Predict(SpecsOf(test));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_DOUBLE_EQ(a[i], b[i]);
  EXPECT_EQ((*loaded)->samples(KernelKindId::kConv2d), (*m)->samples(KernelKindId::kConv2d));
}

TEST(XgbModelTest, BadBlobsAndMissingKindsAreClearErrors) {
  EXPECT_EQ(XgbLatencyModel::Load("not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(XgbLatencyModel::Load(R"({"format": "acs-latency-xgboost", "version": 99})").status().message().find(
                "version"),
            std::string::npos);
  std::vector<KernelSample> only_conv;
  for (const KernelSample& s : SyntheticSamples(200, 5))
    if (KindOf(s.spec) == KernelKindId::kConv2d) only_conv.push_back(s);
  XgbOptions o;
  o.rounds = 10;
  auto m = XgbLatencyModel::Train(only_conv, o);
  ASSERT_TRUE(m.ok());
  KernelSpec linear;
  linear.op = "linear";
  linear.in_channels = 512;
  linear.out_channels = 10;
  linear.input = {1, 512};
  const Status s = (*m)->Predict({linear}).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("linear"), std::string::npos);
  EXPECT_EQ(XgbLatencyModel::Train({}, o).status().code(), StatusCode::kInvalidArgument);
}

TEST(BaselinesTest, RooflineAndLookup) {
  StatusOr<RooflineModel> roof = RooflineModel::Create({{1, 100.0, 10.0}});
  ASSERT_TRUE(roof.ok());
  const KernelSpec big = Conv(256, 256, 3, 28);  // compute bound
  const KernelShapeStats st = ShapeStats(big);
  EXPECT_NEAR((*roof->Predict({big}))[0], 2.0 * st.macs / 100e3, 1e-6);
  EXPECT_EQ(RooflineModel::Create({{1, 0.0, 1.0}}).status().code(), StatusCode::kInvalidArgument);

  const std::vector<KernelSample> train = SyntheticSamples(400, 6);
  StatusOr<LookupModel> lookup = LookupModel::Fit(train);
  ASSERT_TRUE(lookup.ok());
  // A training point is its own nearest neighbour.
  const auto p = *lookup->Predict({train[7].spec});
  EXPECT_NEAR(p[0], train[7].latency_us, 1e-9 * train[7].latency_us);
}

TEST(EvaluationTest, MetricsOnKnownValues) {
  const AccuracyMetrics m = ComputeMetrics({104, 92, 300, 10}, {100, 100, 200, 10});
  EXPECT_EQ(m.count, 4);
  EXPECT_DOUBLE_EQ(m.within5, 0.5);   // 4% and 0%
  EXPECT_DOUBLE_EQ(m.within10, 0.75);
  EXPECT_NEAR(m.mape, (0.04 + 0.08 + 0.5 + 0.0) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(SpearmanRho({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(SpearmanRho({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  EXPECT_NEAR(SpearmanRho({1, 2, 2, 3}, {1, 2, 3, 4}), 0.9486833, 1e-6);  // tie averaged
}

class ConstantModel final : public LatencyModel {
 public:
  std::string name() const override { return "constant"; }
  StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const override {
    return std::vector<double>(specs.size(), 10.0);
  }
};

TEST(ModelLatencyTest, OverheadFitRecoversALinearOverhead) {
  std::vector<ModelShape> shapes;
  std::vector<double> measured;
  std::mt19937 rng(1);
  for (int i = 0; i < 30; ++i) {
    ModelShape s;
    s.layers.assign(3 + rng() % 20, Conv(8, 8, 3, 8));
    s.other_ops = static_cast<double>(rng() % 50);
    s.other_bytes = static_cast<double>(rng() % 4000000);
    shapes.push_back(s);
    measured.push_back(10.0 * s.layers.size() + 7.0 + 0.5 * s.other_ops + 2.0 * s.other_bytes / 1e6);
  }
  ConstantModel kernels;
  StatusOr<std::vector<double>> sums = KernelSums(kernels, shapes);
  ASSERT_TRUE(sums.ok());
  StatusOr<OverheadModel> o = OverheadModel::Fit(shapes, measured, *sums);
  ASSERT_TRUE(o.ok());
  StatusOr<std::vector<double>> pred = PredictModels(kernels, *o, shapes);
  ASSERT_TRUE(pred.ok());
  for (size_t i = 0; i < shapes.size(); ++i) EXPECT_NEAR((*pred)[i], measured[i], 1e-2 * measured[i]);
  StatusOr<OverheadModel> back = OverheadModel::FromJson(o->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_DOUBLE_EQ(back->Predict(shapes[3]), o->Predict(shapes[3]));
}

TEST(SamplingTest, DeterministicAndWithinTheSpace) {
  KernelSampler a(ShapePrior::Builtin(), SampleSpace{}, 42), b(ShapePrior::Builtin(), SampleSpace{}, 42);
  const auto sa = a.Sample(200), sb = b.Sample(200);
  ASSERT_EQ(sa.size(), 200u);
  int sparse = 0, int8 = 0, two_threads = 0;
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].Key(), sb[i].Key());
    EXPECT_EQ(ParseKernelSpec(sa[i].ToJson()).ok(), true) << sa[i].Key();
    if (sa[i].is_conv() && sa[i].groups > 1) {
      EXPECT_EQ(sa[i].config.pattern, Pattern::kDense) << sa[i].Key();
    }
    sparse += sa[i].config.pattern != Pattern::kDense;
    int8 += sa[i].config.precision == Precision::kInt8;
    two_threads += sa[i].threads == 2;
  }
  EXPECT_GT(sparse, 50);
  EXPECT_GT(int8, 10);
  EXPECT_GT(two_threads, 50);
}

// Every kernel the runtime has, every pattern, block size, N:M, precision and sparsity
// range the search can emit, and channel-pruned shapes (the prior's shapes all have an
// even number of output channels).
TEST(SamplingTest, CoversTheSearchSpace) {
  const SampleSpace space;
  KernelSampler sampler(ShapePrior::Builtin(), space, 3);
  const std::vector<KernelSpec> specs = sampler.Sample(3000);
  std::map<std::string, int> count;
  for (const KernelSpec& s : specs) {
    const LayerConfig& c = s.config;
    ++count[std::string("kernel ") + KernelKindName(KernelOf(s).kind)];
    ++count[std::string("pattern ") + PatternName(c.pattern)];
    ++count[std::string("precision ") + PrecisionName(c.precision)];
    if (c.pattern == Pattern::kBlock) ++count["block " + std::to_string(c.block)];
    if (c.pattern == Pattern::kNM) ++count["nm " + std::to_string(c.nm_n) + ":" + std::to_string(c.nm_m)];
    if (c.pattern == Pattern::kBlock || c.pattern == Pattern::kUnstructured) {
      const int decile = static_cast<int>(c.sparsity * 10);
      ++count[std::string(PatternName(c.pattern)) + " sparsity decile " + std::to_string(decile)];
      EXPECT_GE(c.sparsity, space.min_sparsity);
      EXPECT_LE(c.sparsity, space.max_sparsity);
    }
    if (s.out_channels % 2 == 1) ++count["channel-pruned shape"];
    ++count["context " + std::to_string(s.context_bytes)];
  }
  std::vector<std::string> expected = {"channel-pruned shape"};
  for (int64_t c : space.contexts) expected.push_back("context " + std::to_string(c));
  // No int8-simulated: the sampler's grouped convs are depthwise, which int8 runs on its kernel.
  for (KernelKind k : {KernelKind::kDense, KernelKind::kBlockSparse, KernelKind::kCsr, KernelKind::kNm,
                       KernelKind::kInt8, KernelKind::kInt4w, KernelKind::kDepthwise}) {
    expected.push_back(std::string("kernel ") + KernelKindName(k));
  }
  for (Pattern p : {Pattern::kDense, Pattern::kBlock, Pattern::kUnstructured, Pattern::kNM}) {
    expected.push_back(std::string("pattern ") + PatternName(p));
  }
  for (Precision p : space.precisions) expected.push_back(std::string("precision ") + PrecisionName(p));
  for (int b : space.block_sizes) expected.push_back("block " + std::to_string(b));
  for (const auto& [n, m] : space.nm) expected.push_back("nm " + std::to_string(n) + ":" + std::to_string(m));
  for (const char* p : {"block", "unstructured"}) {
    for (int d = 0; d <= 9; ++d) expected.push_back(std::string(p) + " sparsity decile " + std::to_string(d));
  }
  for (const std::string& e : expected) EXPECT_GT(count[e], 0) << e;
}

TEST(SamplingTest, AdaptiveRoundSamplesNearTheWorstPoints) {
  KernelSampler sampler(ShapePrior::Builtin(), SampleSpace{}, 7);
  std::vector<KernelSpec> heldout = sampler.Sample(10);
  std::vector<double> errors(10, 0.02);
  errors[3] = 0.4;
  errors[8] = -0.2;
  const auto added = AdaptiveSamples(sampler, heldout, errors, 0.10, 4, 100);
  ASSERT_EQ(added.size(), 8u);  // only the two points above 10%
  for (int i = 0; i < 4; ++i) {  // worst first, near it: same kind, pattern, precision, threads
    EXPECT_EQ(added[i].op, heldout[3].op);
    EXPECT_EQ(added[i].config.pattern, heldout[3].config.pattern);
    EXPECT_EQ(added[i].threads, heldout[3].threads);
    EXPECT_NEAR(static_cast<double>(added[i].out_channels), static_cast<double>(heldout[3].out_channels),
                0.3 * heldout[3].out_channels + 1);
  }
  EXPECT_EQ(added[4].config.pattern, heldout[8].config.pattern);
  EXPECT_TRUE(AdaptiveSamples(sampler, heldout, std::vector<double>(10, 0.05), 0.10, 4, 100).empty());
  EXPECT_EQ(AdaptiveSamples(sampler, heldout, errors, 0.10, 4, 5).size(), 5u);  // budget caps
}

}  // namespace
}  // namespace acs::predictors
