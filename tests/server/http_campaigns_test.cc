// The read-only HTTP routes of campaign runs (server/http_campaigns.h) through the gateway
// on a loopback port: JSON of the runs and of a run compared with its baseline, and the
// owners' visibility rules.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/sqlite_db.h"
#include "server/campaign_runs.h"
#include "server/http_campaigns_cache.h"
#include "server/http_gateway.h"
#include "tests/server/gateway_fixture.h"

namespace acs::server {
namespace {

using nlohmann::json;

class HttpCampaignsTest : public test::GatewayFixture {
 protected:
  HttpCampaignsTest() : GatewayFixture("acs_http_campaigns_") {}
  void SetUp() override {
    StartGateway();
    if (HasFatalFailure()) return;
    store_ = parts_.store.get();
    alice_ = store_->CreateToken("alice", Role::kUser).value();
    bob_ = store_->CreateToken("bob", Role::kUser).value();
    worker_ = store_->CreateToken("worker-1", Role::kWorker).value();
    admin_ = store_->CreateToken("root", Role::kAdmin).value();
  }
  httplib::Result Get(const std::string& path, const std::string& token) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return httplib::Client("127.0.0.1", gateway_->port()).Get(path.c_str(), headers);
  }

  // The owner's run of campaign "nightly" on `date` with cells a and b, without jobs.
  StatusOr<CampaignRunRecord> StartRun(const std::string& owner, const std::string& date, const std::string& spec_json,
                                       const std::string& environment_json = "") {
    CampaignRunRecord run;
    run.environment_json = environment_json;
    run.owner = owner;
    run.campaign = "nightly";
    run.date = date;
    run.spec_hash = "h";
    run.spec_json = spec_json;
    run.cells = {{"a", "", "", "", ""}, {"b", "", "", "", ""}};
    bool created = false;
    return store_->StartCampaignRun(run, &created);
  }
  // Alice's run on `date` (a valid spec, an environment) with cells a and b given jobs of
  // these results (a job's test accuracy and measured speedup); the run's id.
  std::string StoredRun(const std::string& date, double accuracy_a, double speedup_a, double accuracy_b) {
    StatusOr<CampaignRunRecord> stored =
        StartRun("alice", date,
                 R"({"name": "nightly", "models": [{"name": "m", "sha256": ")" + std::string(64, 'a') +
                     R"(", "input": [1, 3, 8, 8], "data": "name:d"}], "budgets": ["flops=0.5x"], "agents": ["amc"]})",
                 R"({"acs_version": "0.1.0"})");
    EXPECT_TRUE(stored.ok()) << stored.status().ToString();
    if (!stored.ok()) return "";
    for (const auto& [key, accuracy, speedup] :
         {std::tuple{"a", accuracy_a, speedup_a}, std::tuple{"b", accuracy_b, 2.0}}) {
      JobProgress p;
      p.test_accuracy = accuracy;
      p.dense_test_accuracy = 0.9;
      p.test_samples = 100;
      p.dense_measured_us = 1000 * speedup;
      p.best_measured_us = 1000;
      EXPECT_TRUE(store_->SetCampaignCell(stored->id, key, parts_.StoredJob("alice", kJobSucceeded, p), "").ok());
    }
    return stored->id;
  }

  ServerStore* store_ = nullptr;
  std::string alice_, bob_, worker_, admin_;
};

TEST_F(HttpCampaignsTest, ListsAndGetsTheCallersRuns) {
  const std::string job = parts_.StoredJob("alice", kJobSucceeded);
  StatusOr<CampaignRunRecord> stored = StartRun("alice", "2026-01-02", "{}");
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(store_->SetCampaignCell(stored->id, "a", job, "").ok());

  httplib::Result list = Get("/api/v1/campaigns/runs?campaign=nightly&page_size=5", alice_);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  const json runs = json::parse(list->body);
  ASSERT_EQ(runs["runs"].size(), 1u);
  EXPECT_EQ(runs["runs"][0]["date"], "2026-01-02");
  EXPECT_EQ(runs["runs"][0]["cells"][0]["state"], "SUCCEEDED");
  EXPECT_EQ(runs["runs"][0]["cells"][1]["job_id"], "");

  httplib::Result one = Get("/api/v1/campaigns/runs/" + stored->id, alice_);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(json::parse(one->body)["spec_json"], "{}");

  EXPECT_EQ(json::parse(Get("/api/v1/campaigns/runs", bob_)->body)["runs"].size(), 0u);
  EXPECT_EQ(Get("/api/v1/campaigns/runs/" + stored->id, bob_)->status, 404);
  EXPECT_EQ(Get("/api/v1/campaigns/runs", "")->status, 401);
  EXPECT_EQ(Get("/api/v1/campaigns/runs", worker_)->status, 403);
  EXPECT_EQ(Get("/api/v1/campaigns/runs?page_size=x", alice_)->status, 400);
}

TEST_F(HttpCampaignsTest, ComparesARunWithTheOwnersPreviousRun) {
  const std::string first_id = StoredRun("2026-01-01", 0.9, 2.0, 0.9);
  const std::string today = StoredRun("2026-01-02", 0.5, 2.0, 0.9);
  // Bob's run of the same campaign and date is not alice's baseline.
  ASSERT_TRUE(StartRun("bob", "2026-01-01", "{}").ok());

  httplib::Result r = Get("/api/v1/campaigns/runs/" + today + "/comparison", alice_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json report = json::parse(r->body);
  EXPECT_EQ(report["campaign"], "nightly");
  EXPECT_EQ(report["run"]["id"], today);
  EXPECT_EQ(report["baseline"]["date"], "2026-01-01");
  EXPECT_EQ(report["counts"]["regressed"], 1);
  EXPECT_EQ(report["counts"]["unchanged"], 1);
  EXPECT_EQ(report["exit_code"], 3);
  ASSERT_EQ(report["cells"].size(), 2u);
  EXPECT_EQ(report["cells"][0]["key"], "a");
  EXPECT_EQ(report["cells"][0]["verdict"], "regressed");
  EXPECT_DOUBLE_EQ(report["cells"][0]["metrics"]["test_accuracy"]["baseline"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(report["cells"][0]["metrics"]["test_accuracy"]["today"].get<double>(), 0.5);
  EXPECT_EQ(report["cells"][0]["metrics"]["test_accuracy"]["flagged"], "regressed");
  EXPECT_EQ(report["cells"][1]["verdict"], "unchanged");
  ASSERT_EQ(report["groups"].size(), 1u);
  EXPECT_NEAR(report["groups"][0]["geomean_measured_speedup"].get<double>(), 2.0, 1e-9);

  // The first run has no baseline: every cell is new.
  const json first = json::parse(Get("/api/v1/campaigns/runs/" + first_id + "/comparison", alice_)->body);
  EXPECT_TRUE(first["baseline"].is_null());
  EXPECT_EQ(first["counts"]["new"], 2);

  EXPECT_EQ(Get("/api/v1/campaigns/runs/" + today + "/comparison", bob_)->status, 404);
  EXPECT_EQ(Get("/api/v1/campaigns/runs/run-000000000000/comparison", alice_)->status, 404);
  EXPECT_EQ(Get("/api/v1/campaigns/runs/" + today + "/comparison", "")->status, 401);
  EXPECT_EQ(Get("/api/v1/campaigns/runs/" + today + "/comparison", worker_)->status, 403);
  // A stored spec that does not parse (bob's "{}") cannot be compared: its error, as 400.
  const json bobs = json::parse(Get("/api/v1/campaigns/runs", bob_)->body);
  ASSERT_EQ(bobs["runs"].size(), 1u);
  httplib::Result bad = Get("/api/v1/campaigns/runs/" + bobs["runs"][0]["id"].get<std::string>() + "/comparison", bob_);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("stored spec"), std::string::npos) << bad->body;
}

// Issues 15/16: the baseline is the owner's previous run however many runs of other
// owners an admin sees first (the listing's page was 50).
TEST_F(HttpCampaignsTest, AnAdminsComparisonFindsTheOwnersBaselinePastOtherOwnersRuns) {
  StoredRun("2026-01-01", 0.9, 2.0, 0.9);
  const std::string today = StoredRun("2026-04-01", 0.5, 2.0, 0.9);
  for (int month : {2, 3}) {
    for (int day = 1; day <= 28; ++day) {
      char date[16];
      std::snprintf(date, sizeof date, "2026-%02d-%02d", month, day);
      ASSERT_TRUE(StartRun("bob", date, "{}").ok());
    }
  }
  for (const std::string& token : {admin_, alice_}) {
    httplib::Result r = Get("/api/v1/campaigns/runs/" + today + "/comparison", token);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json report = json::parse(r->body);
    ASSERT_FALSE(report["baseline"].is_null()) << r->body;
    EXPECT_EQ(report["baseline"]["date"], "2026-01-01");
    EXPECT_EQ(report["counts"]["regressed"], 1);
  }
  // The owner filter under it: an admin's lists that owner's runs, a user's none of another's.
  CampaignRunQuery query;
  query.campaign = "nightly";
  query.owner = "alice";
  CampaignRuns runs(store_, service_.get());
  StatusOr<std::vector<CampaignRunRecord>> listed = runs.List({0, "root", Role::kAdmin}, query);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].owner, "alice");
  listed = runs.List({0, "bob", Role::kUser}, query);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

// The comparison of ended runs is computed once, and again when a cell or the baseline
// changes.
TEST_F(HttpCampaignsTest, AnEndedRunsComparisonIsKeptUntilItsRunOrBaselineChanges) {
  StoredRun("2026-01-03", 0.9, 2.0, 0.9);
  const std::string today = StoredRun("2026-01-06", 0.5, 2.0, 0.9);
  const std::string path = "/api/v1/campaigns/runs/" + today + "/comparison";
  auto report = [&]() { return json::parse(Get(path, alice_)->body); };
  EXPECT_EQ(report()["cells"][0]["verdict"], "regressed");
  // The job of cell a changed under the stored run (an ended job never does): the
  // comparison is not read again, the kept one is answered.
  StatusOr<CampaignRunRecord> run = store_->GetCampaignRun(today);
  ASSERT_TRUE(run.ok());
  JobProgress p;
  p.test_accuracy = 0.9;
  p.dense_test_accuracy = 0.9;
  p.test_samples = 100;
  p.dense_measured_us = 2000;
  p.best_measured_us = 1000;
  ASSERT_TRUE(store_->UpdateJobProgress(run->cells[0].job_id, p.ToJson().dump()).ok());
  EXPECT_EQ(report()["cells"][0]["verdict"], "regressed");
  // A note on the cell changes the run: compared again, with the job as it is now.
  ASSERT_TRUE(store_->SetCampaignCell(today, "a", "", "looked at").ok());
  json now = report();
  EXPECT_EQ(now["counts"]["regressed"], 0);
  EXPECT_EQ(now["counts"]["unchanged"], 2);
  EXPECT_EQ(now["baseline"]["date"], "2026-01-03");
  // A run dated between them, stored afterwards (a date run by hand): the new baseline.
  StoredRun("2026-01-05", 0.9, 2.0, 0.9);
  EXPECT_EQ(report()["baseline"]["date"], "2026-01-05");
}

// Issues 15/16: a job deleted from the store (its row gone; the service cannot delete one)
// leaves its cell without a state: neither the comparison of its run nor that of the run
// it is the baseline of is answered from the cache afterwards.
TEST_F(HttpCampaignsTest, AComparisonIsNotKeptPastADeletedJobOfItsRunOrBaseline) {
  StoredRun("2026-01-01", 0.9, 2.0, 0.9);
  const std::string middle = StoredRun("2026-01-03", 0.9, 2.0, 0.9);
  const std::string last = StoredRun("2026-01-06", 0.5, 2.0, 0.9);
  auto get = [&](const std::string& id) { return Get("/api/v1/campaigns/runs/" + id + "/comparison", alice_); };
  for (const std::string& id : {middle, last}) {
    httplib::Result r = get(id);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  const std::string deleted = store_->GetCampaignRun(middle).value().cells[1].job_id;
  {
    auto db = Db::Open(parts_.db_path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)->Exec("PRAGMA foreign_keys=OFF; DELETE FROM jobs WHERE id = '" + deleted + "'").ok());
  }
  EXPECT_EQ(store_->GetCampaignRun(middle).value().cells[1].job_state, "");
  for (const std::string& id : {middle, last}) {  // its own run's job, its baseline's
    httplib::Result r = get(id);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << id << ": " << r->body;
    EXPECT_NE(r->body.find(deleted), std::string::npos) << r->body;
  }
}

TEST(ComparisonCacheTest, KeepsTheLeastRecentlyUsedOutPastItsCapacity) {
  ComparisonCache cache(2);
  cache.Put("a", "f1", "A");
  cache.Put("b", "f1", "B");
  EXPECT_EQ(cache.Get("a", "f1"), "A");           // a is now the most recent
  EXPECT_EQ(cache.Get("a", "f2"), std::nullopt);  // stored with another fingerprint
  cache.Put("c", "f1", "C");                      // b goes
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("b", "f1"), std::nullopt);
  EXPECT_EQ(cache.Get("a", "f1"), "A");
  EXPECT_EQ(cache.Get("c", "f1"), "C");
  cache.Put("a", "f2", "A2");  // replaces a's entry
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("a", "f1"), std::nullopt);
  EXPECT_EQ(cache.Get("a", "f2"), "A2");
}

TEST(ComparisonCacheTest, AFingerprintOnlyForEndedRunsAndOneForEachChange) {
  acs::v1::CampaignRun run;
  run.set_id("run-1");
  run.set_spec_hash("h");
  run.set_environment_json("{}");
  acs::v1::CampaignCell* cell = run.add_cells();
  cell->set_key("a");
  cell->set_job_id("job-1");
  cell->set_state(acs::v1::SEARCHING);
  EXPECT_EQ(ComparisonFingerprint(run, std::nullopt), std::nullopt);  // still running
  cell->set_state(acs::v1::SUCCEEDED);
  const std::optional<std::string> ended = ComparisonFingerprint(run, std::nullopt);
  ASSERT_TRUE(ended.has_value());
  run.add_cells()->set_key("never submitted");  // a cell without a job does not hold it back
  const std::optional<std::string> two = ComparisonFingerprint(run, std::nullopt);
  ASSERT_TRUE(two.has_value());
  EXPECT_NE(*two, *ended);
  acs::v1::CampaignRun baseline = run;
  baseline.set_id("run-0");
  EXPECT_NE(ComparisonFingerprint(run, baseline), two);
  baseline.mutable_cells(0)->set_state(acs::v1::VERIFYING);
  EXPECT_EQ(ComparisonFingerprint(run, baseline), std::nullopt);  // the baseline still running
  run.mutable_cells(0)->set_remeasure_json("{}");
  EXPECT_NE(ComparisonFingerprint(run, std::nullopt), two);
  run.set_environment_json("");  // the header would be the server's now
  EXPECT_EQ(ComparisonFingerprint(run, std::nullopt), std::nullopt);
}

TEST(ComparisonCacheTest, NoFingerprintWhileAJobOfTheRunOrItsBaselineIsDeleted) {
  acs::v1::CampaignRun run;
  run.set_id("run-1");
  run.set_environment_json("{}");
  acs::v1::CampaignCell* cell = run.add_cells();
  cell->set_key("a");
  cell->set_job_id("job-1");
  cell->set_state(acs::v1::SUCCEEDED);
  acs::v1::CampaignRun baseline = run;
  baseline.set_id("run-0");
  ASSERT_TRUE(ComparisonFingerprint(run, baseline).has_value());
  // A deleted job's row is gone: the store reads its cell's state as unspecified.
  acs::v1::CampaignRun without_job = run;
  without_job.mutable_cells(0)->clear_state();
  EXPECT_EQ(ComparisonFingerprint(without_job, baseline), std::nullopt);
  EXPECT_EQ(ComparisonFingerprint(run, without_job), std::nullopt);
}

}  // namespace
}  // namespace acs::server
