// The comparison of two campaign runs, without a server.
#include "cli/campaign_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace acs {
namespace {

CellResult Cell(const std::string& key, double speedup, double accuracy, double speedup_noise = 0) {
  CellResult c;
  c.key = key;
  c.job_id = "job-" + key;
  c.state = "succeeded";
  c.device_class = "cpu";
  c.agent = "amc";
  c.metrics = {{"measured_speedup", speedup}, {"test_accuracy", accuracy}};
  c.noise = {{"measured_speedup", speedup_noise}};
  c.accuracy_loss = 0.9 - accuracy;
  return c;
}

RunResults Night(const std::string& date, std::vector<CellResult> cells) {
  return RunResults{{"run-" + date, date, "hash"}, std::move(cells)};
}

const CellComparison& Find(const CampaignReport& r, const std::string& key) {
  for (const CellComparison& c : r.cells) {
    if (c.key == key) return c;
  }
  static CellComparison none;
  ADD_FAILURE() << "no cell " << key;
  return none;
}

TEST(CampaignReport, FirstRunHasOnlyNewCells) {
  const CampaignReport r = CompareRuns("n", CampaignCompare(), Night("d1", {Cell("a", 2, 0.9)}), std::nullopt);
  EXPECT_EQ(r.counts.at("new"), 1);
  EXPECT_EQ(r.counts.at("regressed"), 0);
  EXPECT_EQ(r.ExitCode(), 0);
}

TEST(CampaignReport, FlagsOnlyBeyondBothTheFloorAndTheNoise) {
  CampaignCompare cmp;  // 5%, 3x
  // a: -10% speedup but noise 0.1 (band 0.3): unchanged. b: -10% with no noise: regressed.
  // c: -3% accuracy: below the floor. d: +20% speedup: improved. e: test accuracy -50%.
  const RunResults base =
      Night("d1", {Cell("a", 2, 0.9, 0.1), Cell("b", 2, 0.9), Cell("c", 2, 0.9), Cell("d", 2, 0.9), Cell("e", 2, 0.8)});
  const RunResults today = Night("d2", {Cell("a", 1.8, 0.9, 0.1), Cell("b", 1.8, 0.9), Cell("c", 2, 0.873),
                                        Cell("d", 2.4, 0.9), Cell("e", 2, 0.4)});
  const CampaignReport r = CompareRuns("n", cmp, today, base);
  EXPECT_EQ(Find(r, "a").verdict, CellVerdict::kUnchanged);
  EXPECT_NEAR(Find(r, "a").changes[0].band, 0.3, 1e-12);
  EXPECT_EQ(Find(r, "b").verdict, CellVerdict::kRegressed);
  EXPECT_EQ(Find(r, "c").verdict, CellVerdict::kUnchanged);
  EXPECT_EQ(Find(r, "d").verdict, CellVerdict::kImproved);
  EXPECT_EQ(Find(r, "e").verdict, CellVerdict::kRegressed);
  EXPECT_EQ(r.counts.at("regressed"), 2);
  EXPECT_EQ(r.ExitCode(), kExitRegressed);
  // Most severe first: e (-50%) before b (-10%).
  EXPECT_EQ(r.cells[0].key, "e");
  EXPECT_EQ(r.cells[1].key, "b");
}

TEST(CampaignReport, UngatedMetricsAreShownButDoNotFail) {
  CampaignCompare cmp;
  cmp.gate = {"test_accuracy"};
  const CampaignReport r =
      CompareRuns("n", cmp, Night("d2", {Cell("a", 1.0, 0.9)}), Night("d1", {Cell("a", 2.0, 0.9)}));
  EXPECT_EQ(Find(r, "a").verdict, CellVerdict::kUnchanged);
  EXPECT_EQ(Find(r, "a").changes[0].flagged, -1);
  EXPECT_FALSE(Find(r, "a").changes[0].gated);
  EXPECT_EQ(r.ExitCode(), 0);
}

TEST(CampaignReport, FailedNewAndMissingCells) {
  CellResult failed = Cell("a", 0, 0);
  failed.state = "failed";
  failed.error = "boom";
  CellResult never = Cell("c", 0, 0);
  never.state = "pending";
  const CampaignReport r = CompareRuns("n", CampaignCompare(), Night("d2", {failed, Cell("b", 2, 0.9), never}),
                                       Night("d1", {Cell("a", 2, 0.9), Cell("gone", 2, 0.9)}));
  EXPECT_EQ(Find(r, "a").verdict, CellVerdict::kFailed);
  EXPECT_EQ(Find(r, "a").error, "boom");
  EXPECT_EQ(Find(r, "b").verdict, CellVerdict::kNew);
  EXPECT_EQ(Find(r, "c").verdict, CellVerdict::kFailed);
  EXPECT_EQ(Find(r, "gone").verdict, CellVerdict::kMissing);
  EXPECT_EQ(r.counts.at("failed"), 2);
  EXPECT_EQ(r.ExitCode(), kExitFailedCells);
}

TEST(CampaignReport, GroupsGeomeanSpeedupAndMeanAccuracyLoss) {
  const CampaignReport r =
      CompareRuns("n", CampaignCompare(), Night("d2", {Cell("a", 2, 0.8), Cell("b", 8, 0.9)}), std::nullopt);
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_NEAR(*r.groups[0].geomean_speedup, 4.0, 1e-12);
  EXPECT_NEAR(*r.groups[0].mean_accuracy_loss, 0.05, 1e-12);
  EXPECT_FALSE(r.groups[0].baseline_geomean_speedup.has_value());
}

TEST(CampaignReport, RendersJsonMarkdownAndSelfContainedHtml) {
  const CampaignReport r = CompareRuns("nightly", CampaignCompare(), Night("d2", {Cell("a <x>", 1, 0.5)}),
                                       Night("d1", {Cell("a <x>", 2, 0.9)}), {"0.1.0", {"cpu: version 2"}, {"w1"}});
  StatusOr<std::string> json = RenderCampaignReport(r, "json");
  ASSERT_TRUE(json.ok());
  const nlohmann::json j = nlohmann::json::parse(*json);
  EXPECT_EQ(j["counts"]["regressed"], 1);
  EXPECT_EQ(j["exit_code"], kExitRegressed);
  EXPECT_EQ(j["cells"][0]["metrics"]["test_accuracy"]["flagged"], "regressed");
  StatusOr<std::string> md = RenderCampaignReport(r, "md");
  ASSERT_TRUE(md.ok());
  EXPECT_NE(md->find("| a <x> | regressed |"), std::string::npos) << *md;
  StatusOr<std::string> html = RenderCampaignReport(r, "html", "http://h/jobs/");
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("<svg"), std::string::npos);
  EXPECT_NE(html->find("a &lt;x&gt;"), std::string::npos);
  EXPECT_NE(html->find("href=\"http://h/jobs/job-a &lt;x&gt;\""), std::string::npos);
  EXPECT_EQ(html->find("<script"), std::string::npos);
  EXPECT_EQ(html->find("<link"), std::string::npos);
  EXPECT_EQ(html->find("src="), std::string::npos);
  EXPECT_FALSE(RenderCampaignReport(r, "pdf").ok());
}

}  // namespace
}  // namespace acs
