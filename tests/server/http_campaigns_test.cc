// The read-only HTTP routes of campaign runs (server/http_campaigns.h) through the gateway
// on a loopback port: JSON of the runs and of a run compared with its baseline, and the
// owners' visibility rules.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <tuple>

#include "server/http_gateway.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server {
namespace {

using nlohmann::json;

class HttpCampaignsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(parts_.Open().ok());
    store_ = parts_.store.get();
    alice_ = store_->CreateToken("alice", Role::kUser).value();
    bob_ = store_->CreateToken("bob", Role::kUser).value();
    worker_ = store_->CreateToken("worker-1", Role::kWorker).value();
    service_ = std::make_unique<JobService>(JobServiceParts::Of(parts_), JobServiceOptions());
    auth_ = std::make_unique<Authenticator>(store_, /*no_auth=*/false);
    HttpGatewayOptions http;
    http.listen = "127.0.0.1:0";
    gateway_ = std::make_unique<HttpGateway>(service_.get(), auth_.get(), http);
    ASSERT_TRUE(gateway_->Start().ok());
  }
  void TearDown() override {
    gateway_.reset();
    service_.reset();
  }
  httplib::Result Get(const std::string& path, const std::string& token) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return httplib::Client("127.0.0.1", gateway_->port()).Get(path.c_str(), headers);
  }

  // The owner's run of campaign "nightly" on `date` with cells a and b, without jobs.
  StatusOr<CampaignRunRecord> StartRun(const std::string& owner, const std::string& date,
                                       const std::string& spec_json) {
    CampaignRunRecord run;
    run.owner = owner;
    run.campaign = "nightly";
    run.date = date;
    run.spec_hash = "h";
    run.spec_json = spec_json;
    run.cells = {{"a", "", "", "", ""}, {"b", "", "", "", ""}};
    bool created = false;
    return store_->StartCampaignRun(run, &created);
  }
  // Alice's run on `date` (a valid spec) with cells a and b given jobs of these results (a
  // job's test accuracy and measured speedup); the run's id.
  std::string StoredRun(const std::string& date, double accuracy_a, double speedup_a, double accuracy_b) {
    StatusOr<CampaignRunRecord> stored =
        StartRun("alice", date,
                 R"({"name": "nightly", "models": [{"name": "m", "sha256": ")" + std::string(64, 'a') +
                     R"(", "input": [1, 3, 8, 8], "data": "name:d"}], "budgets": ["flops=0.5x"], "agents": ["amc"]})");
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

  test::SchedulerParts parts_{"acs_http_campaigns_"};
  ServerStore* store_ = nullptr;
  std::string alice_, bob_, worker_;
  std::unique_ptr<JobService> service_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<HttpGateway> gateway_;
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

}  // namespace
}  // namespace acs::server
