// A job runner's file access is confined (core/sandbox.h): it cannot open the server's
// database, and its job still completes through the server (server/job_channel.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sandbox.h"
#include "jobs_fixture.h"
#include "robustness_fixture.h"

namespace {

using namespace acs::test_process;
namespace v1 = acs::v1;
using acs::test_jobs::States;
using acs::test_robustness::RobustnessTest;

// A job runner never opens the shared SQLite file: every row it writes goes through the
// server (server/job_channel.h). With Landlock it could not if it tried: the test hook
// --test-probe-runner-confinement makes the runner open the database for writing and for
// reading and the work and blob dirs before its job, and the kernel refuses each, while the
// job still completes, its states, events and artifacts applied by the server.
// --no-confine says so.
TEST_F(RobustnessTest, AJobRunnerCannotOpenTheDatabaseAndItsJobCompletesThroughTheServer) {
  if (acs::StatusOr<int> abi = acs::WriteConfinementSupport(); !abi.ok()) {
    GTEST_SKIP() << "this kernel cannot confine the runners: " << abi.status().message();
  }
  auto server = StartServer("server.log", {"--test-probe-runner-confinement"});
  v1::SubmitJobRequest request = Request(UploadModel("plain", user_token_), "random", 3);
  request.set_top_k(0);
  const v1::Job job = SubmitOk(request, user_token_);
  const std::vector<v1::JobEvent> events = Watch(job.id(), user_token_);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(States(events).back(), "SUCCEEDED") << server->Log();
  const v1::Job done = Get(job.id(), user_token_);
  EXPECT_EQ(done.episodes_done(), 3);
  EXPECT_GT(done.artifacts_size(), 0);
  grpc::Status s;
  EXPECT_FALSE(Download(job.id(), "compressed.pt", user_token_, &s).empty());
  EXPECT_TRUE(s.ok()) << s.error_message();
  const std::string log = server->Log();
  for (const char* what :
       {"writing the database", "reading the database", "listing the work dir", "listing the blobs"}) {
    EXPECT_NE(log.find(std::string("runner probe: ") + what + ": Permission denied"), std::string::npos) << what << "\n"
                                                                                                         << log;
  }
  EXPECT_EQ(log.find(": allowed"), std::string::npos) << log;
  EXPECT_EQ(server->Kill(SIGTERM), 0) << log;

  // Without confinement the server says so at start.
  server = StartServer("unconfined.log", {"--no-confine"});
  EXPECT_TRUE(WaitFor(
      [&] { return server->Log().find("job runners are not confined (--no-confine)") != std::string::npos; }, 30))
      << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

}  // namespace
