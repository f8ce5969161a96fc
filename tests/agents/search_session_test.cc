#include "agents/search_session.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/agents/small_search.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

// The best policy relaxed to the budget: less sparse, still within it, scored as one more
// episode.
TEST(SearchSessionTest, FillBudgetRelaxesTheBestPolicyToTheBudget) {
  SearchSessionOptions o = SmallSearch();
  ASSERT_FALSE(o.model_path.empty());
  o.episodes = 4;
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

// With int8 in the space, the first episode quantizes every layer and prunes nothing where
// the budget allows (bytes: int8 weights take a quarter); the agent's episodes follow.
TEST(SearchSessionTest, FirstEpisodeIsThePrecisionSeed) {
  SearchSessionOptions o = SmallSearch();
  ASSERT_FALSE(o.model_path.empty());
  o.episodes = 3;
  o.budget_kind = "bytes";
  o.space.precisions = {Precision::kFp32, Precision::kInt8};
  StatusOr<std::unique_ptr<SearchSession>> session = SearchSession::Create(o);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  int calls = 0;
  ASSERT_TRUE((*session)->Run([&](const EpisodeRecord&, const EpisodeRecord&) { ++calls; }).ok());
  const std::vector<EpisodeRecord>& episodes = (*session)->episodes();
  ASSERT_EQ(episodes.size(), 3u);
  EXPECT_EQ(calls, 3);
  const Policy seed = episodes[0].policy;
  ASSERT_FALSE(seed.layers.empty());
  for (const auto& [name, config] : seed.layers) {
    EXPECT_EQ(config.precision, Precision::kInt8) << name;
    EXPECT_EQ(config.sparsity, 0.0) << name;
  }
  EXPECT_LE(episodes[0].cost_ratio, 0.5 + 1e-9);

  o.precision_seeds = false;  // off: the agent's episodes alone
  session = SearchSession::Create(o);
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE((*session)->Run(nullptr).ok());
  EXPECT_NE((*session)->episodes()[0].policy.Hash(), seed.Hash());
}

// Fine-tuning at a learning rate far too high: the exported model scores no lower than
// before it, and the report says which weights and statistics were kept.
TEST(SearchSessionTest, ExportNeverFineTunesTheModelWorse) {
  SearchSessionOptions o = SmallSearch();
  ASSERT_FALSE(o.model_path.empty());
  o.episodes = 2;
  o.validation_samples = 64;
  o.fine_tune_epochs = 2;
  o.fine_tune_samples = 128;
  o.fine_tune_learning_rate = 1e4;
  StatusOr<std::unique_ptr<SearchSession>> session = SearchSession::Create(o);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  SearchSession& s = **session;
  ASSERT_TRUE(s.Run(nullptr).ok());
  ASSERT_GE(s.best(), 0);
  const std::string dir = (std::filesystem::temp_directory_path() / "acs_export_fine_tune").string();
  StatusOr<ExportedSearch> exported = s.Export(s.episodes()[s.best()].policy, dir);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  ASSERT_GE(exported->accuracy_before_fine_tune, 0);
  ASSERT_GE(exported->fine_tune_kept_epoch, 0);
  if (exported->fine_tune_kept_epoch == 0) {
    EXPECT_DOUBLE_EQ(exported->exported_accuracy, exported->accuracy_before_fine_tune);
  } else {
    EXPECT_GE(exported->exported_accuracy, exported->accuracy_before_fine_tune);
  }
  std::ifstream in(exported->report_path);
  const nlohmann::json report = nlohmann::json::parse(in);
  EXPECT_EQ(report["fine_tune"]["kept_epoch"].get<int64_t>(), exported->fine_tune_kept_epoch);
  EXPECT_DOUBLE_EQ(report["fine_tune"]["learning_rate"].get<double>(), 1e4);
  // Re-estimation on the calibration samples follows trained weights only.
  const nlohmann::json& reestimated = report["fine_tune"]["reestimated"];
  ASSERT_TRUE(reestimated.is_object()) << report["fine_tune"].dump();
  if (exported->fine_tune_kept_epoch == 0) {
    EXPECT_FALSE(reestimated["kept"].get<bool>());
  }
  if (reestimated["kept"].get<bool>()) {
    EXPECT_GE(reestimated["accuracy"].get<double>(), 0);
  }
  EXPECT_DOUBLE_EQ(report["exported_accuracy"].get<double>(), exported->exported_accuracy);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace acs
