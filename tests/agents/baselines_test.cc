#include "agents/baselines.h"

#include <gtest/gtest.h>

#include <cmath>

#include "agents/search.h"
#include "tests/agents/agent_test_util.h"

namespace acs {
namespace {

using test_util::Import;
using test_util::ToyReward;

std::unique_ptr<Env> MakeEnv(const Graph& g, double budget) {
  EnvOptions options;
  options.space.patterns = {Pattern::kUnstructured, Pattern::kChannel};
  options.budget = budget;
  auto env = Env::Create(&g, *MakeCostModel("flops"), options);
  EXPECT_TRUE(env.ok()) << env.status().ToString();
  return std::move(env).value();
}

std::vector<std::string> Hashes(const SearchResult& r) {
  std::vector<std::string> out;
  for (const EpisodeRecord& e : r.episodes) out.push_back(e.policy.Hash());
  return out;
}

TEST(BaselinesTest, SameSeedSamePolicies) {
  auto m = Import("residual");
  for (const std::string name : {"random", "uniform", "evo"}) {
    std::vector<std::vector<std::string>> runs;
    for (uint64_t seed : {5, 5, 6}) {
      auto env = MakeEnv(m->graph, 0.6);
      auto agent = MakeBaselineAgent(name, seed, 12);
      ASSERT_TRUE(agent.ok());
      ToyReward reward(0.3);
      SearchOptions options;
      options.episodes = 40;
      auto r = RunSearch(*env, **agent, reward, options);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      runs.push_back(Hashes(*r));
    }
    EXPECT_EQ(runs[0], runs[1]) << name;
    if (name != "uniform") {
      EXPECT_NE(runs[0], runs[2]) << name;
    }
  }
  EXPECT_FALSE(MakeBaselineAgent("ddpg", 1).ok());
}

TEST(BaselinesTest, CheckpointRestoreContinuesIdentically) {
  auto m = Import("plain");
  for (const std::string name : {"random", "uniform", "evo"}) {
    auto env = MakeEnv(m->graph, 0.7);
    auto a = std::move(MakeBaselineAgent(name, 3)).value();
    ToyReward reward(0.3);
    SearchOptions options;
    options.episodes = 21;
    ASSERT_TRUE(RunSearch(*env, *a, reward, options).ok());
    auto b = std::move(MakeBaselineAgent(name, 99)).value();
    ASSERT_TRUE(b->Restore(a->Checkpoint()).ok()) << name;
    EXPECT_EQ(b->Checkpoint(), a->Checkpoint());
    auto ra = RunSearch(*env, *a, reward, options);
    auto rb = RunSearch(*env, *b, reward, options);
    EXPECT_EQ(Hashes(*ra), Hashes(*rb)) << name;
  }
  RandomAgent random(1);
  EXPECT_EQ(random.Restore("{\"agent\": \"evo\"}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(random.Restore("not json").code(), StatusCode::kInvalidArgument);
}

TEST(BaselinesTest, EvolutionImprovesOverItsFirstGeneration) {
  // Driven without an environment: reward peaks when every gene is 0.3.
  EvolutionaryAgentOptions options;
  options.population = 12;
  EvolutionaryAgent agent(11, options);
  const int steps = 6, dim = 2;
  auto fitness = [](const std::vector<std::vector<double>>& actions) {
    double err = 0;
    for (const auto& a : actions) for (double v : a) err += (v - 0.3) * (v - 0.3);
    return -err;
  };
  double first_best = -1e9, last_best = -1e9;
  for (int e = 0; e < 12 * 25; ++e) {
    agent.BeginEpisode(steps, dim);
    std::vector<std::vector<double>> actions;
    for (int t = 0; t < steps; ++t) {
      actions.push_back(agent.Act({}));
      agent.Observe({{}, actions.back(), {}, t == steps - 1});
    }
    double f = fitness(actions);
    if (e < 12) first_best = std::max(first_best, f);
    if (e >= 12 * 24) last_best = std::max(last_best, f);
    agent.EndEpisode(f);
  }
  EXPECT_EQ(agent.generation(), 25);
  EXPECT_GT(last_best, first_best);
  EXPECT_GT(last_best, 0.5 * first_best);  // the error at least halved
}

TEST(BaselinesTest, UniformAgentWalksTheGrid) {
  UniformAgent agent({5, 0.0});
  for (int e = 0; e < 5; ++e) {
    agent.BeginEpisode(3, kActionDim);
    EXPECT_DOUBLE_EQ(agent.Act({})[kActSparsity], e / 4.0);
    agent.EndEpisode(0);
  }
}

TEST(SearchTest, RecordsEveryEpisodeAndTheParetoFront) {
  auto m = Import("plain");
  auto env = MakeEnv(m->graph, 0.8);
  RandomAgent agent(2);
  ToyReward reward(0.3);
  SearchOptions options;
  options.episodes = 15;
  int calls = 0;
  options.on_episode = [&](const EpisodeRecord& e, const EpisodeRecord& best) {
    ++calls;
    EXPECT_GE(best.score.reward, e.score.reward);
  };
  auto r = RunSearch(*env, agent, reward, options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(calls, 15);
  ASSERT_EQ(r->episodes.size(), 15u);
  for (const EpisodeRecord& e : r->episodes) EXPECT_LE(e.cost_ratio, 0.8 + 1e-9);
  std::vector<int> front = ParetoFront(r->episodes);
  ASSERT_FALSE(front.empty());
  for (size_t i = 1; i < front.size(); ++i) {
    EXPECT_GT(r->episodes[front[i]].score.cost, r->episodes[front[i - 1]].score.cost);
    EXPECT_GT(r->episodes[front[i]].score.accuracy, r->episodes[front[i - 1]].score.accuracy);
  }
  for (const EpisodeRecord& e : r->episodes) {  // nothing dominates a front member
    for (int f : front) {
      const Score& s = r->episodes[f].score;
      EXPECT_FALSE(e.score.cost < s.cost && e.score.accuracy > s.accuracy);
    }
  }
}

TEST(RewardTest, AccuracyRewardScoresAndCaches) {
  auto m = Import("plain");
  torch::manual_seed(0);
  Dataset calib{torch::rand({16, 3, 16, 16}), {}, "calib"};
  Dataset val{torch::rand({32, 3, 16, 16}), torch::randint(0, 10, {32}), "val"};
  AccuracyReward reward(m.get(), calib, val);
  auto dense = reward.DenseAccuracy();
  ASSERT_TRUE(dense.ok()) << dense.status().ToString();
  Policy p;
  p.layers["features.conv2"] = {0.5, Pattern::kChannel};
  auto a = reward.Evaluate(p, 123.0);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_GE(a->accuracy, 0.0);
  EXPECT_LE(a->accuracy, 1.0);
  EXPECT_DOUBLE_EQ(a->reward, a->accuracy);
  auto b = reward.Evaluate(p, 123.0);
  EXPECT_EQ(reward.cache_hits(), 1);
  EXPECT_DOUBLE_EQ(b->accuracy, a->accuracy);
  // Without labels: agreement with the dense model, 1 for the dense policy (without
  // calibration data, which would re-estimate the batch-norm statistics).
  AccuracyReward fidelity(m.get(), Dataset{}, Dataset{val.images, {}, "unlabelled"});
  auto same = fidelity.Evaluate(Policy(), 1.0);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_DOUBLE_EQ(same->accuracy, 1.0);
  EXPECT_NEAR(RewardOf(RewardKind::kErrorLogCost, 0.9, std::exp(2.0)), -0.2, 1e-12);
}

}  // namespace
}  // namespace acs
