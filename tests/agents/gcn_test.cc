#include "agents/gcn.h"

#include <gtest/gtest.h>

#include <cmath>

#include "agents/make_agent.h"
#include "agents/search.h"
#include "tests/agents/agent_test_util.h"

namespace acs {
namespace {

using test_util::Import;

bool Connected(const torch::Tensor& a, const Graph& g, const std::string& x, const std::string& y) {
  const int i = g.FindLayer(x), j = g.FindLayer(y);
  EXPECT_GE(i, 0) << x;
  EXPECT_GE(j, 0) << y;
  EXPECT_EQ(a[i][j].item<float>(), a[j][i].item<float>());
  return a[i][j].item<float>() == 1.0f;
}

TEST(GcnTest, NormalizedAdjacencyOfAPath) {
  // 0 - 1 - 2: with self loops the degrees are 2, 3, 2.
  torch::Tensor a = torch::tensor({0, 1, 0, 1, 0, 1, 0, 1, 0}, torch::kFloat32).view({3, 3});
  torch::Tensor n = NormalizedAdjacency(a);
  ASSERT_EQ(n.sizes(), (c10::IntArrayRef{3, 3}));
  EXPECT_NEAR(n[0][0].item<float>(), 1.0 / 2, 1e-6);
  EXPECT_NEAR(n[1][1].item<float>(), 1.0 / 3, 1e-6);
  EXPECT_NEAR(n[0][1].item<float>(), 1.0 / std::sqrt(6.0), 1e-6);
  EXPECT_NEAR(n[1][2].item<float>(), 1.0 / std::sqrt(6.0), 1e-6);
  EXPECT_EQ(n[0][2].item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(n, n.t()));
}

TEST(GcnTest, LayerAdjacencyFollowsDataFlow) {
  auto plain = Import("plain");  // conv1 -> conv2 -> fc1 -> fc2, a chain
  const Graph& p = plain->graph;
  torch::Tensor a = LayerAdjacency(p);
  ASSERT_EQ(a.size(0), static_cast<int64_t>(p.layers.size()));
  EXPECT_TRUE(Connected(a, p, "features.conv1", "features.conv2"));
  EXPECT_TRUE(Connected(a, p, "features.conv2", "classifier.fc1"));
  EXPECT_TRUE(Connected(a, p, "classifier.fc1", "classifier.fc2"));
  EXPECT_FALSE(Connected(a, p, "features.conv1", "classifier.fc1"));
  EXPECT_EQ(a.sum().item<float>(), 6.0f);  // three undirected edges
  EXPECT_EQ(a.diagonal().sum().item<float>(), 0.0f);

  auto residual = Import("residual");
  const Graph& r = residual->graph;
  a = LayerAdjacency(r);
  EXPECT_TRUE(Connected(a, r, "conv1", "layer1.conv1"));
  EXPECT_TRUE(Connected(a, r, "conv1", "layer2.conv1"));  // through the identity shortcut
  EXPECT_TRUE(Connected(a, r, "layer1.conv2", "layer2.downsample.0"));
  EXPECT_FALSE(Connected(a, r, "layer1.conv1", "layer2.conv1"));
  EXPECT_FALSE(Connected(a, r, "layer2.conv1", "fc"));
  EXPECT_TRUE(Connected(a, r, "layer2.conv2", "fc"));
  EXPECT_TRUE(Connected(a, r, "layer2.downsample.0", "fc"));
}

TEST(GcnTest, EncoderShapesAndGradients) {
  auto m = Import("residual");
  const Graph& g = m->graph;
  torch::Tensor x = LayerNodeFeatures(g);
  const int64_t n = static_cast<int64_t>(g.layers.size());
  ASSERT_EQ(x.sizes(), (c10::IntArrayRef{n, kGcnFeatures}));
  EXPECT_EQ(x.min().item<float>(), 0.0f);
  EXPECT_EQ(x.max().item<float>(), 1.0f);
  GcnOptions options;
  options.hidden = 16;
  options.embedding = 8;
  Rng rng(1);
  GcnEncoder encoder(x, NormalizedAdjacency(LayerAdjacency(g)), {1, 2, 4}, options, rng);
  EXPECT_EQ(encoder.dim(), 16);
  EXPECT_EQ(encoder.NodeEmbeddings().sizes(), (c10::IntArrayRef{n, 8}));
  torch::Tensor out = encoder.forward(torch::tensor({0, 2, 2, 1}, torch::kInt64));
  ASSERT_EQ(out.sizes(), (c10::IntArrayRef{4, 16}));
  EXPECT_TRUE(torch::equal(out[1], out[2]));                          // the same step
  EXPECT_TRUE(torch::equal(out.slice(1, 8, 16)[0], out.slice(1, 8, 16)[3]));  // the same graph embedding
  EXPECT_FALSE(torch::equal(out[0], out[1]));
  out.pow(2).sum().backward();  // trainable end to end
  for (const torch::Tensor& p : encoder.parameters()) EXPECT_GT(p.grad().abs().sum().item<float>(), 0.0f);
}

TEST(GcnTest, AgmcSearchesATestModelWithinBudgetAndResumes) {
  auto m = Import("residual");
  EnvOptions env_options;
  env_options.budget = 0.6;
  auto env = Env::Create(&m->graph, *MakeCostModel("flops"), env_options);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  AgentOptions options;
  options.episodes = 12;  // warm-up of 3
  options.ddpg.hidden = 32;
  auto agent = MakeAgent("agmc", 5, **env, options);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_EQ((*agent)->name(), "agmc");
  test_util::ToyReward reward(0.4);
  SearchOptions search;
  search.episodes = 6;
  auto first = RunSearch(**env, **agent, reward, search);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  for (const EpisodeRecord& e : first->episodes) EXPECT_LE(e.cost_ratio, 0.6 + 1e-9);

  // Checkpoint after 6 episodes; the original and a restored agent continue alike.
  const std::string checkpoint = (*agent)->Checkpoint();
  auto restored = MakeAgent("agmc", 77, **env, options);
  ASSERT_TRUE((*restored)->Restore(checkpoint).ok());
  auto a = RunSearch(**env, **agent, reward, search);
  auto b = RunSearch(**env, **restored, reward, search);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int e = 0; e < search.episodes; ++e) {
    EXPECT_EQ(a->episodes[e].policy.Hash(), b->episodes[e].policy.Hash()) << e;
    EXPECT_LE(a->episodes[e].cost_ratio, 0.6 + 1e-9);
  }
  auto amc = MakeAgent("amc", 5, **env, options);
  ASSERT_TRUE(amc.ok());
  EXPECT_FALSE((*amc)->Restore(checkpoint).ok());
  EXPECT_FALSE(MakeAgent("ppo", 5, **env, options).ok());
}

}  // namespace
}  // namespace acs
