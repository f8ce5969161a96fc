// A job runner is confined (core/sandbox.h): it cannot open the server's database, and
// its job still completes through the server (server/job_channel.h); where the kernel's
// Landlock ABI allows, it can neither use TCP nor signal the server.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
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
    EXPECT_EQ(log.find(std::string("runner probe: ") + what + ": allowed"), std::string::npos) << what << "\n" << log;
  }
  EXPECT_EQ(server->Kill(SIGTERM), 0) << log;

  // Without confinement the server says so at start.
  server = StartServer("unconfined.log", {"--no-confine"});
  EXPECT_TRUE(WaitFor(
      [&] { return server->Log().find("job runners are not confined (--no-confine)") != std::string::npos; }, 30))
      << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

// A --datasets-dir holding the data dir would let the runners read the database: the server
// refuses to start, naming both, before it listens on either its gRPC or its HTTP address
// (no "listening" line, no "HTTP API" line: neither port was bound).
TEST_F(RobustnessTest, AServerWhoseDatasetsDirHoldsTheDataDirRefusesToStart) {
  const std::string http = "127.0.0.1:" + std::to_string(FreePort());
  auto server = StartServer("refused.log", {"--datasets-dir", dir_.string(), "--http-listen", http});
  const std::string refusal = "the data dir '" + data_ + "' is inside '" + dir_.string() + "'";
  EXPECT_TRUE(WaitFor([&] { return server->Log().find(refusal) != std::string::npos; }, 30)) << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 2) << server->Log();  // InvalidArgument's exit code, not SIGTERM's 0
  const std::string log = server->Log();
  EXPECT_NE(log.find("--datasets-dir"), std::string::npos) << log;
  EXPECT_EQ(log.find("listening on"), std::string::npos) << log;
  EXPECT_EQ(log.find("HTTP API on"), std::string::npos) << log;
}

// A listening abstract unix socket named "acs-test-probe:DATA_DIR" (the probe's target);
// its descriptor, -1 when it cannot listen.
int ListenAbstract(const std::string& data_dir) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = "acs-test-probe:" + data_dir;
  const size_t length = std::min(name.size(), sizeof address.sun_path - 1);
  std::memcpy(address.sun_path + 1, name.data(), length);
  const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 && listen(fd, 8) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// Where the kernel allows (Landlock ABI 4: TCP, 6: signals and abstract unix sockets), a
// confined runner can neither bind a TCP port, connect to the server's, reach the test's
// abstract unix socket nor signal the server (SIGWINCH, which it ignores); with
// --no-confine it can each, so the probe tells them apart. The probe runs before the job,
// which is not waited for.
TEST_F(RobustnessTest, AConfinedJobRunnerCannotUseTcpNorSignalTheServer) {
  const acs::StatusOr<int> abi = acs::WriteConfinementSupport();
  if (!abi.ok()) GTEST_SKIP() << "this kernel cannot confine the runners: " << abi.status().message();
  if (*abi < 4) GTEST_SKIP() << "this kernel has Landlock ABI " << *abi << ": TCP needs 4, signals 6";
  const int listener = ListenAbstract(data_);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  const std::string last = "runner probe: signalling the server: ";
  // The log of a server whose runner has probed, with `extra` flags.
  auto probe = [&](const std::string& log_name, std::vector<std::string> extra) {
    extra.push_back("--test-probe-runner-confinement");
    auto server = StartServer(log_name, extra);
    v1::SubmitJobRequest request = Request(UploadModel("plain", user_token_), "random", 3);
    request.set_top_k(0);
    SubmitOk(request, user_token_);
    EXPECT_TRUE(WaitFor([&] { return server->Log().find(last) != std::string::npos; }, 120)) << server->Log();
    server->Kill(SIGTERM);
    return server->Log();
  };
  std::string log = probe("confined.log", {});
  EXPECT_NE(log.find("runner probe: binding a TCP port: Permission denied"), std::string::npos) << log;
  EXPECT_NE(log.find("runner probe: connecting to the server's port: Permission denied"), std::string::npos) << log;
  if (*abi >= 6) {
    EXPECT_NE(log.find("runner probe: connecting to an abstract unix socket: Operation not permitted"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(last + "Operation not permitted"), std::string::npos) << log;
  }
  log = probe("unconfined.log", {"--no-confine"});
  for (const char* what : {"binding a TCP port", "connecting to the server's port",
                           "connecting to an abstract unix socket", "signalling the server"}) {
    EXPECT_NE(log.find(std::string("runner probe: ") + what + ": allowed"), std::string::npos) << what << "\n" << log;
  }
  close(listener);
  if (*abi < 6) GTEST_SKIP() << "this kernel has Landlock ABI " << *abi << ": signals were not checked (ABI 6)";
}

}  // namespace
