#include "agents/ddpg.h"

#include <gtest/gtest.h>

#include <cmath>

namespace acs {
namespace {

// A two-step problem with a known optimum: the reward is highest when step 0 acts 0.2
// and step 1 acts 0.7 (action component 0; component 1 does not matter).
constexpr double kTarget[2] = {0.2, 0.7};

std::vector<double> ToyState(int step) { return {static_cast<double>(step), 1.0 - step, 0.5}; }

// Runs `episodes` episodes of the toy problem; returns every action taken, in order.
std::vector<std::vector<double>> RunToy(DdpgAgent& agent, int episodes) {
  std::vector<std::vector<double>> actions;
  for (int e = 0; e < episodes; ++e) {
    agent.BeginEpisode(2, 2);
    double error = 0;
    for (int t = 0; t < 2; ++t) {
      std::vector<double> a = agent.Act(ToyState(t));
      actions.push_back(a);
      error += std::abs(a[0] - kTarget[t]);
      Transition tr{ToyState(t), a, t == 0 ? ToyState(1) : std::vector<double>(), t == 1};
      agent.Observe(tr);
    }
    agent.EndEpisode(1.0 - error);
  }
  return actions;
}

DdpgOptions ToyOptions() {
  DdpgOptions o;
  o.hidden = 64;
  o.warmup_episodes = 30;
  o.updates_per_step = 2;
  o.sigma_decay = 0.99;  // explores longer than AMC's 0.95 on this small problem
  return o;
}

TEST(DdpgTest, LearnsAToyProblemWithAKnownOptimum) {
  DdpgAgent agent(3, ToyOptions());
  RunToy(agent, 400);
  EXPECT_LT(agent.sigma(), 0.02);  // exploration has decayed
  for (int t = 0; t < 2; ++t) {
    std::vector<double> a = agent.Greedy(ToyState(t), t);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_NEAR(a[0], kTarget[t], 0.1) << "step " << t;
  }
}

TEST(DdpgTest, WarmUpIsRandomThenNoiseDecays) {
  DdpgOptions o = ToyOptions();
  o.warmup_episodes = 5;
  DdpgAgent agent(1, o);
  EXPECT_EQ(agent.sigma(), 0.0);
  RunToy(agent, 5);
  EXPECT_DOUBLE_EQ(agent.sigma(), 0.5);
  RunToy(agent, 2);
  EXPECT_DOUBLE_EQ(agent.sigma(), 0.5 * 0.99 * 0.99);
  for (const auto& a : RunToy(agent, 10)) {
    for (double v : a) EXPECT_TRUE(v >= 0 && v <= 1) << v;
  }
}

TEST(DdpgTest, SameSeedSameActions) {
  DdpgOptions o = ToyOptions();
  o.warmup_episodes = 3;
  DdpgAgent a(7, o), b(7, o), c(8, o);
  auto ra = RunToy(a, 10), rb = RunToy(b, 10), rc = RunToy(c, 10);
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
}

TEST(DdpgTest, MovingAverageBaseline) {
  DdpgAgent agent(1, ToyOptions());
  agent.BeginEpisode(1, 1);
  agent.Act({0.0});
  agent.EndEpisode(2.0);
  EXPECT_DOUBLE_EQ(agent.baseline(), 2.0);
  agent.BeginEpisode(1, 1);
  agent.Act({0.0});
  agent.EndEpisode(4.0);
  EXPECT_DOUBLE_EQ(agent.baseline(), 0.95 * 2.0 + 0.05 * 4.0);
}

TEST(DdpgTest, CheckpointRestoreContinuesIdentically) {
  DdpgOptions o = ToyOptions();
  o.warmup_episodes = 4;
  o.replay_capacity = 10;  // wraps around before the checkpoint
  DdpgAgent agent(11, o);
  RunToy(agent, 8);
  const std::string checkpoint = agent.Checkpoint();
  const auto expected = RunToy(agent, 6);

  DdpgAgent restored(999, o);  // another seed: everything must come from the checkpoint
  ASSERT_TRUE(restored.Restore(checkpoint).ok());
  EXPECT_EQ(restored.episodes(), 8);
  const auto actual = RunToy(restored, 6);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    for (size_t k = 0; k < actual[i].size(); ++k) EXPECT_EQ(actual[i][k], expected[i][k]) << i << "," << k;  // bitwise
  }
}

TEST(DdpgTest, RestoreRejectsOtherCheckpoints) {
  DdpgAgent agent(1, ToyOptions());
  EXPECT_FALSE(agent.Restore("not json").ok());
  EXPECT_FALSE(agent.Restore(R"({"agent": "random", "rng": 1, "episodes": 0})").ok());
  DdpgAgent agmc(1, ToyOptions(), nullptr, "agmc");
  EXPECT_FALSE(agent.Restore(agmc.Checkpoint()).ok());
  DdpgOptions wider = ToyOptions();
  wider.hidden = 65;
  DdpgAgent other(1, wider);
  RunToy(other, 1);
  EXPECT_FALSE(agent.Restore(other.Checkpoint()).ok());
  std::string broken = other.Checkpoint();
  broken.replace(broken.find("\"nets\":\"") + 8, 4, "!!!!");
  EXPECT_FALSE(DdpgAgent(1, wider).Restore(broken).ok());
}

}  // namespace
}  // namespace acs
