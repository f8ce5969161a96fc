// The server store's campaign runs: one per owner, campaign and date, their cells' jobs.
#include <gtest/gtest.h>

#include "server/server_store.h"
#include "tests/temp_dir.h"

namespace acs::server {
namespace {

CampaignRunRecord RunOf(const std::string& owner, const std::string& date, const std::string& hash = "h1") {
  CampaignRunRecord r;
  r.owner = owner;
  r.campaign = "nightly";
  r.date = date;
  r.spec_hash = hash;
  r.spec_json = "{}";
  r.cells = {{"a", "", "", ""}, {"b", "", "", ""}};
  return r;
}

class CampaignRunsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ServerStore::Open(dir_.path() + "/server.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  acs::ScopedTempDir dir_{"acs_campaign_runs_"};
  std::unique_ptr<ServerStore> store_;
};

TEST_F(CampaignRunsStoreTest, OneRunPerOwnerCampaignAndDate) {
  bool created = false;
  StatusOr<CampaignRunRecord> first = store_->StartCampaignRun(RunOf("alice", "2026-01-01"), &created);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(created);
  EXPECT_EQ(first->id.rfind("run-", 0), 0u);
  ASSERT_EQ(first->cells.size(), 2u);
  EXPECT_EQ(first->cells[1].key, "b");
  StatusOr<CampaignRunRecord> again = store_->StartCampaignRun(RunOf("alice", "2026-01-01"), &created);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(again->id, first->id);
  // Another spec for the same date is refused; another owner gets a run of their own.
  EXPECT_EQ(store_->StartCampaignRun(RunOf("alice", "2026-01-01", "h2"), &created).status().code(),
            StatusCode::kFailedPrecondition);
  StatusOr<CampaignRunRecord> bob = store_->StartCampaignRun(RunOf("bob", "2026-01-01"), &created);
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(created);
  EXPECT_NE(bob->id, first->id);
}

TEST_F(CampaignRunsStoreTest, CellsKeepTheirFirstJob) {
  bool created = false;
  StatusOr<CampaignRunRecord> run = store_->StartCampaignRun(RunOf("alice", "2026-01-01"), &created);
  ASSERT_TRUE(run.ok());
  JobRecord job;
  job.owner = "alice";
  job.request_json = "{}";
  StatusOr<JobRecord> stored = store_->CreateJob(job);
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(store_->SetCampaignCell(run->id, "a", stored->id, "").ok());
  EXPECT_TRUE(store_->SetCampaignCell(run->id, "a", stored->id, "again").ok());
  EXPECT_EQ(store_->SetCampaignCell(run->id, "a", "job-other", "").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetCampaignCell(run->id, "zz", stored->id, "").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->SetCampaignCell(run->id, "a", "", "noted").ok());  // a note alone keeps the job
  StatusOr<CampaignRunRecord> read = store_->GetCampaignRun(run->id);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->cells[0].job_id, stored->id);
  EXPECT_EQ(read->cells[0].job_state, kJobQueued);
  EXPECT_EQ(read->cells[0].note, "noted");
  EXPECT_EQ(read->cells[1].job_id, "");
  EXPECT_EQ(read->cells[1].job_state, "");
  EXPECT_EQ(store_->GetCampaignRun("run-nope").status().code(), StatusCode::kNotFound);
}

TEST_F(CampaignRunsStoreTest, ListsNewestDateFirstAndBeforeADate) {
  bool created = false;
  for (const char* d : {"2026-01-02", "2026-01-01", "2026-01-03"}) {
    ASSERT_TRUE(store_->StartCampaignRun(RunOf("alice", d), &created).ok());
  }
  ASSERT_TRUE(store_->StartCampaignRun(RunOf("bob", "2026-01-05"), &created).ok());
  CampaignRunFilter f;
  f.owner = "alice";
  StatusOr<std::vector<CampaignRunRecord>> all = store_->ListCampaignRuns(f);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].date, "2026-01-03");
  EXPECT_EQ((*all)[0].spec_json, "");
  EXPECT_EQ((*all)[0].cells.size(), 2u);
  f.before_date = "2026-01-03";
  f.limit = 1;
  StatusOr<std::vector<CampaignRunRecord>> prev = store_->ListCampaignRuns(f);
  ASSERT_TRUE(prev.ok());
  ASSERT_EQ(prev->size(), 1u);
  EXPECT_EQ((*prev)[0].date, "2026-01-02");
  StatusOr<std::optional<CampaignRunRecord>> found = store_->FindCampaignRun("bob", "nightly", "2026-01-05");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->has_value());
}

}  // namespace
}  // namespace acs::server
