#include "agents/env.h"

#include <gtest/gtest.h>

#include "agents/agent.h"
#include "tests/agents/agent_test_util.h"

namespace acs {
namespace {

using test_util::Import;

std::unique_ptr<Env> MakeEnv(const Graph& g, EnvOptions options, const std::string& cost = "flops") {
  auto env = Env::Create(&g, *MakeCostModel(cost), options);
  EXPECT_TRUE(env.ok()) << env.status().ToString();
  return env.ok() ? std::move(env).value() : nullptr;
}

TEST(EnvTest, SkipsFirstConvAndLastLinearByDefault) {
  auto m = Import("plain");
  auto env = MakeEnv(m->graph, {});
  ASSERT_TRUE(env);
  ASSERT_EQ(env->num_steps(), 2);
  EXPECT_EQ(m->graph.layers[env->layers()[0]].name, "features.conv2");
  EXPECT_EQ(m->graph.layers[env->layers()[1]].name, "classifier.fc1");
  EnvOptions options;
  options.skip_first_conv = options.skip_last_linear = false;
  options.skip = {"classifier.fc1"};
  env = MakeEnv(m->graph, options);
  ASSERT_EQ(env->num_steps(), 3);
}

TEST(EnvTest, StateFeaturesOnAKnownGraph) {
  auto m = Import("plain");
  EnvOptions options;
  options.skip_first_conv = options.skip_last_linear = false;
  options.budget = 1.0;
  auto env = MakeEnv(m->graph, options);
  ASSERT_EQ(env->num_steps(), 4);  // conv1 3->8, conv2 8->16, fc1 256->32, fc2 32->10
  std::vector<std::vector<double>> states;
  std::vector<double> s = env->Reset();
  while (true) {
    ASSERT_EQ(s.size(), static_cast<size_t>(kStateDim));
    for (double v : s) EXPECT_TRUE(v >= 0 && v <= 1) << v;
    states.push_back(s);
    Env::StepResult r = env->Step({0, 0, 0, 0});
    if (r.done) break;
    s = r.next_state;
  }
  ASSERT_EQ(states.size(), 4u);
  EXPECT_DOUBLE_EQ(states[0][kStIndex], 0.0);
  EXPECT_DOUBLE_EQ(states[3][kStIndex], 1.0);
  EXPECT_DOUBLE_EQ(states[0][kStType], 0.0);
  EXPECT_DOUBLE_EQ(states[2][kStType], 1.0);
  EXPECT_DOUBLE_EQ(states[0][kStIn], 0.0);   // 3 in channels, the least
  EXPECT_DOUBLE_EQ(states[2][kStIn], 1.0);   // 256 in features, the most
  EXPECT_NEAR(states[1][kStIn], 5.0 / 253.0, 1e-12);
  EXPECT_DOUBLE_EQ(states[1][kStFlops], 1.0);  // conv2 has the most FLOPs
  EXPECT_DOUBLE_EQ(states[3][kStFlops], 0.0);  // fc2 the fewest
  EXPECT_DOUBLE_EQ(states[0][kStInputSize], 1.0);  // 16x16 input
  EXPECT_DOUBLE_EQ(states[0][kStReduced], 0.0);
  const Graph& g = m->graph;
  double total = static_cast<double>(g.TotalFlops());
  EXPECT_NEAR(states[0][kStRest], (total - g.layers[0].flops) / total, 1e-12);
  EXPECT_DOUBLE_EQ(states[3][kStRest], 0.0);
}

TEST(EnvTest, BucketingAndActionMapping) {
  EXPECT_EQ(Bucket(0.0, 3), 0);
  EXPECT_EQ(Bucket(0.33, 3), 0);
  EXPECT_EQ(Bucket(0.34, 3), 1);
  EXPECT_EQ(Bucket(1.0, 3), 2);
  EXPECT_EQ(Bucket(7.0, 3), 2);
  EXPECT_EQ(Bucket(-1.0, 3), 0);
  EXPECT_EQ(Bucket(0.9, 1), 0);

  LayerChoices c;
  c.patterns = {Pattern::kUnstructured, Pattern::kBlock, Pattern::kNM};
  c.block_sizes = {2, 4, 8};
  c.precisions = {Precision::kFp32, Precision::kInt8};
  c.max_sparsity = 0.8;
  LayerConfig cfg = ActionToConfig({0.95, 0.5, 0.9, 0.6}, c);
  EXPECT_EQ(cfg.pattern, Pattern::kBlock);
  EXPECT_EQ(cfg.block, 8);
  EXPECT_EQ(cfg.precision, Precision::kInt8);
  EXPECT_DOUBLE_EQ(cfg.sparsity, 0.8);  // clamped to max_sparsity
  cfg = ActionToConfig({0.3, 0.1, 0, 0}, c);
  EXPECT_EQ(cfg.pattern, Pattern::kUnstructured);
  EXPECT_DOUBLE_EQ(cfg.sparsity, 0.3);
  EXPECT_EQ(cfg.precision, Precision::kFp32);
  cfg = ActionToConfig({0.3, 0.99, 0, 0}, c);
  EXPECT_EQ(cfg.pattern, Pattern::kNM);
  EXPECT_EQ(cfg.nm_n, 2);
  EXPECT_EQ(cfg.nm_m, 4);
  // Round trip through the bucket centres.
  for (const LayerConfig& x : {ActionToConfig({0.4, 0.5, 0.2, 0.9}, c), ActionToConfig({0.1, 0.9, 0.2, 0.1}, c)}) {
    EXPECT_EQ(ActionToConfig(ConfigToAction(x, c), c), x);
  }
  c.forced_channel = 0.25;
  cfg = ActionToConfig({0.9, 0.9, 0.9, 0.9}, c);
  EXPECT_EQ(cfg.pattern, Pattern::kChannel);
  EXPECT_DOUBLE_EQ(cfg.sparsity, 0.25);
  EXPECT_EQ(cfg.precision, Precision::kInt8);
}

TEST(EnvTest, BlockSizesMustDivideTheLayer) {
  auto m = Import("plain");
  EnvOptions options;
  options.space.patterns = {Pattern::kBlock};
  options.space.block_sizes = {3, 4, 7};
  options.budget = 1.0;
  auto env = MakeEnv(m->graph, options);
  LayerChoices c = env->ChoicesAt(0, Policy());  // conv2: 16 out channels
  EXPECT_EQ(c.block_sizes, std::vector<int>({4}));
}

// int8 on a grouped, not depthwise layer would run as a fake-quant graph (the int8 kernels
// take groups = 1 or depthwise): slower than fp32, so the search does not offer it there.
TEST(EnvTest, PrecisionsWithoutAKernelAreNotOffered) {
  auto m = Import("grouped");
  const Graph& g = m->graph;
  EnvOptions options;
  options.budget = 1.0;
  auto env = MakeEnv(g, options);
  int grouped = 0, others = 0;
  for (int t = 0; t < env->num_steps(); ++t) {
    const Layer& l = g.layers[env->layers()[t]];
    const LayerChoices c = env->ChoicesAt(t, Policy());
    if (l.groups > 1 && !l.depthwise()) {
      ++grouped;
      EXPECT_EQ(c.precisions, std::vector<Precision>({Precision::kFp32})) << l.name;
    } else {
      ++others;
      EXPECT_EQ(c.precisions, options.space.precisions) << l.name;
    }
  }
  EXPECT_GT(grouped, 0);
  EXPECT_GT(others, 0);
}

TEST(EnvTest, ChannelGroupSharesTheDecision) {
  auto m = Import("residual");
  const Graph& g = m->graph;
  EnvOptions options;
  options.space.patterns = {Pattern::kChannel, Pattern::kUnstructured};
  options.budget = 1.0;
  auto env = MakeEnv(g, options);
  // Find two steps of the same prunable group.
  int first = -1, second = -1;
  for (int t = 0; t < env->num_steps() && second < 0; ++t) {
    const Layer& l = g.layers[env->layers()[t]];
    for (int u = 0; u < t; ++u) {
      const Layer& o = g.layers[env->layers()[u]];
      if (o.out_group == l.out_group && l.out_group >= 0 && g.groups[l.out_group].prunable) {
        first = u, second = t;
        break;
      }
    }
  }
  ASSERT_GE(second, 0) << "the residual model has a group with two searched producers";
  env->Reset();
  for (int t = 0; t <= second; ++t) {
    // The first member chooses channel at 0.4; the second asks for unstructured at 0.7.
    Env::StepResult r = env->Step(t == first ? std::vector<double>{0.4, 0.1, 0, 0} : std::vector<double>{0.7, 0.9, 0, 0});
    if (t == first) {
      EXPECT_EQ(r.config.pattern, Pattern::kChannel);
    }
    if (t == second) {
      EXPECT_EQ(r.config.pattern, Pattern::kChannel);
      EXPECT_DOUBLE_EQ(r.config.sparsity, 0.4);
    }
  }
}

// The action wall: no sequence of actions yields a policy over budget.
TEST(EnvTest, ActionWallNeverExceedsTheBudget) {
  Rng rng(7);
  int episodes = 0;
  for (const std::string name : {"plain", "residual", "concat", "depthwise"}) {
    auto m = Import(name);
    for (const std::string cost : {"flops", "params", "bytes"}) {
      EnvOptions options;
      options.space.patterns = {Pattern::kChannel, Pattern::kBlock, Pattern::kUnstructured, Pattern::kNM};
      options.space.block_sizes = {2, 4};
      options.space.precisions = {Precision::kFp32, Precision::kInt8};
      options.budget = 0.6;
      auto env = Env::Create(&m->graph, *MakeCostModel(cost), options);
      ASSERT_TRUE(env.ok()) << name << " " << cost << ": " << env.status().ToString();
      for (int e = 0; e < 17; ++e, ++episodes) {
        (*env)->Reset();
        for (bool done = false; !done;) {
          std::vector<double> a(kActionDim);
          for (double& v : a) v = rng.Uniform() * 1.2 - 0.1;
          done = (*env)->Step(a).done;
        }
        const Policy& p = (*env)->policy();
        EXPECT_TRUE(ValidatePolicy(p, m->graph).ok()) << ValidatePolicy(p, m->graph).ToString();
        EXPECT_LE((*env)->Cost(p), (*env)->budget_cost() * (1 + 1e-9)) << name << " " << cost << " episode " << e;
      }
    }
  }
  EXPECT_GE(episodes, 200);
}

// int8 halves a layer's cost but runs no sparse kernel; fp32 1xN blocks pay by sparsity.
class Int8IgnoresSparsity final : public CostModel {
 public:
  std::string name() const override { return "int8-dense"; }
  double LayerCost(const Layer& layer, const LayerConfig& config) const override {
    if (config.precision == Precision::kInt8) return 0.5 * layer.flops;
    return layer.flops * (config.pattern == Pattern::kBlock ? 1 - config.sparsity : 1.0);
  }
};

// Maximum compression is the cheapest precision and pattern together, not the precision
// cheapest dense: a budget only fp32 blocks can meet is reachable.
TEST(EnvTest, MaximumCompressionTriesEveryPrecisionWithEveryPattern) {
  auto m = Import("plain");
  EnvOptions options;
  options.space.patterns = {Pattern::kBlock};
  options.space.block_sizes = {4};
  options.space.precisions = {Precision::kFp32, Precision::kInt8};
  options.skip_first_conv = options.skip_last_linear = false;
  options.budget = 0.3;
  auto env = Env::Create(&m->graph, std::make_shared<Int8IgnoresSparsity>(), options);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_LT((*env)->min_cost(), 0.3 * (*env)->dense_cost());
  (*env)->Reset();
  for (bool done = false; !done;) done = (*env)->Step(std::vector<double>(kActionDim, 1.0)).done;  // int8
  EXPECT_LE((*env)->Cost((*env)->policy()), (*env)->budget_cost() * (1 + 1e-9));
}

TEST(EnvTest, ImpossibleBudgetIsAClearError) {
  auto m = Import("plain");
  EnvOptions options;
  options.space.max_sparsity = 0.5;
  options.budget = 0.05;
  auto env = Env::Create(&m->graph, *MakeCostModel("flops"), options);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(env.status().message().find("flops=0.05x"), std::string::npos) << env.status().message();
  EXPECT_NE(env.status().message().find("at least"), std::string::npos) << env.status().message();
  options.budget = 1.5;
  EXPECT_EQ(Env::Create(&m->graph, *MakeCostModel("flops"), options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs
