// RemeasureJob's bound (server/job_service.h): a job's queued or running re-measurements
// stay within the server's per-job limit, also when requests arrive at once; a request
// past it is RESOURCE_EXHAUSTED naming the limit and enqueues nothing; runs given up no
// longer count against it, and giving up a batch fails that batch's tasks alone.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/policy.h"
#include "server/job_service.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server {
namespace {

const Principal kAlice{1, "alice", Role::kUser};

class RemeasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(parts_.Open().ok());
    options_.max_open_remeasure_runs = 5;
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
    StatusOr<JobRecord> created = parts_.store->CreateJob(job);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    job_id_ = created->id;
  }
  int OpenTasks() {
    const std::vector<TaskRecord> tasks = parts_.store->TasksOfJob(job_id_).value();
    int n = 0;
    for (const TaskRecord& t : tasks) n += t.state == kTaskQueued;
    return n;
  }
  static std::vector<std::string> TaskIds(const JobService::RemeasureResult& r) {
    std::vector<std::string> ids;
    for (const JobService::RemeasureRun& run : r.runs) ids.push_back(run.task_id);
    return ids;
  }

  test::SchedulerParts parts_{"acs_remeasure_"};
  JobServiceOptions options_;
  std::string job_id_;
};

TEST_F(RemeasureTest, OpenRunsOfAJobStayWithinTheLimit) {
  JobService service(JobServiceParts::Of(parts_), options_);
  StatusOr<JobService::RemeasureResult> first = service.Remeasure(kAlice, job_id_, 3, {}, false);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->runs.size(), 3u);
  StatusOr<JobService::RemeasureResult> past = service.Remeasure(kAlice, job_id_, 3, {}, false);
  EXPECT_EQ(past.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(past.status().message().find("has 3 re-measurements queued or running"), std::string::npos)
      << past.status().message();
  EXPECT_NE(past.status().message().find("limit of 5 per job"), std::string::npos) << past.status().message();
  EXPECT_EQ(OpenTasks(), 3);
  // Up to the limit is accepted.
  ASSERT_TRUE(service.Remeasure(kAlice, job_id_, 2, {}, false).ok());
  EXPECT_EQ(OpenTasks(), 5);
  EXPECT_EQ(service.Remeasure(kAlice, job_id_, 1, {}, false).status().code(), StatusCode::kResourceExhausted);

  // Given-up runs no longer count.
  StatusOr<JobService::RemeasureResult> cancelled = service.Remeasure(kAlice, job_id_, 0, TaskIds(*first), true);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  for (const JobService::RemeasureRun& r : cancelled->runs) EXPECT_EQ(r.state, kTaskFailed);
  EXPECT_TRUE(service.Remeasure(kAlice, job_id_, 3, {}, false).ok());
}

TEST_F(RemeasureTest, GivingUpABatchFailsOnlyItsTasks) {
  JobService service(JobServiceParts::Of(parts_), options_);
  StatusOr<JobService::RemeasureResult> a = service.Remeasure(kAlice, job_id_, 2, {}, false);
  StatusOr<JobService::RemeasureResult> b = service.Remeasure(kAlice, job_id_, 3, {}, false);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  StatusOr<JobService::RemeasureResult> cancelled = service.Remeasure(kAlice, job_id_, 0, TaskIds(*a), true);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  ASSERT_EQ(cancelled->runs.size(), 2u);
  for (const JobService::RemeasureRun& r : cancelled->runs) {
    EXPECT_EQ(r.state, kTaskFailed);
    EXPECT_EQ(r.error, "the re-measurement was given up");
  }
  EXPECT_TRUE(cancelled->done);
  // The other batch is still queued, and still polled as such.
  StatusOr<JobService::RemeasureResult> polled = service.Remeasure(kAlice, job_id_, 0, TaskIds(*b), false);
  ASSERT_TRUE(polled.ok()) << polled.status().ToString();
  ASSERT_EQ(polled->runs.size(), 3u);
  for (const JobService::RemeasureRun& r : polled->runs) EXPECT_EQ(r.state, kTaskQueued);
  EXPECT_FALSE(polled->done);
  EXPECT_EQ(OpenTasks(), 3);
}

TEST_F(RemeasureTest, ConcurrentRequestsCannotTogetherPassTheLimit) {
  JobService service(JobServiceParts::Of(parts_), options_);
  // Each round, two requests of 3 runs (together 6 > 5) start at once: exactly one is
  // accepted. Its runs are given up before the next round.
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> ready{0};
    StatusOr<JobService::RemeasureResult> results[2] = {Status::Internal("not run"), Status::Internal("not run")};
    auto request = [&](int i) {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      results[i] = service.Remeasure(kAlice, job_id_, 3, {}, false);
    };
    std::thread first(request, 0), second(request, 1);
    first.join();
    second.join();
    const int accepted = results[0].ok() + results[1].ok();
    ASSERT_EQ(accepted, 1) << "round " << round << ": " << results[0].status().ToString() << " / "
                           << results[1].status().ToString();
    const StatusOr<JobService::RemeasureResult>& refused = results[0].ok() ? results[1] : results[0];
    EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
    ASSERT_EQ(OpenTasks(), 3) << "round " << round;
    const StatusOr<JobService::RemeasureResult>& ok = results[0].ok() ? results[0] : results[1];
    ASSERT_TRUE(service.Remeasure(kAlice, job_id_, 0, TaskIds(*ok), true).ok());
    ASSERT_EQ(OpenTasks(), 0);
  }
}

}  // namespace
}  // namespace acs::server
