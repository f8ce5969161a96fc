#include "core/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace acs {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Between fork and exec: async-signal-safe calls only. `envp` null: this process's environment.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, const ProcessLimits& limits,
                            const WriteSandbox& sandbox, int in_fd, int out_fd, int channel_fd, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before the line above
  dup2(in_fd, STDIN_FILENO);
  dup2(out_fd, STDOUT_FILENO);
  // Before the descriptors close: the ruleset is one of them.
  if (!sandbox.ApplyInChild()) _exit(kConfinementFailedExit);
  // The channel becomes descriptor 3, kept across exec.
  unsigned first_closed = 3;
  if (channel_fd >= 0) {
    if (channel_fd == 3) {
      if (fcntl(3, F_SETFD, 0) != 0) _exit(127);
    } else if (dup2(channel_fd, 3) != 3) {
      _exit(127);
    }
    first_closed = 4;
  }
  // Nothing else of the server's (sockets, the SQLite file) reaches the child.
  if (syscall(SYS_close_range, first_closed, ~0U, 0U) != 0) {
    for (int fd = static_cast<int>(first_closed); fd < 4096; ++fd) close(fd);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGTERM, SIGINT, SIGPIPE}) sigaction(sig, &dfl, nullptr);
  if (limits.memory_bytes > 0) {
    const rlimit r{static_cast<rlim_t>(limits.memory_bytes), static_cast<rlim_t>(limits.memory_bytes)};
    setrlimit(RLIMIT_AS, &r);
  }
  if (limits.cpu_seconds > 0) {
    // SIGXCPU at the soft limit, SIGKILL a second later if it is caught.
    const rlimit r{static_cast<rlim_t>(limits.cpu_seconds), static_cast<rlim_t>(limits.cpu_seconds + 1)};
    setrlimit(RLIMIT_CPU, &r);
  }
  if (envp != nullptr) {
    execve(argv[0], argv, envp);
  } else {
    execv(argv[0], argv);
  }
  _exit(127);
}

// This process's environment with TMPDIR and SQLITE_TMPDIR set to `temp_dir`.
std::vector<std::string> EnvironmentWithTempDir(const std::string& temp_dir) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.rfind("TMPDIR=", 0) == 0 || entry.rfind("SQLITE_TMPDIR=", 0) == 0) continue;
    env.push_back(entry);
  }
  env.push_back("TMPDIR=" + temp_dir);
  env.push_back("SQLITE_TMPDIR=" + temp_dir);
  return env;
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  char text[64];
  if (bytes >= (1LL << 30) && bytes % (1LL << 30) == 0) {
    std::snprintf(text, sizeof text, "%lld GiB", static_cast<long long>(bytes >> 30));
  } else if (bytes >= (1LL << 30)) {
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1LL << 30));
  } else {
    std::snprintf(text, sizeof text, "%lld MiB", static_cast<long long>(bytes >> 20));
  }
  return text;
}

int64_t OwnMemoryLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<int64_t>(r.rlim_cur);
}

std::string OutOfMemoryMessage(const std::string& what, const std::string& who, const std::string& doing) {
  if (what.find("allocate") == std::string::npos && what.find("not enough memory") == std::string::npos &&
      what.find("bad_alloc") == std::string::npos) {
    return "";
  }
  const int64_t limit = OwnMemoryLimit();
  return who + " ran out of memory while " + doing +
         (limit > 0 ? " (its limit is " + FormatBytes(limit) + ")" : std::string()) + ": " + what;
}

StatusOr<std::string> OwnProgram() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Status::Unavailable("cannot find this process's own program: " + ec.message());
  return self.string();
}

std::string DescribeExit(const ProcessExit& exit, const ProcessLimits& limits) {
  if (exit.ok()) return "";
  char text[160];
  if (exit.wall_timeout) {
    std::snprintf(text, sizeof text, "exceeded the %g s wall-clock limit", limits.wall_seconds);
  } else if (exit.signal == SIGXCPU) {
    std::snprintf(text, sizeof text, "exceeded the %lld s CPU-time limit", static_cast<long long>(limits.cpu_seconds));
  } else if (exit.signal != 0) {
    std::snprintf(text, sizeof text, "was killed by signal %d (%s)", exit.signal, strsignal(exit.signal));
    std::string s = text;
    if (limits.memory_bytes > 0 && (exit.signal == SIGKILL || exit.signal == SIGABRT || exit.signal == SIGSEGV)) {
      s += "; its memory limit is " + FormatBytes(limits.memory_bytes);
    }
    return s;
  } else if (exit.code == 127) {
    return "could not be started";
  } else if (exit.code == kConfinementFailedExit && limits.writes.enabled) {
    return "could not be confined (the kernel refused its Landlock ruleset or seccomp filter)";
  } else {
    std::snprintf(text, sizeof text, "exited with status %d", exit.code);
  }
  return text;
}

std::string StatusToJsonLine(const Status& status) {
  return nlohmann::json{{"code", static_cast<int>(status.code())}, {"message", status.message()}}.dump() + "\n";
}

Status StatusFromJsonLine(const std::string& text) {
  // The last line: a library may have written before it.
  std::string line = text;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  line = line.substr(line.rfind('\n') == std::string::npos ? 0 : line.rfind('\n') + 1);
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  const int code = j.is_object() && j.contains("code") && j["code"].is_number_integer() ? j["code"].get<int>() : -1;
  if (code < 0 || code >= kNumStatusCodes || !j.contains("message") ||
      !j["message"].is_string()) {
    return Status::Internal("a child process answered '" + text.substr(0, 200) + "' instead of a status");
  }
  if (code == 0) return Status::Ok();
  return Status(static_cast<StatusCode>(code), j["message"].get<std::string>());
}

StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(const std::vector<std::string>& argv,
                                                            const ProcessLimits& limits, const std::string& input,
                                                            int channel_fd) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return Status::InvalidArgument("a child process needs an absolute program path");
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Everything that allocates happens before fork.
  ACS_ASSIGN_OR_RETURN(WriteSandbox sandbox, WriteSandbox::Make(limits.writes));
  const std::vector<std::string> env =
      limits.writes.temp_dir.empty() ? std::vector<std::string>() : EnvironmentWithTempDir(limits.writes.temp_dir);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // stdin is a socket so that writing to a child that died early gives EPIPE, not SIGPIPE.
  int in[2], out[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
    return Status::Unavailable(std::string("socketpair: ") + std::strerror(errno));
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return Status::Unavailable(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ExecChild(args.data(), env.empty() ? nullptr : envp.data(), limits, sandbox, in[0], out[1], channel_fd, parent);
  }
  close(in[0]);
  close(out[1]);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  child->pid_ = pid;
  child->out_fd_ = out[0];
  child->limits_ = limits;
  child->started_ = Now();
  child->writes_confined_ = sandbox.confines();
  // The child reads all of its input first; one that dies before gives EPIPE, which its
  // exit status then explains.
  for (size_t at = 0; at < input.size();) {
    const ssize_t n = send(in[1], input.data() + at, input.size() - at, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    at += static_cast<size_t>(n);
  }
  close(in[1]);
  return child;
}

ChildProcess::~ChildProcess() {
  if (!ended_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  CloseFd(&out_fd_);
}

void ChildProcess::Signal(int sig) {
  if (!ended_ && pid_ > 0) kill(pid_, sig);
}

void ChildProcess::ReadOutput(int timeout_ms) {
  if (out_fd_ < 0) {
    if (timeout_ms > 0) usleep(static_cast<useconds_t>(timeout_ms) * 1000);
    return;
  }
  pollfd p{out_fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return;
  char buffer[65536];
  const ssize_t n = read(out_fd_, buffer, sizeof buffer);
  if (n > 0) {
    const size_t room = kMaxOutputBytes - std::min(kMaxOutputBytes, exit_.output.size());
    exit_.output.append(buffer, std::min(room, static_cast<size_t>(n)));
  } else if (n == 0 || errno != EINTR) {
    CloseFd(&out_fd_);  // end of output
  }
}

std::optional<ProcessExit> ChildProcess::Wait(double seconds) {
  if (ended_) return exit_;
  const double deadline = Now() + std::max(0.0, seconds);
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      while (out_fd_ >= 0) ReadOutput(0);  // the rest of what it wrote
      ended_ = true;
      if (WIFEXITED(status)) exit_.code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) exit_.signal = WTERMSIG(status);
      return exit_;
    }
    const double now = Now();
    if (limits_.wall_seconds > 0 && now - started_ > limits_.wall_seconds && !exit_.wall_timeout) {
      exit_.wall_timeout = true;
      kill(pid_, SIGKILL);
      continue;
    }
    if (now >= deadline) return std::nullopt;
    ReadOutput(static_cast<int>(std::ceil(std::min(0.1, deadline - now) * 1000)));
  }
}

ProcessExit ChildProcess::WaitForExit() {
  while (true) {
    if (std::optional<ProcessExit> e = Wait(1.0)) return *e;
  }
}

}  // namespace acs
