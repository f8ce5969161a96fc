// The comparison of two campaign runs, without a server.
#include "campaigns/campaign_report.h"

#include <gtest/gtest.h>

#include <cmath>
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
  return RunResults{{"run-" + date, date, "hash", ""}, std::move(cells)};
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
                                       Night("d1", {Cell("a <x>", 2, 0.9)}), {"0.1.0", {"cpu: version 2"}, {"w1"}, "", ""});
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

CellRemeasure Again(std::vector<double> speedups) {
  CellRemeasure m;
  for (double s : speedups) m.runs.push_back({"w-1", 100.0, 100.0 * s, ""});
  return m;
}

// A suspect cell measured again: a gated measured_speedup regression stands only when the
// re-measurement is worse than the baseline beyond the same band.
TEST(CampaignReport, ASuspectCellIsFlaggedOnlyWhenTheReMeasurementConfirmsIt) {
  CampaignCompare cmp;  // 5%, 3x
  cmp.gate = {"measured_speedup", "test_accuracy"};
  const RunResults base = Night("d1", {Cell("noise", 2, 0.9), Cell("real", 2, 0.9), Cell("acc", 2, 0.9),
                                       Cell("gone", 2, 0.9), Cell("later", 2, 0.9)});
  // Each first measured 1.6x (-20%, band 0.1): suspect.
  CellResult noise = Cell("noise", 1.6, 0.9), real = Cell("real", 1.6, 0.9), gone = Cell("gone", 1.6, 0.9);
  noise.remeasure = Again({1.98, 2.02, 1.95});  // median 1.98: within the band, noise
  real.remeasure = Again({1.62, 1.58, 1.7});    // median 1.62: confirmed
  CellResult acc = Cell("acc", 2, 0.5);         // accuracy 0.9 -> 0.5: deterministic
  acc.remeasure = Again({2.01});
  gone.remeasure = CellRemeasure();  // asked for, never made: flagged on the first measurement
  gone.remeasure->error = "gave up after 600 s";
  CellResult later = Cell("later", 1.6, 0.9);  // not measured again (yet): as first measured
  const CampaignReport r = CompareRuns("n", cmp, Night("d2", {noise, real, acc, gone, later}), base);

  const CellComparison& n = Find(r, "noise");
  EXPECT_EQ(n.verdict, CellVerdict::kUnchanged);
  EXPECT_EQ(n.remeasure, RemeasureOutcome::kNotConfirmed);
  EXPECT_EQ(n.changes[0].flagged, 0);
  EXPECT_DOUBLE_EQ(*n.changes[0].today, 1.6);  // the first measurement is kept, and shown
  EXPECT_DOUBLE_EQ(*n.changes[0].remeasured, 1.98);
  EXPECT_EQ(Find(r, "real").verdict, CellVerdict::kRegressed);
  EXPECT_EQ(Find(r, "real").remeasure, RemeasureOutcome::kConfirmed);
  EXPECT_EQ(Find(r, "acc").verdict, CellVerdict::kRegressed);
  EXPECT_EQ(Find(r, "acc").remeasure, RemeasureOutcome::kConfirmed);
  EXPECT_EQ(Find(r, "gone").verdict, CellVerdict::kRegressed);
  EXPECT_EQ(Find(r, "gone").remeasure, RemeasureOutcome::kUnavailable);
  EXPECT_EQ(Find(r, "later").remeasure, RemeasureOutcome::kNone);
  EXPECT_EQ(r.counts.at("regressed"), 4);

  // A run whose only suspect was noise exits 0, and its report says why.
  const CampaignReport quiet =
      CompareRuns("n", cmp, Night("d2", {noise}), Night("d1", {Cell("noise", 2, 0.9)}));
  EXPECT_EQ(quiet.ExitCode(), 0);
  const nlohmann::json j = nlohmann::json::parse(*RenderCampaignReport(quiet, "json"));
  EXPECT_EQ(j["cells"][0]["remeasure"]["outcome"], "not confirmed (noise)");
  EXPECT_DOUBLE_EQ(j["cells"][0]["remeasure"]["measured_speedup"].get<double>(), 1.98);
  EXPECT_DOUBLE_EQ(j["cells"][0]["metrics"]["measured_speedup"]["today"].get<double>(), 1.6);
  const std::string md = *RenderCampaignReport(quiet, "md");
  EXPECT_NE(md.find("measured speedup 1.600x, re-measured 1.980x"), std::string::npos) << md;
  EXPECT_NE(md.find("not confirmed (noise)"), std::string::npos) << md;
  const std::string html = *RenderCampaignReport(r, "html");
  EXPECT_NE(html.find("confirmed on re-measure"), std::string::npos);
}

// Issue 16: a cell measured again counts in its group's geomean with the re-measured
// speedup (the median of its runs), in both nights, and the report names those cells.
TEST(CampaignReport, GeomeansUseTheReMeasuredSpeedupAndNameTheCells) {
  CampaignCompare cmp;
  CellResult noisy = Cell("noisy", 1.0, 0.9);
  noisy.remeasure = Again({3.9, 4.0, 4.2});  // median 4.0 replaces the first 1.0
  CellResult unmade = Cell("unmade", 4.0, 0.9);
  unmade.remeasure = CellRemeasure();  // asked for, no run measured: the first 4.0 counts
  unmade.remeasure->error = "no worker";
  CellResult base_again = Cell("noisy", 9.0, 0.9);
  base_again.remeasure = Again({1.0});  // the baseline's own re-measurement: 1.0, not 9.0
  const CampaignReport r = CompareRuns("n", cmp, Night("d2", {Cell("plain", 1.0, 0.9), noisy, unmade}),
                                       Night("d1", {Cell("plain", 1.0, 0.9), base_again}));
  ASSERT_EQ(r.groups.size(), 1u);
  const GroupSummary& g = r.groups[0];
  EXPECT_NEAR(*g.geomean_speedup, std::cbrt(1.0 * 4.0 * 4.0), 1e-12);  // not cbrt(1 x 1 x 4)
  EXPECT_NEAR(*g.baseline_geomean_speedup, 1.0, 1e-12);                // not sqrt(1 x 9)
  EXPECT_EQ(g.remeasured, std::vector<std::string>{"noisy"});
  EXPECT_EQ(g.baseline_remeasured, std::vector<std::string>{"noisy"});
  // The cell's own comparison still shows its first measurement.
  EXPECT_DOUBLE_EQ(*Find(r, "noisy").changes[0].today, 1.0);

  const nlohmann::json j = nlohmann::json::parse(*RenderCampaignReport(r, "json"));
  EXPECT_EQ(j["groups"][0]["remeasured_cells"], nlohmann::json::array({"noisy"}));
  EXPECT_EQ(j["groups"][0]["baseline_remeasured_cells"], nlohmann::json::array({"noisy"}));
  const std::string md = *RenderCampaignReport(r, "md");
  EXPECT_NE(md.find(" | noisy |\n"), std::string::npos) << md;
  EXPECT_NE(md.find("re-measured speedup (median of the runs) of the cells measured again; today: noisy; baseline: "
                    "noisy."),
            std::string::npos)
      << md;
  EXPECT_NE(RenderCampaignReport(r, "html")->find("measured again; today: noisy"), std::string::npos);
  // Nothing measured again: no note.
  const std::string quiet =
      *RenderCampaignReport(CompareRuns("n", cmp, Night("d2", {Cell("plain", 1.0, 0.9)}), std::nullopt), "md");
  EXPECT_EQ(quiet.find("measured again"), std::string::npos) << quiet;
}

// Issues 15/16: a baseline cell measured again is judged by its latest (re-measured)
// figure, and each row says which figure its baseline is.
TEST(CampaignReport, ABaselineMeasuredAgainIsJudgedByItsReMeasuredFigure) {
  CampaignCompare cmp;  // 5%, 3x
  cmp.gate = {"measured_speedup", "test_accuracy"};
  CellResult cleared = Cell("cleared", 2.0, 0.9), caught = Cell("caught", 1.6, 0.9);
  cleared.remeasure = Again({1.58, 1.6, 1.62});  // first 2.0, latest 1.6
  caught.remeasure = Again({2.0});               // first 1.6, latest 2.0
  const CampaignReport r =
      CompareRuns("n", cmp, Night("d2", {Cell("cleared", 1.6, 0.9), Cell("caught", 1.6, 0.9), Cell("plain", 1.6, 0.9)}),
                  Night("d1", {cleared, caught, Cell("plain", 2.0, 0.9)}));
  const MetricChange& c = Find(r, "cleared").changes[0];
  EXPECT_EQ(Find(r, "cleared").verdict, CellVerdict::kUnchanged);  // 1.6 against 1.6, not 2.0
  EXPECT_TRUE(c.baseline_remeasured);
  EXPECT_DOUBLE_EQ(*c.baseline, 1.6);
  EXPECT_DOUBLE_EQ(*c.baseline_measured, 2.0);
  EXPECT_EQ(Find(r, "caught").verdict, CellVerdict::kRegressed);  // 1.6 against 2.0, not 1.6
  EXPECT_NEAR(Find(r, "caught").changes[0].relative, -0.2, 1e-12);
  EXPECT_EQ(Find(r, "plain").verdict, CellVerdict::kRegressed);
  EXPECT_FALSE(Find(r, "plain").changes[0].baseline_remeasured);
  EXPECT_FALSE(Find(r, "plain").changes[0].baseline_measured.has_value());

  const nlohmann::json j = nlohmann::json::parse(*RenderCampaignReport(r, "json"));
  for (const nlohmann::json& cell : j["cells"]) {
    const nlohmann::json& m = cell["metrics"]["measured_speedup"];
    EXPECT_EQ(m["baseline_figure"], cell["key"] == "plain" ? "measured" : "re-measured") << cell["key"];
    if (cell["key"] == "cleared") {
      EXPECT_DOUBLE_EQ(m["baseline_measured"].get<double>(), 2.0);
    }
    if (cell["key"] == "plain") {
      EXPECT_TRUE(m["baseline_measured"].is_null());
    }
  }
  const std::string md = *RenderCampaignReport(r, "md");
  EXPECT_NE(md.find("measured_speedup 1.6 (re-measured; measured 2) -> 1.6"), std::string::npos) << md;
  EXPECT_NE(md.find("measured_speedup 2 -> 1.6"), std::string::npos) << md;
  EXPECT_NE(RenderCampaignReport(r, "html")->find("1.6 (re-measured; measured 2) &rarr; 1.6"), std::string::npos);
}

// Issue 16: the band is k x the noise of repeat measurements on both sides: the spread of
// a baseline cell's re-measured runs, and of a suspect cell's own re-measured runs.
TEST(CampaignReport, TheBandCountsTheSpreadOfBothNightsReMeasuredRuns) {
  CampaignCompare cmp;  // 5%, 3x
  cmp.gate = {"measured_speedup"};
  // The baseline re-measured 1.8x 2.0x 2.2x (median 2.0, spread 0.4): band 3 x 0.4 = 1.2,
  // so 1.6x today (-0.4) is noise; without re-measured runs the band is the floor (0.1).
  CellResult wide = Cell("wide", 2.0, 0.9), single = Cell("single", 2.0, 0.9);
  wide.remeasure = Again({1.8, 2.0, 2.2});
  single.remeasure = Again({2.0});  // one run: no spread
  const CampaignReport base_side = CompareRuns(
      "n", cmp, Night("d2", {Cell("wide", 1.6, 0.9), Cell("single", 1.6, 0.9)}), Night("d1", {wide, single}));
  EXPECT_EQ(Find(base_side, "wide").verdict, CellVerdict::kUnchanged);
  EXPECT_NEAR(Find(base_side, "wide").changes[0].noise, 0.4, 1e-9);
  EXPECT_NEAR(Find(base_side, "wide").changes[0].band, 1.2, 1e-9);
  EXPECT_EQ(Find(base_side, "single").verdict, CellVerdict::kRegressed);
  EXPECT_NEAR(Find(base_side, "single").changes[0].band, 0.1, 1e-12);

  // Today first measured 1.6x against 2.0x (band 0.1): suspect. Re-measured 1.5x 1.7x 2.3x
  // (median 1.7, spread 0.8): -0.3 is within 3 x 0.8, not confirmed; re-measured 1.69x
  // 1.7x 1.71x (spread 0.02): the floor's band stands, confirmed.
  CellResult noisy = Cell("noisy", 1.6, 0.9), steady = Cell("steady", 1.6, 0.9);
  noisy.remeasure = Again({1.5, 1.7, 2.3});
  steady.remeasure = Again({1.69, 1.7, 1.71});
  const CampaignReport today_side = CompareRuns("n", cmp, Night("d2", {noisy, steady}),
                                                Night("d1", {Cell("noisy", 2.0, 0.9), Cell("steady", 2.0, 0.9)}));
  const CellComparison& n = Find(today_side, "noisy");
  EXPECT_EQ(n.remeasure, RemeasureOutcome::kNotConfirmed);
  EXPECT_EQ(n.verdict, CellVerdict::kUnchanged);
  EXPECT_NEAR(n.changes[0].noise, 0.8, 1e-9);
  EXPECT_NEAR(n.changes[0].band, 2.4, 1e-9);
  const CellComparison& s = Find(today_side, "steady");
  EXPECT_EQ(s.remeasure, RemeasureOutcome::kConfirmed);
  EXPECT_EQ(s.verdict, CellVerdict::kRegressed);
  EXPECT_NEAR(s.changes[0].band, 0.1, 1e-12);
  EXPECT_EQ(today_side.ExitCode(), kExitRegressed);
}

TEST(CampaignReport, RemeasureRoundTripsThroughJson) {
  CellRemeasure m = Again({1.5, 2.5});
  m.runs.push_back({"w-2", 0, 0, "no runtime measurement"});
  const CellRemeasure back = CellRemeasure::FromJson(m.ToJson());
  ASSERT_EQ(back.runs.size(), 3u);
  EXPECT_EQ(back.runs[2].error, "no runtime measurement");
  EXPECT_DOUBLE_EQ(*back.Speedup(), 2.0);
  EXPECT_FALSE(CellRemeasure::FromJson(nlohmann::json("x")).error.empty());
}

// The header's environment diff: what changed since the baseline, listed first.
TEST(CampaignReport, EnvironmentChangesSinceTheBaseline) {
  const nlohmann::json before = {
      {"acs_version", "0.1.0"},
      {"runtime", "acs 0.1.0 / libtorch 2.1.0"},
      {"predictors", {{"x86-avx2", 3}}},
      {"workers",
       {{{"id", "w-1"}, {"device_class", "x86-avx2"}, {"cpu_model", "EPYC"}, {"isa", "avx2"}, {"version", "0.1.0"},
         {"online", true}},
        {{"id", "w-2"}, {"device_class", "x86-avx2"}, {"cpu_model", "EPYC"}, {"isa", "avx2"}, {"version", "0.1.0"},
         {"online", true}}}}};
  nlohmann::json after = before;
  after["runtime"] = "acs 0.1.0 / libtorch 2.2.0";
  after["predictors"]["x86-avx2"] = 4;
  after["workers"][0]["isa"] = "avx512";
  after["workers"].erase(1);
  after["workers"].push_back({{"id", "w-3"}, {"device_class", "x86-avx2"}, {"version", "0.1.0"}, {"online", true}});
  bool known = false;
  const std::vector<std::string> changes = EnvironmentChanges(before.dump(), after.dump(), &known);
  EXPECT_TRUE(known);
  const std::vector<std::string> expected = {
      "server runtime: acs 0.1.0 / libtorch 2.1.0 -> acs 0.1.0 / libtorch 2.2.0",
      "predictor of x86-avx2: version 3 -> 4",
      "worker gone: w-2 (x86-avx2, EPYC, avx2, 0.1.0, online)",
      "worker w-1 isa: avx2 -> avx512",
      "worker added: w-3 (x86-avx2, 0.1.0, online)"};
  EXPECT_EQ(changes, expected);
  EXPECT_TRUE(EnvironmentChanges(before.dump(), before.dump(), &known).empty());
  EXPECT_TRUE(known);
  EXPECT_TRUE(EnvironmentChanges("", before.dump(), &known).empty());
  EXPECT_FALSE(known);

  RunResults base = Night("2026-01-01", {Cell("a", 2, 0.9)}), today = Night("2026-01-04", {Cell("a", 2, 0.9)});
  base.run.environment_json = before.dump();
  today.run.environment_json = after.dump();
  ReportHeader header;
  ASSERT_TRUE(HeaderFromEnvironment(today.run.environment_json, &header));
  EXPECT_EQ(header.runtime, "acs 0.1.0 / libtorch 2.2.0");
  EXPECT_EQ(header.predictors, std::vector<std::string>{"x86-avx2: version 4"});
  header.missed_nights = "2 night(s) missed";
  const CampaignReport r = CompareRuns("n", CampaignCompare(), today, base, header);
  EXPECT_EQ(r.baseline_age_days, 3);
  const std::string md = *RenderCampaignReport(r, "md");
  // The notices come before the header's list.
  const size_t notice = md.find("changed since the baseline: server runtime"), run = md.find("- run: ");
  ASSERT_NE(notice, std::string::npos) << md;
  EXPECT_LT(notice, run);
  EXPECT_LT(md.find("2 night(s) missed"), run);
  EXPECT_LT(md.find("the baseline (2026-01-01) is 3 days old"), run);
  const std::string html = *RenderCampaignReport(r, "html");
  EXPECT_NE(html.find("worker w-1 isa: avx2 -&gt; avx512"), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(*RenderCampaignReport(r, "json"));
  EXPECT_EQ(j["environment_changes"].size(), 5u);
  EXPECT_EQ(j["baseline_age_days"], 3);
}

TEST(CampaignReport, DaysBetweenDates) {
  EXPECT_EQ(DaysBetween("2026-02-27", "2026-03-01"), 2);
  EXPECT_EQ(DaysBetween("2026-03-01", "2026-03-01"), 0);
  EXPECT_FALSE(DaysBetween("yesterday", "2026-03-01"));
}

}  // namespace
}  // namespace acs
