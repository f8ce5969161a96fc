#include "core/sandbox.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

// The system header may predate these (Debian 12's stops at ABI 2).
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#endif
#ifndef LANDLOCK_ACCESS_NET_CONNECT_TCP
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

namespace acs {
namespace {

constexpr uint64_t kMake = LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                           LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                           LANDLOCK_ACCESS_FS_MAKE_SYM;
constexpr uint64_t kRemove = LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE;
// What a rule on a single file may grant.
constexpr uint64_t kFileRights = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
constexpr uint64_t kAddRights = LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REFER;

// Handled with no rule allowing any port: no TCP connect or bind (ABI 4).
constexpr uint64_t kNetRights = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
// No signal to, nor abstract unix socket of, a process outside the child's domain (ABI 6).
constexpr uint64_t kScopes = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
constexpr int kNetAbi = 4;
constexpr int kScopeAbi = 6;

// struct landlock_ruleset_attr as of ABI 6 (the system header's may lack the last two); the
// kernel is given the prefix its ABI reads.
struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;  // ABI 4
  uint64_t scoped = 0;              // ABI 6
};

std::atomic<int> g_abi_for_testing{-1};

struct AbiAnswer {
  int abi = 0;
  int error = 0;  // errno when the kernel gave no version
};

AbiAnswer AskKernel() {
  AbiAnswer a;
#ifdef SYS_landlock_create_ruleset
  const long v = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (v < 0) {
    a.error = errno;
  } else {
    a.abi = static_cast<int>(v);
  }
#else
  a.error = ENOSYS;
#endif
  return a;
}

constexpr uint64_t kReadFile = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE;
constexpr uint64_t kReadDir = kReadFile | LANDLOCK_ACCESS_FS_READ_DIR;

// Every right that writes (the ruleset denies them unless a rule allows), and with
// confine_reads those that read and execute; the rest (ioctl) stays unhandled, so allowed
// everywhere.
uint64_t HandledRights(int abi, bool confine_reads) {
  uint64_t rights = LANDLOCK_ACCESS_FS_WRITE_FILE | kMake | kRemove | LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (confine_reads) rights |= kReadDir;
  return rights;
}

uint64_t AllowedRights(WriteAccess access, bool directory, uint64_t handled) {
  if (!directory) return access == WriteAccess::kFull ? handled & (kFileRights | kReadFile) : handled & kReadFile;
  return access == WriteAccess::kFull ? handled : handled & (kAddRights | kReadDir);
}

#ifdef SYS_landlock_create_ruleset
// Adds one rule; false with errno when the kernel refuses it. A missing path gets none.
Status AddRule(int ruleset_fd, const std::string& path, uint64_t directory_rights, uint64_t file_rights,
               const char* what) {
  const int path_fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (path_fd < 0 && errno == ENOENT) return Status::Ok();
  if (path_fd < 0) {
    return Status::Unavailable("cannot open '" + path + "' to let a child " + what + " it: " + std::strerror(errno));
  }
  struct stat st {};
  const bool directory = fstat(path_fd, &st) == 0 && S_ISDIR(st.st_mode);
  landlock_path_beneath_attr rule{};
  rule.allowed_access = directory ? directory_rights : file_rights;
  rule.parent_fd = path_fd;
  const long added =
      rule.allowed_access == 0 ? 0 : syscall(SYS_landlock_add_rule, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
  const int error = errno;
  close(path_fd);
  if (added != 0) {
    return Status::Unavailable("Landlock refused the rule that lets a child " + std::string(what) + " '" + path +
                               "': " + std::strerror(error));
  }
  return Status::Ok();
}
#endif

}  // namespace

void SetLandlockAbiForTesting(int abi) { g_abi_for_testing = abi; }

StatusOr<int> WriteConfinementSupport() {
  static const AbiAnswer kernel = AskKernel();
  const int forced = g_abi_for_testing.load();
  const AbiAnswer a = forced >= 0 ? AbiAnswer{forced, ENOSYS} : kernel;
  if (a.abi >= 2) return a.abi;
  if (a.abi == 1) {
    return Status::Unavailable("this kernel has Landlock ABI 1 only, which cannot allow renames across directories");
  }
  if (forced >= 0) return Status::Unavailable("Landlock is turned off for a test");
  if (a.error == EOPNOTSUPP) {
    return Status::Unavailable(
        "Landlock is built into this kernel but not enabled (add landlock to the lsm= boot "
        "parameter)");
  }
  if (a.error == ENOSYS) return Status::Unavailable("this kernel has no Landlock (CONFIG_SECURITY_LANDLOCK)");
  return Status::Unavailable(std::string("Landlock does not answer: ") + std::strerror(a.error));
}

std::string UnconfinedBeyondFiles(int abi) {
  if (abi >= kScopeAbi) return "";
  const std::string scopes = "signals to other processes and abstract unix sockets (Landlock ABI 6)";
  if (abi >= kNetAbi) return scopes + "; this kernel has ABI " + std::to_string(abi);
  return "TCP connects and binds (Landlock ABI 4), " + scopes + "; this kernel has ABI " + std::to_string(abi);
}

std::string ConfinementWarning(const std::string& children, const std::string& parent) {
  const StatusOr<int> abi = WriteConfinementSupport();
  if (!abi.ok()) {
    return children + "' writes are not confined (" + abi.status().message() + "): they can write wherever " + parent +
           " can";
  }
  const std::string open = UnconfinedBeyondFiles(*abi);
  if (open.empty()) return "";
  return children + " are not confined beyond files: " + open + " (they may connect to a loopback port or signal " +
         parent + ")";
}

StatusOr<WriteSandbox> WriteSandbox::Make(const WriteConfinement& confinement) {
  WriteSandbox box;
  if (!confinement.enabled) return box;
  const StatusOr<int> abi = WriteConfinementSupport();
  if (!abi.ok()) return box;
#ifdef SYS_landlock_create_ruleset
  const uint64_t handled = HandledRights(*abi, confinement.confine_reads);
  RulesetAttr attr;
  attr.handled_access_fs = handled;
  size_t size = offsetof(RulesetAttr, handled_access_net);
  if (*abi >= kNetAbi) {
    attr.handled_access_net = kNetRights;
    size = offsetof(RulesetAttr, scoped);
  }
  if (*abi >= kScopeAbi) {
    attr.scoped = kScopes;
    size = sizeof attr;
  }
  const long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (fd < 0) return Status::Unavailable(std::string("cannot create a Landlock ruleset: ") + std::strerror(errno));
  box.ruleset_fd_ = static_cast<int>(fd);
  std::vector<WritablePath> paths = confinement.writable;
  paths.push_back({"/dev/null", WriteAccess::kFull});
  for (const WritablePath& p : paths) {
    ACS_RETURN_IF_ERROR(AddRule(box.ruleset_fd_, p.path, AllowedRights(p.access, true, handled),
                                AllowedRights(p.access, false, handled), "write"));
  }
  if (confinement.confine_reads) {
    for (const std::string& p : confinement.readable) {
      ACS_RETURN_IF_ERROR(AddRule(box.ruleset_fd_, p, handled & kReadDir, handled & kReadFile, "read"));
    }
  }
#endif
  return box;
}

WriteSandbox::WriteSandbox(WriteSandbox&& other) noexcept : ruleset_fd_(std::exchange(other.ruleset_fd_, -1)) {}

WriteSandbox& WriteSandbox::operator=(WriteSandbox&& other) noexcept {
  if (this != &other) {
    if (ruleset_fd_ >= 0) close(ruleset_fd_);
    ruleset_fd_ = std::exchange(other.ruleset_fd_, -1);
  }
  return *this;
}

WriteSandbox::~WriteSandbox() {
  if (ruleset_fd_ >= 0) close(ruleset_fd_);
}

bool WriteSandbox::ApplyInChild() const {
  if (ruleset_fd_ < 0) return true;
#ifdef SYS_landlock_restrict_self
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return syscall(SYS_landlock_restrict_self, ruleset_fd_, 0) == 0;
#else
  return false;
#endif
}

}  // namespace acs
