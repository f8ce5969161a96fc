// RemeasureJob's bound (server/job_service.h): a job's queued or running re-measurements
// stay within the server's per-job limit, a request past it is RESOURCE_EXHAUSTED naming
// the limit and enqueues nothing, and runs given up no longer count against it.
#include <gtest/gtest.h>

#include "core/policy.h"
#include "server/job_service.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server {
namespace {

const Principal kAlice{1, "alice", Role::kUser};

TEST(RemeasureTest, OpenRunsOfAJobStayWithinTheLimit) {
  test::SchedulerParts parts("acs_remeasure_");
  ASSERT_TRUE(parts.Open().ok());
  JobServiceOptions options;
  options.max_open_remeasure_runs = 5;
  JobService service(JobServiceParts::Of(parts), options);
  // An ended job with a verified exported policy on device class m1.
  JobProgress progress;
  progress.device_class = "m1";
  Verification exported;
  exported.policy_hash = "ph-exported";
  progress.verifications.push_back(exported);
  progress.verify_policies.push_back(Policy().ToJson(-1));
  JobRecord job;
  job.owner = "alice";
  job.state = kJobSucceeded;
  job.request_json = JobRequest().ToJson().dump();
  job.progress_json = progress.ToJson().dump();
  job = parts.store->CreateJob(job).value();
  auto open_tasks = [&] {
    const std::vector<TaskRecord> tasks = parts.store->TasksOfJob(job.id).value();
    int n = 0;
    for (const TaskRecord& t : tasks) n += t.state == kTaskQueued;
    return n;
  };

  StatusOr<JobService::RemeasureResult> first = service.Remeasure(kAlice, job.id, 3, {}, false);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->runs.size(), 3u);
  StatusOr<JobService::RemeasureResult> past = service.Remeasure(kAlice, job.id, 3, {}, false);
  EXPECT_EQ(past.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(past.status().message().find("has 3 re-measurements queued or running"), std::string::npos)
      << past.status().message();
  EXPECT_NE(past.status().message().find("limit of 5 per job"), std::string::npos) << past.status().message();
  EXPECT_EQ(open_tasks(), 3);
  // Up to the limit is accepted.
  ASSERT_TRUE(service.Remeasure(kAlice, job.id, 2, {}, false).ok());
  EXPECT_EQ(open_tasks(), 5);
  EXPECT_EQ(service.Remeasure(kAlice, job.id, 1, {}, false).status().code(), StatusCode::kResourceExhausted);

  // Given-up runs no longer count.
  std::vector<std::string> ids;
  for (const JobService::RemeasureRun& r : first->runs) ids.push_back(r.task_id);
  StatusOr<JobService::RemeasureResult> cancelled = service.Remeasure(kAlice, job.id, 0, ids, true);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  for (const JobService::RemeasureRun& r : cancelled->runs) EXPECT_EQ(r.state, kTaskFailed);
  EXPECT_TRUE(service.Remeasure(kAlice, job.id, 3, {}, false).ok());
}

}  // namespace
}  // namespace acs::server
