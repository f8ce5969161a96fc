// A stored run's report through a CampaignRunSource (campaigns/run_comparison.h), with a
// source in memory: the baseline found past other owners' runs, and the figures a stored
// re-measurement gives the baseline.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "campaigns/run_comparison.h"

namespace acs {
namespace {

using acs::v1::CampaignRun;

CampaignRun RunOf(const std::string& owner, const std::string& date) {
  CampaignRun r;
  r.set_id("run-" + owner + "-" + date);
  r.set_owner(owner);
  r.set_campaign("nightly");
  r.set_date(date);
  return r;
}

// The listing of an admin: `runs` (newest date first) dated before `before`, at most a page,
// and every call's before_date.
struct Listing {
  std::vector<CampaignRun> runs;
  std::vector<std::string> calls;
  CampaignRunPage Page() {
    return [this](const std::string& before, int page_size) -> StatusOr<std::vector<CampaignRun>> {
      calls.push_back(before);
      std::vector<CampaignRun> out;
      for (const CampaignRun& r : runs) {
        if (r.date() < before && static_cast<int>(out.size()) < page_size) out.push_back(r);
      }
      return out;
    };
  }
};

TEST(CampaignComparison, FindsTheOwnersPreviousRunPastOtherOwnersRuns) {
  Listing l;
  // 450 runs of other owners (150 nights of 3) after alice's baseline of 2025-01-01.
  for (int i = 0; i < 150; ++i) {
    char date[16];
    std::snprintf(date, sizeof date, "2026-%02d-%02d", 12 - i / 25, 28 - i % 25);
    for (const char* owner : {"bob", "carol", "dave"}) l.runs.push_back(RunOf(owner, date));
  }
  l.runs.push_back(RunOf("alice", "2025-01-01"));
  l.runs.push_back(RunOf("alice", "2024-12-31"));
  StatusOr<std::optional<CampaignRun>> prev = PreviousRunByPages(RunOf("alice", "2027-01-01"), 200, l.Page());
  ASSERT_TRUE(prev.ok()) << prev.status().ToString();
  ASSERT_TRUE(prev->has_value());
  EXPECT_EQ((*prev)->date(), "2025-01-01");
  EXPECT_EQ(l.calls.size(), 3u);
  // None of alice's before her first run.
  prev = PreviousRunByPages(RunOf("alice", "2024-12-31"), 200, l.Page());
  ASSERT_TRUE(prev.ok());
  EXPECT_FALSE(prev->has_value());
}

TEST(CampaignComparison, ADateSplitBetweenPagesIsReadWhole) {
  Listing l;
  l.runs = {RunOf("bob", "2026-01-05"),   RunOf("carol", "2026-01-05"), RunOf("bob", "2026-01-04"),
            RunOf("carol", "2026-01-04"), RunOf("alice", "2026-01-04"), RunOf("alice", "2026-01-01")};
  // Pages of 3: the first ends inside 2026-01-04, the next starts at it again.
  StatusOr<std::optional<CampaignRun>> prev = PreviousRunByPages(RunOf("alice", "2026-01-06"), 3, l.Page());
  ASSERT_TRUE(prev.ok()) << prev.status().ToString();
  ASSERT_TRUE(prev->has_value());
  EXPECT_EQ((*prev)->date(), "2026-01-04");
  EXPECT_EQ(l.calls, (std::vector<std::string>{"2026-01-06", "2026-01-05"}));
  // A page of one date's runs only cannot be stepped past: an error, not a wrong baseline.
  prev = PreviousRunByPages(RunOf("alice", "2026-01-05"), 2, l.Page());
  EXPECT_EQ(prev.status().code(), StatusCode::kResourceExhausted);
}

// Runs, jobs and reports in memory; PreviousRun is the owner's latest earlier run.
class MemorySource final : public CampaignRunSource {
 public:
  std::vector<CampaignRun> runs;
  std::map<std::string, acs::v1::Job> jobs;
  StatusOr<CampaignRun> Run(const std::string& id) const override {
    for (const CampaignRun& r : runs) {
      if (r.id() == id) return r;
    }
    return Status::NotFound(id);
  }
  StatusOr<std::optional<CampaignRun>> PreviousRun(const CampaignRun& run) const override {
    std::optional<CampaignRun> best;
    for (const CampaignRun& r : runs) {
      if (r.owner() == run.owner() && r.date() < run.date() && (!best || r.date() > best->date())) best = r;
    }
    return best;
  }
  StatusOr<acs::v1::Job> Job(const std::string& id) const override {
    auto it = jobs.find(id);
    if (it == jobs.end()) return Status::NotFound(id);
    return it->second;
  }
  StatusOr<std::string> JobReport(const std::string& id) const override { return Status::NotFound(id); }
  ReportHeader CurrentHeader() const override { return ReportHeader(); }
};

// A stored run of one cell "a" whose job measured `speedup`, with the cell's re-measurement.
CampaignRun StoredRun(MemorySource* s, const std::string& date, double speedup, const std::string& remeasure_json) {
  CampaignRun r = RunOf("alice", date);
  r.set_spec_json(R"({"name": "nightly", "models": [{"name": "m", "sha256": ")" + std::string(64, 'a') +
                  R"(", "input": [1, 3, 8, 8], "data": "name:d"}], "budgets": ["latency=0.5x"], "agents": ["amc"]})");
  acs::v1::Job job;
  job.set_id("job-" + date);
  job.set_state(acs::v1::SUCCEEDED);
  job.set_dense_measured_latency_us(1000 * speedup);
  job.set_best_measured_latency_us(1000);
  s->jobs[job.id()] = job;
  acs::v1::CampaignCell* cell = r.add_cells();
  cell->set_key("a");
  cell->set_job_id(job.id());
  cell->set_state(acs::v1::SUCCEEDED);
  cell->set_remeasure_json(remeasure_json);
  s->runs.push_back(r);
  return r;
}

TEST(CampaignComparison, TheBaselinesStoredReMeasurementIsItsFigure) {
  MemorySource s;
  // The baseline first measured 2.0x, re-measured 1.6x (its latest); today measured 1.6x.
  StoredRun(&s, "2026-01-01", 2.0, R"({"runs": [{"worker_id": "w-1", "measured_us": 100, "dense_measured_us": 160}]})");
  const CampaignRun today = StoredRun(&s, "2026-01-02", 1.6, "");
  StatusOr<CampaignReport> r = ReportOfRun(s, today);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->cells.size(), 1u);
  EXPECT_EQ(r->cells[0].verdict, CellVerdict::kUnchanged);
  const MetricChange& m = r->cells[0].changes[0];
  ASSERT_EQ(m.metric, "measured_speedup");
  EXPECT_TRUE(m.baseline_remeasured);
  EXPECT_DOUBLE_EQ(*m.baseline, 1.6);
  EXPECT_DOUBLE_EQ(*m.baseline_measured, 2.0);
  // Against the baseline as given instead: none, the cell is new.
  r = ReportAgainst(s, today, std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cells[0].verdict, CellVerdict::kNew);
}

// Issue 16: a suspect cell's re-measurement stored with the run decides its verdict in the
// report of the stored run (what `acs campaign report` and the HTTP comparison read).
TEST(CampaignComparison, AStoredReMeasurementDecidesTheSuspectCellAndTheExitCode) {
  // Each today cell first measured 1.6x against 2.0x (-20%, band 0.1): suspect.
  const auto report_with = [](const std::string& remeasure_json) {
    MemorySource s;
    StoredRun(&s, "2026-01-01", 2.0, "");
    return ReportOfRun(s, StoredRun(&s, "2026-01-02", 1.6, remeasure_json));
  };
  const std::string runs = R"({"runs": [{"worker_id": "w-1", "measured_us": 100, "dense_measured_us": %1},
      {"worker_id": "w-1", "measured_us": 100, "dense_measured_us": %2},
      {"worker_id": "w-2", "measured_us": 100, "dense_measured_us": %3}]})";
  const auto with_runs = [&runs](const std::string& a, const std::string& b, const std::string& c) {
    std::string j = runs;
    j.replace(j.find("%1"), 2, a);
    j.replace(j.find("%2"), 2, b);
    j.replace(j.find("%3"), 2, c);
    return j;
  };

  // Measured again at 1.98x (median): within the band, noise; the run exits 0.
  StatusOr<CampaignReport> r = report_with(with_runs("198", "202", "195"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->cells.size(), 1u);
  EXPECT_EQ(r->cells[0].verdict, CellVerdict::kUnchanged);
  EXPECT_EQ(r->cells[0].remeasure, RemeasureOutcome::kNotConfirmed);
  EXPECT_EQ(r->cells[0].changes[0].flagged, 0);
  EXPECT_DOUBLE_EQ(*r->cells[0].changes[0].today, 1.6);
  EXPECT_DOUBLE_EQ(*r->cells[0].changes[0].remeasured, 1.98);
  EXPECT_EQ(r->counts.at("regressed"), 0);
  EXPECT_EQ(r->ExitCode(), 0);
  const std::string md = *RenderCampaignReport(*r, "md");
  EXPECT_NE(md.find("re-measured 1.980x"), std::string::npos) << md;
  EXPECT_NE(md.find("not confirmed (noise)"), std::string::npos) << md;

  // Measured again at 1.62x: the regression stands, exit 3.
  r = report_with(with_runs("162", "158", "170"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cells[0].verdict, CellVerdict::kRegressed);
  EXPECT_EQ(r->cells[0].remeasure, RemeasureOutcome::kConfirmed);
  EXPECT_EQ(r->ExitCode(), kExitRegressed);

  // Asked for, nothing measured: flagged on the first measurement, with the reason.
  r = report_with(R"({"runs": [], "error": "gave up after 600 s"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cells[0].verdict, CellVerdict::kRegressed);
  EXPECT_EQ(r->cells[0].remeasure, RemeasureOutcome::kUnavailable);
  EXPECT_EQ(r->ExitCode(), kExitRegressed);
  EXPECT_NE(RenderCampaignReport(*r, "md")->find("gave up after 600 s"), std::string::npos);
}

}  // namespace
}  // namespace acs
