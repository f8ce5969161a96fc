#include "agents/search_session.h"

#include <gtest/gtest.h>

#include "tests/core/test_models.h"

namespace acs {
namespace {

// The best policy relaxed to the budget: less sparse, still within it, scored as one more
// episode.
TEST(SearchSessionTest, FillBudgetRelaxesTheBestPolicyToTheBudget) {
  SearchSessionOptions o;
  o.model_path = test_models::BuildTestModel("plain", 3);
  ASSERT_FALSE(o.model_path.empty());
  o.input_shape = test_models::TestInputShape();
  o.data_path = "/usr/share/datasets/fashion-mnist";
  o.budget_kind = "flops";
  o.budget_ratio = 0.5;
  o.agent = "random";
  o.episodes = 4;
  o.calibration_samples = 16;
  o.validation_samples = 32;
  o.space.patterns = {Pattern::kUnstructured, Pattern::kChannel};
  StatusOr<std::unique_ptr<SearchSession>> session = SearchSession::Create(o);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  SearchSession& s = **session;
  ASSERT_TRUE(s.Run(nullptr).ok());
  const int best = s.best();
  ASSERT_GE(best, 0);
  const EpisodeRecord before = s.episodes()[best];

  StatusOr<int> filled = s.FillBudget();
  ASSERT_TRUE(filled.ok()) << filled.status().ToString();
  if (before.cost_ratio >= 0.5 * (1 - 1e-3)) GTEST_SKIP() << "the best policy spends the budget already";
  ASSERT_EQ(*filled, static_cast<int>(s.episodes().size()) - 1) << before.cost_ratio << " " << before.policy.ToJson(-1);
  EXPECT_EQ(*filled, 4);
  const EpisodeRecord& e = s.episodes()[*filled];
  EXPECT_LE(e.cost_ratio, 0.5 + 1e-9);
  EXPECT_GT(e.cost_ratio, before.cost_ratio);
  for (const auto& [name, config] : e.policy.layers) {
    EXPECT_LE(config.sparsity, before.policy.Get(name).sparsity + 1e-12) << name;
    EXPECT_EQ(config.pattern, before.policy.Get(name).pattern) << name;
  }
  EXPECT_NE(e.policy.Hash(), before.policy.Hash());
  // Within the budget: it counts for best() and TopK().
  EXPECT_EQ(s.best() == *filled, e.score.reward > before.score.reward);
  bool listed = false;
  for (int i : s.TopK(10)) listed |= i == *filled;
  EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace acs
