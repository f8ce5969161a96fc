// A job's time limit as the scheduler computes it (JobTimeLimit: the request's, capped by
// the server's) and as the records keep it: the request's time_limit_seconds and the
// progress's run_seconds survive the store's JSON, and a malformed or negative count reads
// as none.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/jobs.h"

namespace acs::server {
namespace {

JobRequest Limited(int64_t seconds) {
  JobRequest r;
  r.time_limit_seconds = seconds;
  return r;
}

TEST(JobTimeLimitTest, TheRequestsLimitCappedByTheServers) {
  EXPECT_EQ(JobTimeLimit(Limited(0), 0), 0);          // neither: none
  EXPECT_EQ(JobTimeLimit(Limited(0), 86400), 86400);  // the server's
  EXPECT_EQ(JobTimeLimit(Limited(3600), 0), 3600);    // the request's, the server has none
  EXPECT_EQ(JobTimeLimit(Limited(3600), 86400), 3600);
  EXPECT_EQ(JobTimeLimit(Limited(100000), 86400), 86400);  // capped
  EXPECT_EQ(JobTimeLimit(Limited(-5), 86400), 86400);      // refused at Submit; none of its own
}

TEST(JobTimeLimitTest, RecordsKeepTheLimitAndTheTimeRun) {
  JobRequest r = Limited(7200);
  StatusOr<JobRequest> back = JobRequest::FromJson(r.ToJson().dump());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->time_limit_seconds, 7200);
  // A request stored before the field: no limit of its own.
  nlohmann::json old = r.ToJson();
  old.erase("time_limit_seconds");
  back = JobRequest::FromJson(old.dump());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->time_limit_seconds, 0);
  old["time_limit_seconds"] = 1.5;  // not an integer
  EXPECT_FALSE(JobRequest::FromJson(old.dump()).ok());

  JobProgress p;
  p.run_seconds = 12.5;
  EXPECT_EQ(JobProgress::FromJson(p.ToJson().dump()).run_seconds, 12.5);
  nlohmann::json negative = p.ToJson();
  negative["run_seconds"] = -100;
  EXPECT_EQ(JobProgress::FromJson(negative.dump()).run_seconds, 0);
  negative.erase("run_seconds");
  EXPECT_EQ(JobProgress::FromJson(negative.dump()).run_seconds, 0);
}

}  // namespace
}  // namespace acs::server
