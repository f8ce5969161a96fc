#include "agents/cost_model.h"

#include <gtest/gtest.h>

#include "core/compressor.h"
#include "tests/agents/agent_test_util.h"

namespace acs {
namespace {

using test_util::Import;

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

}  // namespace
}  // namespace acs
