// Which kernel each layer runs: the runtime against the predictor's kernel plan, and the choice rules.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/devices/runtime_test_util.h"

namespace acs::runtime {
namespace {

using namespace runtime_test;  // NOLINT: the shared test helpers

Policy AnyConfigPolicy(const Graph& g, std::mt19937& rng) {
  std::uniform_real_distribution<double> sparsity(0.0, 0.95);
  const Precision precisions[] = {Precision::kFp32, Precision::kBf16, Precision::kInt8, Precision::kInt4w};
  Policy p;
  for (const Layer& layer : g.layers) {
    if (!layer.compressible) continue;
    LayerConfig c;
    c.precision = precisions[rng() % 4];
    switch (rng() % 5) {
      case 0: {
        const std::vector<int> fits = FittingBlocks(layer, {2, 4, 8, 16, 32});
        if (fits.empty()) break;
        c.pattern = Pattern::kBlock;
        c.block = fits[rng() % fits.size()];
        c.sparsity = sparsity(rng);
        break;
      }
      case 1:
        c.pattern = Pattern::kUnstructured;
        c.sparsity = sparsity(rng);
        break;
      case 2:
        c.pattern = Pattern::kNM;
        std::tie(c.nm_n, c.nm_m) = std::vector<std::pair<int, int>>{{2, 4}, {1, 4}, {2, 8}, {3, 4}}[rng() % 4];
        break;
      case 3:
        if (layer.out_group >= 0 && g.groups[layer.out_group].prunable && !layer.depthwise()) {
          c.pattern = Pattern::kChannel;
          c.sparsity = sparsity(rng);
        }
        break;
      default:
        break;
    }
    p.layers[layer.name] = c;
  }
  return p;
}

// The kernel plan's one rule: for every layer of random policies on every test model, the
// runtime runs the kernel that the predictors' view of the layer (KernelOf / AsRun of its
// KernelSpec) names, and AsRun's config names that kernel again.
TEST(KernelPlanTest, RuntimeRunsWhatThePredictorSees) {
  std::mt19937 rng(7);
  std::map<KernelKind, int> seen;
  CompressorOptions compress;
  compress.reconstruct = false;
  compress.calibration = torch::rand({8, 3, 16, 16});
  for (const std::string& name : test_models::TestModelNames()) {
    std::shared_ptr<ImportedModel> model = Import(name);
    ASSERT_NE(model, nullptr);
    for (int trial = 0; trial < 6; ++trial) {
      const Policy policy = AnyConfigPolicy(model->graph, rng);
      Built b = Build(*model, policy, Threads(1), compress);
      for (const LayerKernel& k : b.rt.layers()) {
        const Layer& layer = model->graph.layers[model->graph.FindLayer(k.name)];
        const KernelSpec spec = SpecOfLayer(layer, k.config);
        const KernelChoice predicted = KernelOf(spec);
        const std::string what = name + " " + k.name + " " + spec.Key() + " (runtime: " + k.why_dense + ")";
        EXPECT_EQ(KernelKindName(k.kind), std::string(KernelKindName(predicted.kind))) << what;
        EXPECT_EQ(k.block, predicted.block) << what;
        EXPECT_EQ(k.nm_n * 100 + k.nm_m, predicted.nm_n * 100 + predicted.nm_m) << what;
        const KernelSpec run = AsRun(spec);
        EXPECT_EQ(KernelKindName(KernelOf(run).kind), std::string(KernelKindName(predicted.kind))) << what;
        ++seen[k.kind];
      }
    }
  }
  for (KernelKind kind : {KernelKind::kDense, KernelKind::kBlockSparse, KernelKind::kCsr, KernelKind::kNm,
                          KernelKind::kInt8, KernelKind::kInt4w, KernelKind::kDepthwise, KernelKind::kInt8Simulated}) {
    EXPECT_GT(seen[kind], 0) << KernelKindName(kind);
  }
}

TEST(ChooseKernelTest, Rules) {
  const KernelSelection s;
  const LayerTraits conv, linear{true, 1, false}, grouped{false, 4, false}, dw{false, 8, true};
  EXPECT_EQ(ChooseKernel(LayerConfig{0.8, Pattern::kBlock, 8}, conv, s).kind, KernelKind::kBlockSparse);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.8, Pattern::kBlock, 8}, conv, s).block, 8);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.8, Pattern::kBlock, 2}, conv, s).kind, KernelKind::kCsr);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.8, Pattern::kBlock, 8}, grouped, s).kind, KernelKind::kDense);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.1, Pattern::kBlock, 8}, conv, s).kind, KernelKind::kDense);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.9, Pattern::kUnstructured}, linear, s).kind, KernelKind::kCsr);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.5, Pattern::kUnstructured}, conv, s).kind, KernelKind::kDense);
  const KernelChoice nm = ChooseKernel(LayerConfig{0, Pattern::kNM, 1, 2, 4}, conv, s);
  EXPECT_EQ(nm.kind, KernelKind::kNm);
  EXPECT_EQ(nm.nm_n * 10 + nm.nm_m, 24);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.5, Pattern::kChannel}, conv, s).kind, KernelKind::kDense);
  const LayerConfig int8{0.9, Pattern::kBlock, 8, 2, 4, Precision::kInt8};
  EXPECT_EQ(ChooseKernel(int8, conv, s).kind, KernelKind::kInt8);
  EXPECT_EQ(ChooseKernel(int8, linear, s).kind, KernelKind::kInt8);
  EXPECT_EQ(ChooseKernel(int8, dw, s).kind, KernelKind::kInt8Simulated);
  LayerTraits dw_int8 = dw;
  dw_int8.depthwise_int8 = true;
  EXPECT_EQ(ChooseKernel(int8, dw_int8, s).kind, KernelKind::kInt8);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.9, Pattern::kUnstructured}, dw_int8, s).kind, KernelKind::kDepthwise);
  EXPECT_EQ(ChooseKernel(LayerConfig{0.9, Pattern::kUnstructured}, dw, s).kind, KernelKind::kDepthwise);
  const LayerConfig int4{0.0, Pattern::kDense, 1, 2, 4, Precision::kInt4w};
  EXPECT_EQ(ChooseKernel(int4, linear, s).kind, KernelKind::kInt4w);
  EXPECT_EQ(ChooseKernel(int4, conv, s).kind, KernelKind::kDense);
  const LayerConfig sparse_int4{0.9, Pattern::kUnstructured, 1, 2, 4, Precision::kInt4w};
  EXPECT_EQ(ChooseKernel(sparse_int4, linear, s).kind, KernelKind::kCsr);
}

}  // namespace
}  // namespace acs::runtime
