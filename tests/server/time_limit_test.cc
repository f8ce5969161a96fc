// A job's time limit (SubmitJobRequest.time_limit_seconds) against the real acs-server: the
// server kills the job's runner once it has run that long and fails the job with a message
// naming the limit, never resuming it as a runner death, and serves on; the time its
// runners ran is kept across a server restart, so a resumed job gets only what is left,
// and across a killed server too, up to the runner's last progress write, or, while the
// job waits on workers and writes none, up to the server's last periodic write of it.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/sqlite_db.h"
#include "jobs_fixture.h"
#include "robustness_fixture.h"

namespace {

using namespace acs::test_process;
namespace v1 = acs::v1;
using acs::test_jobs::States;

class TimeLimitTest : public acs::test_robustness::RobustnessTest {
 protected:
  std::string DirPrefix() const override { return "acs_time_limit_it_"; }

  // The stored progress of a job, read from the stopped server's database.
  nlohmann::json StoredProgress(const std::string& id) {
    auto db = acs::Db::Open(data_ + "/acs.db");
    EXPECT_TRUE(db.ok()) << db.status().message();
    if (!db.ok()) return nullptr;
    auto q = (*db)->Prepare("SELECT progress_json FROM jobs WHERE id = ?");
    EXPECT_TRUE(q.ok()) << q.status().message();
    if (!q.ok()) return nullptr;
    q->Bind(1, id);
    auto row = q->Step();
    EXPECT_TRUE(row.ok() && *row) << id;
    if (!row.ok() || !*row) return nullptr;
    return nlohmann::json::parse(q->Text(0), nullptr, false);
  }
  void StoreProgress(const std::string& id, const nlohmann::json& progress) {
    auto db = acs::Db::Open(data_ + "/acs.db");
    ASSERT_TRUE(db.ok()) << db.status().message();
    auto q = (*db)->Prepare("UPDATE jobs SET progress_json = ? WHERE id = ?");
    ASSERT_TRUE(q.ok()) << q.status().message();
    q->Bind(1, progress.dump()).Bind(2, id);
    ASSERT_TRUE(q->Run().ok());
    EXPECT_EQ((*db)->Changes(), 1);
  }
  // The job once it has FAILED (waited for up to a minute); as last read when it has not.
  v1::Job Failed(const std::string& id) {
    v1::Job job;
    WaitFor(
        [&] {
          job = Get(id, user_token_);
          return job.state() == v1::FAILED;
        },
        60);
    return job;
  }
};

TEST_F(TimeLimitTest, AJobPastItsTimeLimitFailsOnceAndTheServerServesOn) {
  auto server = StartServer("server.log");
  auto worker = StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  const std::string plain = UploadModel("plain", user_token_);

  // A negative limit is refused, naming the field.
  v1::SubmitJobRequest negative = Request(plain, "random", 3);
  negative.set_time_limit_seconds(-1);
  v1::Job refused;
  grpc::Status s = Submit(negative, &refused, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("time_limit_seconds must be >= 0"), std::string::npos) << s.error_message();

  // A search far longer than its 2 s: the job fails with the limit named, not resumed.
  v1::SubmitJobRequest slow = Request(plain, "random", 100000);
  slow.set_time_limit_seconds(2);
  const v1::Job job = SubmitOk(slow, user_token_);
  EXPECT_EQ(job.request().time_limit_seconds(), 2);
  const std::vector<v1::JobEvent> events = Watch(job.id(), user_token_);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(States(events).back(), "FAILED") << server->Log();
  for (const v1::JobEvent& e : events) {
    EXPECT_EQ(e.message().find("resuming"), std::string::npos) << e.message();
  }
  const v1::Job failed = Get(job.id(), user_token_);
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.error().rfind("the job exceeded its time limit of 2 s while ", 0), 0u) << failed.error();
  EXPECT_EQ(failed.error().find("died"), std::string::npos) << failed.error();
  EXPECT_LT(failed.episodes_done(), 100000);

  // The server serves on: a job without a limit of its own (the server's) succeeds.
  const v1::Job next = SubmitOk(Request(plain, "random", 3), user_token_);
  EXPECT_EQ(next.request().time_limit_seconds(), 0);
  EXPECT_EQ(FinalState(next.id(), user_token_), "SUCCEEDED") << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(TimeLimitTest, ARestartedServerGivesAResumedJobOnlyWhatIsLeftOfItsLimit) {
  auto server = StartServer("server1.log");
  v1::SubmitJobRequest slow = Request(UploadModel("plain", user_token_), "random", 100000);
  slow.set_time_limit_seconds(3600);
  const v1::Job job = SubmitOk(slow, user_token_);
  ASSERT_TRUE(WaitFor([&] { return Get(job.id(), user_token_).episodes_done() > 0; }, 120)) << server->Log();

  // A server stopped while the job runs records how long its runner ran.
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
  nlohmann::json progress = StoredProgress(job.id());
  ASSERT_TRUE(progress.is_object());
  const double ran = progress.value("run_seconds", 0.0);
  EXPECT_GT(ran, 0);
  EXPECT_LT(ran, 3600);
  EXPECT_EQ(progress.value("runner_deaths", -1), 0);

  // With all of its hour spent, the restarted server fails it instead of resuming it.
  progress["run_seconds"] = 3600;
  StoreProgress(job.id(), progress);
  const int episodes = progress.value("episodes_done", -1);
  server = StartServer("server2.log");
  const v1::Job ended = Failed(job.id());
  ASSERT_EQ(ended.state(), v1::FAILED) << server->Log();
  EXPECT_EQ(ended.error(), "the job exceeded its time limit of 3600 s while searching");
  EXPECT_EQ(ended.episodes_done(), episodes);
  grpc::Status s;
  Get(job.id(), user_token_, &s);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(TimeLimitTest, AKilledServerKeepsTheTimeRunUpToTheRunnersLastProgress) {
  auto server = StartServer("server1.log");
  v1::SubmitJobRequest slow = Request(UploadModel("plain", user_token_), "random", 100000);
  slow.set_time_limit_seconds(3600);
  const v1::Job job = SubmitOk(slow, user_token_);
  ASSERT_TRUE(WaitFor([&] { return Get(job.id(), user_token_).episodes_done() >= 2; }, 120)) << server->Log();

  // A killed server writes nothing as it ends: the time stored is what the runner's
  // progress writes carried, as the server counted it.
  EXPECT_EQ(server->Kill(SIGKILL), -SIGKILL);
  const nlohmann::json progress = StoredProgress(job.id());
  ASSERT_TRUE(progress.is_object());
  const double before = progress.value("run_seconds", 0.0);
  EXPECT_GT(before, 0);
  EXPECT_LT(before, 3600);
  EXPECT_EQ(progress.value("runner_deaths", -1), 0);
  const int episodes = progress.value("episodes_done", -1);

  // The restarted server's runner counts on from there, again without an end of its own.
  server = StartServer("server2.log");
  ASSERT_TRUE(WaitFor([&] { return Get(job.id(), user_token_).episodes_done() > episodes; }, 120)) << server->Log();
  EXPECT_EQ(server->Kill(SIGKILL), -SIGKILL);
  const nlohmann::json resumed = StoredProgress(job.id());
  ASSERT_TRUE(resumed.is_object());
  EXPECT_GT(resumed.value("run_seconds", 0.0), before);
  EXPECT_LT(resumed.value("run_seconds", 0.0), 3600);
}

TEST_F(TimeLimitTest, AJobWaitingOnWorkersKeepsCountingItsTimeAcrossAKilledServer) {
  auto server = StartServer("server1.log");
  auto worker = StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  const v1::Job job = SubmitOk(Request(UploadModel("plain", user_token_), "random", 3), user_token_);
  // The only worker stops answering: the job's verification tasks wait in the queue.
  ASSERT_EQ(::kill(worker->pid(), SIGSTOP), 0);
  ASSERT_TRUE(WaitFor([&] { return Get(job.id(), user_token_).state() == v1::VERIFYING; }, 120)) << server->Log();
  const double at_wait = StoredProgress(job.id()).value("run_seconds", 0.0);

  // While it waits it writes no progress, yet its time run is stored on.
  double stored = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        stored = StoredProgress(job.id()).value("run_seconds", 0.0);
        return stored >= at_wait + 6;
      },
      60))
      << "stored " << stored << " s, " << at_wait << " s when it began to wait\n"
      << server->Log();
  EXPECT_EQ(Get(job.id(), user_token_).state(), v1::VERIFYING);

  // A server killed there keeps it: restarted with a limit below it (the server's cap of
  // every job's), the job fails at once, with no runner started.
  EXPECT_EQ(server->Kill(SIGKILL), -SIGKILL);
  const nlohmann::json progress = StoredProgress(job.id());
  ASSERT_TRUE(progress.is_object());
  EXPECT_GE(progress.value("run_seconds", 0.0), at_wait + 6);
  EXPECT_EQ(progress.value("runner_deaths", -1), 0);
  const int64_t limit = static_cast<int64_t>(std::ceil(at_wait)) + 3;
  server = StartServer("server2.log", {"--job-wall-seconds", std::to_string(limit)});
  const v1::Job ended = Failed(job.id());
  ASSERT_EQ(ended.state(), v1::FAILED) << server->Log();
  EXPECT_EQ(ended.error(),
            "the job runner exceeded the " + std::to_string(limit) + " s wall-clock limit while verifying");
  EXPECT_EQ(server->Log().find("runs in process"), std::string::npos) << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

}  // namespace
