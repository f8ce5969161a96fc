// Confinement of a child process's writes with Linux Landlock (ABI 2 or later): the child
// may create, change or remove files only beneath the paths it is given (and write
// /dev/null); optionally also its reads (and executions): only beneath the readable and
// writable paths it is given. Where the kernel's Landlock ABI allows, the same ruleset
// also denies every TCP connect and bind (ABI 4) and confines signals and abstract unix
// sockets to the child's own domain (ABI 6): it cannot signal its parent or reach a
// loopback port; UDP and the descriptors it inherits stay open. The ruleset is built in the
// parent, which allocates and opens the paths, and applied in the child between fork and
// exec. On a kernel without Landlock the child runs unconfined, and
// WriteConfinementSupport() says why. Used by ChildProcess (core/child_process.h).
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
};

// The Landlock ABI version the children's confinement uses (2 or more), checked once.
// Unavailable naming why writes cannot be confined: a kernel built without Landlock, Landlock
// left out of the boot's LSM list, or ABI 1 (which cannot allow renames across directories).
StatusOr<int> WriteConfinementSupport();

// What a confined child's ruleset cannot confine besides files on Landlock ABI `abi`, to
// log: "" from ABI 6 on, else e.g. "signals to other processes and abstract unix sockets
// (Landlock ABI 6); this kernel has ABI 5".
std::string UnconfinedBeyondFiles(int abi);

// The warning a program that confines its children logs once at start, or "" when this
// kernel confines them fully: that their writes are not confined (WriteConfinementSupport's
// reason), or what UnconfinedBeyondFiles names. `children` is a plural ending in s ("job
// runners"); `parent` names the program ("this server").
std::string ConfinementWarning(const std::string& children, const std::string& parent);

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
  // In the child between fork and exec, async-signal-safe: sets no-new-privileges and
  // restricts this process with the ruleset. False when the kernel refused; true when
  // there is nothing to apply.
  bool ApplyInChild() const;

 private:
  int ruleset_fd_ = -1;
};

}  // namespace acs
