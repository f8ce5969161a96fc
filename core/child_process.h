// A child process under resource limits, for running a user's model apart from the
// server and the worker (DESIGN §6): memory (RLIMIT_AS) and CPU time (RLIMIT_CPU) set before exec, a
// wall-clock limit enforced by the parent, writes confined to chosen paths (Landlock,
// core/sandbox.h), killed when the parent dies (PR_SET_PDEATHSIG) and when the handle is
// destroyed. Inherits no descriptor but stderr (and a channel, when given); stdin carries an
// input text, stdout is captured (capped). No torch, no gRPC.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sandbox.h"
#include "core/status.h"

namespace acs {

struct ProcessLimits {
  int64_t memory_bytes = 0;  // address space (RLIMIT_AS); 0: none
  int64_t cpu_seconds = 0;   // CPU time (RLIMIT_CPU, SIGXCPU past it); 0: none
  double wall_seconds = 0;   // killed (SIGKILL) after this long; 0: none
  WriteConfinement writes;   // where it may write; default: not confined. Where the kernel
                             // lacks Landlock it runs unconfined (ChildProcess::writes_confined)
};

struct ProcessExit {
  int code = -1;              // exit status when it exited, else -1
  int signal = 0;             // the signal that ended it, else 0
  bool wall_timeout = false;  // killed by the parent at the wall-clock limit
  std::string output;         // what it wrote to stdout (at most kMaxOutputBytes)
  bool ok() const { return code == 0 && signal == 0 && !wall_timeout; }
};

inline constexpr size_t kMaxOutputBytes = 1 << 20;
// The exit status of a child whose kernel refused its write confinement before exec.
inline constexpr int kConfinementFailedExit = 126;

// Why a process ended abnormally, naming the limit it ran into: "exceeded the 60 s
// wall-clock limit", "exceeded the 600 s CPU-time limit", "was killed by signal 9
// (Killed)", "exited with status 3", "could not be confined (...)". Empty for an ok exit.
std::string DescribeExit(const ProcessExit& exit, const ProcessLimits& limits);

// "8 GiB", "512 MiB".
std::string FormatBytes(int64_t bytes);

// The address-space limit of this process (RLIMIT_AS), 0 when unlimited.
int64_t OwnMemoryLimit();

// A failure message that is a failed allocation, as "<who> ran out of memory while
// <doing> (its limit is 8 GiB): <what>" with this process's limit; empty for any other.
std::string OutOfMemoryMessage(const std::string& what, const std::string& who, const std::string& doing);

// The path of this process's program (/proc/self/exe), to start children of it.
StatusOr<std::string> OwnProgram();

// A status as one line of JSON ({"code": N, "message": "..."}), how a child reports its
// result on stdout, and back; an unreadable text is an Internal error quoting it.
std::string StatusToJsonLine(const Status& status);
Status StatusFromJsonLine(const std::string& text);

class ChildProcess {
 public:
  // Starts argv[0] (an absolute path) with argv; `input` is written to its stdin, which is
  // then closed (the child must read it all before it writes much to stdout). `channel_fd`
  // (>= 0): a descriptor of this process the child gets as its descriptor 3 (a socket to
  // talk to this process over; the caller closes its own copy). Unavailable when the
  // process cannot be started or a path cannot be given to Landlock.
  static StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                       const ProcessLimits& limits, const std::string& input = "",
                                                       int channel_fd = -1);
  ~ChildProcess();  // kills and reaps a child still running

  // Waits up to `seconds` (0: only checks); the exit once it has ended, nullopt while it
  // runs. Kills the child at its wall-clock limit.
  std::optional<ProcessExit> Wait(double seconds);
  // Waits for the exit, however long it takes (up to the wall-clock limit).
  ProcessExit WaitForExit();
  void Signal(int sig);
  // Reads what its stdout holds now, without waiting (for a caller that waits elsewhere).
  void ReadAvailableOutput() { ReadOutput(0); }
  pid_t pid() const { return pid_; }
  // True when Landlock confines its writes to limits.writes; false when not asked or the
  // kernel cannot (WriteConfinementSupport says why).
  bool writes_confined() const { return writes_confined_; }

 private:
  ChildProcess() = default;
  void ReadOutput(int timeout_ms);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  ProcessLimits limits_;
  double started_ = 0;  // steady-clock seconds
  ProcessExit exit_;
  bool ended_ = false;
  bool writes_confined_ = false;
};

}  // namespace acs
