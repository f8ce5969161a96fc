// A job's time limit as the scheduler computes it (JobTimeLimit: the request's, capped by
// the server's) and as the records keep it: the request's time_limit_seconds and the
// progress's run_seconds survive the store's JSON, and a malformed or negative count reads
// as none. A runner that writes no progress has its time run written again every period
// (JobRunTime). A latency job whose class has no online worker fails instead of waiting out
// its limit, preparing or verifying (its open tasks failed with the wait's message).
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "server/job_run_time.h"
#include "server/jobs.h"
#include "tests/server/scheduler_parts.h"

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

TEST(JobTimeLimitTest, ARunnerWritingNoProgressHasItsTimeRunWrittenEveryPeriod) {
  using std::chrono::milliseconds;
  const JobRunTime::Clock::time_point t0 = JobRunTime::Clock::now();
  JobProgress stored;
  stored.run_seconds = 100;
  stored.episodes_done = 4;
  JobRunTime time(100, stored.ToJson().dump(), t0);
  EXPECT_EQ(time.Seconds(t0 + milliseconds(2000)), 102);

  // Nothing due within a period of the runner's start; then the stored progress with the
  // time run, the rest as it was, and the period starts again.
  EXPECT_FALSE(time.Due(t0 + milliseconds(4000), 5));
  std::optional<std::string> due = time.Due(t0 + milliseconds(6000), 5);
  ASSERT_TRUE(due);
  EXPECT_EQ(JobProgress::FromJson(*due).run_seconds, 106);
  EXPECT_EQ(JobProgress::FromJson(*due).episodes_done, 4);
  EXPECT_FALSE(time.Due(t0 + milliseconds(10000), 5));

  // A progress write of the runner starts the period again and is what is written next.
  stored.episodes_done = 9;
  time.Wrote(stored.ToJson().dump(), t0 + milliseconds(10500));
  EXPECT_FALSE(time.Due(t0 + milliseconds(15000), 5));
  due = time.Due(t0 + milliseconds(16000), 5);
  ASSERT_TRUE(due);
  EXPECT_EQ(JobProgress::FromJson(*due).run_seconds, 116);
  EXPECT_EQ(JobProgress::FromJson(*due).episodes_done, 9);

  // A progress that is not a JSON object is never replaced.
  JobRunTime unreadable(0, "not json", t0);
  EXPECT_FALSE(unreadable.Due(t0 + milliseconds(60000), 5));
}

// Opens the parts with a job's wait on workers cut to 0.5 s, polled every 50 ms.
Status OpenWithShortWorkerWait(test::SchedulerParts& parts) {
  SchedulerOptions options;
  options.no_worker_seconds = 0.5;
  options.poll_seconds = 0.05;
  return parts.Open(options);
}

TEST(JobTimeLimitTest, ALatencyJobWithNoWorkerOfItsClassFailsWhilePreparing) {
  test::SchedulerParts parts("acs_no_worker_");
  ASSERT_TRUE(OpenWithShortWorkerWait(parts).ok());
  JobProgress progress;
  progress.device_class = "m1";
  const std::string id = parts.StoredJob("alice", kJobQueued, progress);  // a latency budget, the default

  // Its class's measurement campaign is started and waits on workers; none comes.
  parts.jobs->RunJobHere(id);
  StatusOr<JobRecord> ended = parts.store->GetJob(id);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->state, kJobFailed);
  EXPECT_EQ(ended->error,
            "no worker of device class m1 was online for 0.5 s while preparing (measuring for the latency predictor)");
}

TEST(JobTimeLimitTest, ALatencyJobWithNoWorkerOfItsClassFailsWhileVerifying) {
  test::SchedulerParts parts("acs_verify_no_worker_");
  ASSERT_TRUE(OpenWithShortWorkerWait(parts).ok());
  const std::string id = parts.StoredJob("alice", kJobVerifying);
  // Its verification task is queued for class m1, which has no worker.
  TaskRecord task;
  task.job_id = id;
  task.kind = kTaskMeasureModel;
  task.machine_id = "m1";
  task.spec_json = "{}";
  StatusOr<TaskRecord> queued = parts.store->EnqueueTask(task);
  ASSERT_TRUE(queued.ok()) << queued.status().ToString();
  JobProgress progress;
  progress.device_class = "m1";
  Verification v;
  v.task_id = queued->id;
  progress.verifications = {v};
  ASSERT_TRUE(parts.store->UpdateJobProgress(id, progress.ToJson().dump()).ok());

  parts.jobs->RunJobHere(id);
  const std::string waited = "no worker of device class m1 was online for 0.5 s while verifying";
  StatusOr<TaskRecord> failed = parts.store->GetTask(queued->id);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state, kTaskFailed);
  EXPECT_EQ(failed->error, waited);
  StatusOr<JobRecord> ended = parts.store->GetJob(id);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->state, kJobFailed);
  EXPECT_EQ(ended->error, "no policy could be measured on m1: " + waited);
}

}  // namespace
}  // namespace acs::server
