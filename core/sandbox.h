// Confinement of a child process's writes with Linux Landlock (ABI 2 or later): the child
// may create, change or remove files only beneath the paths it is given (and write
// /dev/null); optionally also its reads (and executions): only beneath the readable and
// writable paths it is given. Where the kernel's Landlock ABI allows, the same ruleset
// also denies every TCP connect and bind (ABI 4) and confines signals and abstract unix
// sockets to the child's own domain (ABI 6): it cannot signal its parent or reach a
// loopback port. Optionally a seccomp filter makes every IPv4 and IPv6 socket() fail (UDP
// too, on any kernel with seccomp filters); the descriptors it inherits stay open. The
// ruleset is built in the parent, which allocates and opens the paths, and applied in the
// child between fork and exec. On a kernel without Landlock the child's files are
// unconfined, and WriteConfinementSupport() says why. Used by ChildProcess
// (core/child_process.h).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace acs {

enum class WriteAccess {
  kFull,     // create, write, truncate, rename and remove anything beneath the path
  kAddOnly,  // create files and directories beneath it and move files in; never write,
             // truncate, replace or remove one that is there
};

struct WritablePath {
  std::string path;                         // a directory (its whole tree) or one file
  WriteAccess access = WriteAccess::kFull;  // a file: kFull writes and truncates it
};

struct WriteConfinement {
  bool enabled = false;                // false: the child writes wherever its user may
  std::vector<WritablePath> writable;  // with enabled: everything it may write besides
                                       // /dev/null; a path that does not exist gets no rule
  std::string temp_dir;                // the child's TMPDIR and SQLITE_TMPDIR when set;
                                       // should be writable (kFull)
  bool confine_reads = false;          // with enabled: it reads, lists and executes only
                                       // beneath `readable` and `writable` (and /dev/null)
  std::vector<std::string> readable;   // directories (their trees) or single files; a path
                                       // that does not exist gets no rule
  bool deny_ip_sockets = false;        // with enabled: socket() of AF_INET or AF_INET6 fails
                                       // with EACCES (AF_UNIX and socketpair work), where
                                       // IpSocketDenialSupport() holds
};

// The Landlock ABI version the children's confinement uses (2 or more), checked once.
// Unavailable naming why writes cannot be confined: a kernel built without Landlock, Landlock
// left out of the boot's LSM list, or ABI 1 (which cannot allow renames across directories).
StatusOr<int> WriteConfinementSupport();

// Whether deny_ip_sockets can be applied here: Unavailable naming why not (a kernel without
// seccomp filters, or a build for an architecture other than x86_64).
Status IpSocketDenialSupport();

// What a confined child cannot be kept from besides files on Landlock ABI `abi`, with or
// without its IP sockets denied (deny_ip_sockets and IpSocketDenialSupport), to log: "" from
// ABI 6 on with them denied, else e.g. "signals to other processes and abstract unix
// sockets (Landlock ABI 6); this kernel has ABI 5".
std::string UnconfinedBeyondFiles(int abi, bool ip_sockets_denied);

// The warning a program that confines its children (with deny_ip_sockets) logs once at
// start, or "" when this kernel confines them fully: that their writes are not confined
// (WriteConfinementSupport's reason), or what UnconfinedBeyondFiles names. `children` is a
// plural ending in s ("job runners"); `parent` names the program ("this server").
std::string ConfinementWarning(const std::string& children, const std::string& parent);

// The readable rules for `files` (a program and the shared libraries it loads, absolute)
// that keep the directory `kept_out` unreadable: each file's directory, or the file alone
// where that directory is `kept_out` or holds it; nothing for a file beneath `kept_out`.
// Paths are compared as made canonical; each rule once, in the order of `files`.
std::vector<std::string> ReadableKeepingOut(const std::vector<std::string>& files, const std::string& kept_out);

// True when the directory `outer` is `inner` or holds it (both made canonical).
bool PathHolds(const std::string& outer, const std::string& inner);

// Tests: pretend the kernel has this Landlock ABI (0: none); -1 goes back to asking it.
void SetLandlockAbiForTesting(int abi);

// One child's Landlock ruleset. Not copyable; movable.
class WriteSandbox {
 public:
  // The ruleset for `confinement`; one that confines nothing when it is not enabled or the
  // kernel cannot confine (WriteConfinementSupport). Errors: Unavailable when a writable path
  // exists but cannot be opened or the kernel refuses its rule.
  static StatusOr<WriteSandbox> Make(const WriteConfinement& confinement);

  WriteSandbox() = default;
  WriteSandbox(WriteSandbox&& other) noexcept;
  WriteSandbox& operator=(WriteSandbox&& other) noexcept;
  WriteSandbox(const WriteSandbox&) = delete;
  WriteSandbox& operator=(const WriteSandbox&) = delete;
  ~WriteSandbox();  // closes the ruleset (the parent's copy after fork)

  bool confines() const { return ruleset_fd_ >= 0; }
  bool denies_ip_sockets() const { return deny_ip_sockets_; }
  // In the child between fork and exec, async-signal-safe: sets no-new-privileges and
  // restricts this process with the ruleset and the seccomp filter. False when the kernel
  // refused; true when there is nothing to apply.
  bool ApplyInChild() const;

 private:
  int ruleset_fd_ = -1;
  bool deny_ip_sockets_ = false;
};

}  // namespace acs
