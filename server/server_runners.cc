// The entry points of acs-server's job runner children (run-job, check-job): they reach
// the store only through the server, over the channel on descriptor 3.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "core/child_process.h"
#include "server/blob_store.h"
#include "server/job_channel.h"
#include "server/server_main.h"

namespace acs::server {
namespace {

// What a job runner child opens: the blob store (to find the blobs it reads) and a
// scheduler whose every call to the store goes to the server over the channel on
// descriptor 3 (server/job_channel.h). It never opens the SQLite file.
struct ChildParts {
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<RemoteJobHost> host;
  std::unique_ptr<JobScheduler> jobs;  // destroyed first
};

StatusOr<ChildParts> OpenChildParts(const Flags& flags, const std::string& own_dir) {
  const std::string dir = flags.Get("data-dir", "data/server");
  ChildParts p;
  ACS_ASSIGN_OR_RETURN(p.blobs, BlobStore::Open(dir));
  if (!own_dir.empty()) p.blobs->set_temp_dir(own_dir);
  p.host = std::make_unique<RemoteJobHost>(kJobChannelFd, own_dir);
  ACS_ASSIGN_OR_RETURN(SchedulerOptions options, SchedulerOptionsOf(flags, dir));
  p.jobs = std::make_unique<JobScheduler>(nullptr, p.blobs.get(), nullptr, nullptr, p.host.get(), options);
  p.jobs->set_host(p.host.get());
  return p;
}

// The errno text of a probe's call, or "allowed".
std::string ProbeAnswer(bool allowed) { return allowed ? "allowed" : std::strerror(errno); }

// Connects a new socket of `family` to `address`; whether the kernel let it.
bool ProbeConnect(int family, const sockaddr* address, socklen_t size) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool connected = connect(fd, address, size) == 0;
  const int error = errno;
  close(fd);
  errno = error;
  return connected;
}

// The test hook --test-probe-runner-confinement (tests/server/confinement_test.cc): before
// its job the runner tries to open what a hostile one would, the store's SQLite file for
// writing and for reading and the work and blob dirs, and logs what the kernel answered.
// It reads and writes nothing: no O_CREAT / O_TRUNC, each descriptor closed at once
// unused, and a runner holds no SQLite lock a close could drop. Then, sending nothing, it
// binds a loopback TCP port, connects to the server's (--listen, on 127.0.0.1) and to the
// abstract unix socket "acs-test-probe:DATA_DIR" (the test's), and sends the server
// SIGWINCH (ignored).
void ProbeConfinement(const Flags& flags, const std::string& dir) {
  const std::string db = DbPath(dir);
  const std::pair<const char*, std::pair<std::string, int>> tries[] = {
      {"writing the database", {db, O_WRONLY}},
      {"reading the database", {db, O_RDONLY}},
      {"listing the work dir", {(std::filesystem::path(dir) / "work").string(), O_RDONLY | O_DIRECTORY}},
      {"listing the blobs", {(std::filesystem::path(dir) / "blobs").string(), O_RDONLY | O_DIRECTORY}}};
  for (const auto& [what, how] : tries) {
    const int fd = open(how.first.c_str(), how.second | O_CLOEXEC);
    spdlog::warn("runner probe: {}: {}", what, fd >= 0 ? "allowed" : std::strerror(errno));
    if (fd >= 0) close(fd);
  }
  sockaddr_in loopback{};
  loopback.sin_family = AF_INET;
  loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool bound = fd >= 0 && bind(fd, reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback) == 0;
  spdlog::warn("runner probe: binding a TCP port: {}", ProbeAnswer(bound));
  if (fd >= 0) close(fd);
  const std::string listen = flags.Get("listen", "127.0.0.1:50051");
  loopback.sin_port = htons(static_cast<uint16_t>(std::atoi(listen.substr(listen.rfind(':') + 1).c_str())));
  const bool connected = ProbeConnect(AF_INET, reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback);
  spdlog::warn("runner probe: connecting to the server's port: {}", ProbeAnswer(connected));
  sockaddr_un abstract{};
  abstract.sun_family = AF_UNIX;
  const std::string name = "acs-test-probe:" + dir;
  const size_t length = std::min(name.size(), sizeof abstract.sun_path - 1);
  std::memcpy(abstract.sun_path + 1, name.data(), length);  // sun_path[0] == 0: abstract
  const bool reached = ProbeConnect(AF_UNIX, reinterpret_cast<const sockaddr*>(&abstract),
                                    static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length));
  spdlog::warn("runner probe: connecting to an abstract unix socket: {}", ProbeAnswer(reached));
  spdlog::warn("runner probe: signalling the server: {}", ProbeAnswer(kill(getppid(), SIGWINCH) == 0));
}

}  // namespace

int RunJobChild(const Flags& flags, const std::string& id) {
  spdlog::set_level(spdlog::level::from_str(flags.Get("log-level", "info")));
  const std::string dir = flags.Get("data-dir", "data/server");
  const std::string own_dir = (std::filesystem::path(dir) / "work" / id).string();
  if (flags.Has(kTestProbeRunners)) ProbeConfinement(flags, dir);
  auto parts = OpenChildParts(flags, own_dir);
  if (!parts.ok()) return Fail(parts.status());
  JobScheduler* jobs = parts->jobs.get();
  jobs->set_extract_dir((std::filesystem::path(jobs->JobDir(id)) / "datasets").string());
  std::thread signals([jobs] {
    char sig = 0;
    while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    jobs->RequestStop();
  });
  signals.detach();
  jobs->RunJobHere(id);
  return 0;
}

int CheckJobChild(const Flags& flags) {
  std::stringstream input;
  input << std::cin.rdbuf();
  // Its TMPDIR is its own directory (JobScheduler::ChildConfinement), removed when it ends.
  const char* tmp = std::getenv("TMPDIR");
  const std::string own_dir = tmp && *tmp ? tmp : "";
  auto parts = OpenChildParts(flags, own_dir);
  StatusOr<JobRequest> request = JobRequest::FromJson(input.str());
  if (parts.ok() && !own_dir.empty()) {
    parts->jobs->set_extract_dir((std::filesystem::path(own_dir) / "datasets").string());
  }
  Status s = !parts.ok() ? parts.status() : !request.ok() ? request.status() : parts->jobs->CheckModelAndData(*request);
  std::cout << StatusToJsonLine(s) << std::flush;
  return 0;
}

}  // namespace acs::server
