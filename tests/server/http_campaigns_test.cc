// The read-only HTTP routes of campaign runs (server/http_campaigns.h) through the gateway
// on a loopback port: JSON of the runs, and the owners' visibility rules.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

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

  test::SchedulerParts parts_{"acs_http_campaigns_"};
  ServerStore* store_ = nullptr;
  std::string alice_, bob_, worker_;
  std::unique_ptr<JobService> service_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<HttpGateway> gateway_;
};

TEST_F(HttpCampaignsTest, ListsAndGetsTheCallersRuns) {
  const std::string job = parts_.StoredJob("alice", kJobSucceeded);
  CampaignRunRecord run;
  run.owner = "alice";
  run.campaign = "nightly";
  run.date = "2026-01-02";
  run.spec_hash = "h";
  run.spec_json = "{}";
  run.cells = {{"a", "", "", "", ""}, {"b", "", "", "", ""}};
  bool created = false;
  StatusOr<CampaignRunRecord> stored = store_->StartCampaignRun(run, &created);
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

}  // namespace
}  // namespace acs::server
