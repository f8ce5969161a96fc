#include "core/sandbox.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/net.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>
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

#if defined(__x86_64__)
// The seccomp filter of deny_ip_sockets. Native x86_64, x32 (the same arch with bit 30 set in
// the number) and i386 (int 0x80: a program may switch to it) are checked; any other arch is
// allowed. socket() of AF_INET or AF_INET6 fails with EACCES; so does the i386 socketcall's
// SYS_SOCKET (its family is behind a pointer the filter cannot read) and io_uring_setup (an
// io_uring makes sockets without socket()).
constexpr uint32_t kX32 = 0x40000000;
constexpr uint32_t kSocket64 = 41, kIoUringSetup = 425, kSocket32 = 359, kSocketCall32 = 102;
constexpr uint8_t kFamily = 14, kAllow = 17, kDeny = 18;  // indices of the shared tails

constexpr sock_filter Load(uint32_t offset) { return BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset); }
// At index `at`: if A == k go to index `yes`, else to `no`.
constexpr sock_filter JumpIf(int at, uint32_t k, int yes, int no) {
  return BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, static_cast<uint8_t>(yes - at - 1), static_cast<uint8_t>(no - at - 1));
}
constexpr uint32_t kArch = offsetof(seccomp_data, arch), kNr = offsetof(seccomp_data, nr);
constexpr uint32_t kArg0 = offsetof(seccomp_data, args);  // its low 32 bits (little-endian)
constexpr uint32_t kEacces = SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA);

constexpr sock_filter kIpSocketFilter[] = {
    Load(kArch),                                     // 0
    JumpIf(1, AUDIT_ARCH_X86_64, 2, 7),              // 1
    Load(kNr),                                       // 2
    JumpIf(3, kSocket64, kFamily, 4),                // 3
    JumpIf(4, kX32 | kSocket64, kFamily, 5),         // 4
    JumpIf(5, kIoUringSetup, kDeny, 6),              // 5
    JumpIf(6, kX32 | kIoUringSetup, kDeny, kAllow),  // 6
    JumpIf(7, AUDIT_ARCH_I386, 8, kAllow),           // 7
    Load(kNr),                                       // 8
    JumpIf(9, kSocket32, kFamily, 10),               // 9
    JumpIf(10, kIoUringSetup, kDeny, 11),            // 10
    JumpIf(11, kSocketCall32, 12, kAllow),           // 11
    Load(kArg0),                                     // 12
    JumpIf(13, SYS_SOCKET, kDeny, kAllow),           // 13
    Load(kArg0),                                     // 14 kFamily
    JumpIf(15, AF_INET, kDeny, 16),                  // 15
    JumpIf(16, AF_INET6, kDeny, kAllow),             // 16
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),    // 17 kAllow
    BPF_STMT(BPF_RET | BPF_K, kEacces),              // 18 kDeny
};
static_assert(sizeof kIpSocketFilter / sizeof kIpSocketFilter[0] == kDeny + 1, "the tails' indices");

// Async-signal-safe; needs no-new-privileges set.
bool ApplyIpSocketFilter() {
  sock_fprog program{};
  program.len = static_cast<unsigned short>(sizeof kIpSocketFilter / sizeof kIpSocketFilter[0]);
  program.filter = const_cast<sock_filter*>(kIpSocketFilter);
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0;
}

Status AskSeccomp() {
#ifdef SYS_seccomp
  uint32_t action = SECCOMP_RET_ERRNO;
  if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0) return Status::Ok();
  return Status::Unavailable(std::string("this kernel refuses seccomp filters: ") + std::strerror(errno));
#else
  return Status::Unavailable("this build knows no seccomp system call");
#endif
}
#else
bool ApplyIpSocketFilter() { return false; }
Status AskSeccomp() { return Status::Unavailable("IP sockets can be denied only on x86_64"); }
#endif

// `path` made canonical as far as it exists, with a trailing '/'.
std::string CanonicalDir(const std::string& path) {
  std::error_code ec;
  std::string s = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) s = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (s.empty() || s.back() != '/') s += '/';
  return s;
}

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

Status IpSocketDenialSupport() {
  static const Status kernel = AskSeccomp();
  return kernel;
}

std::string UnconfinedBeyondFiles(int abi, bool ip_sockets_denied) {
  std::vector<std::string> open;
  if (!ip_sockets_denied && abi < kNetAbi) open.push_back("TCP connects and binds (Landlock ABI 4)");
  if (!ip_sockets_denied) open.push_back("UDP sockets (seccomp)");
  if (abi < kScopeAbi) open.push_back("signals to other processes and abstract unix sockets (Landlock ABI 6)");
  std::string text;
  for (const std::string& o : open) text += (text.empty() ? "" : ", ") + o;
  if (abi < kScopeAbi) text += "; this kernel has ABI " + std::to_string(abi);
  return text;
}

std::string ConfinementWarning(const std::string& children, const std::string& parent) {
  const StatusOr<int> abi = WriteConfinementSupport();
  if (!abi.ok()) {
    return children + "' writes are not confined (" + abi.status().message() + "): they can write wherever " + parent +
           " can";
  }
  const bool denied = IpSocketDenialSupport().ok();
  const std::string open = UnconfinedBeyondFiles(*abi, denied);
  if (open.empty()) return "";
  std::string may = denied ? "" : "open network sockets";
  if (*abi < kScopeAbi) may += (may.empty() ? "" : " or ") + std::string("signal ") + parent;
  return children + " are not confined beyond files: " + open + " (they may " + may + ")";
}

bool PathHolds(const std::string& outer, const std::string& inner) {
  const std::string o = CanonicalDir(outer);
  return CanonicalDir(inner).compare(0, o.size(), o) == 0;
}

std::vector<std::string> ReadableKeepingOut(const std::vector<std::string>& files, const std::string& kept_out) {
  std::vector<std::string> rules;
  std::set<std::string> seen;
  for (const std::string& file : files) {
    const std::string dir = std::filesystem::path(file).parent_path().string();
    if (PathHolds(kept_out, dir)) continue;  // nothing beneath it
    const std::string rule = PathHolds(dir, kept_out) ? file : dir;
    if (seen.insert(rule).second) rules.push_back(rule);
  }
  return rules;
}

StatusOr<WriteSandbox> WriteSandbox::Make(const WriteConfinement& confinement) {
  WriteSandbox box;
  if (!confinement.enabled) return box;
  box.deny_ip_sockets_ = confinement.deny_ip_sockets && IpSocketDenialSupport().ok();
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

WriteSandbox::WriteSandbox(WriteSandbox&& other) noexcept
    : ruleset_fd_(std::exchange(other.ruleset_fd_, -1)),
      deny_ip_sockets_(std::exchange(other.deny_ip_sockets_, false)) {}

WriteSandbox& WriteSandbox::operator=(WriteSandbox&& other) noexcept {
  if (this != &other) {
    if (ruleset_fd_ >= 0) close(ruleset_fd_);
    ruleset_fd_ = std::exchange(other.ruleset_fd_, -1);
    deny_ip_sockets_ = std::exchange(other.deny_ip_sockets_, false);
  }
  return *this;
}

WriteSandbox::~WriteSandbox() {
  if (ruleset_fd_ >= 0) close(ruleset_fd_);
}

bool WriteSandbox::ApplyInChild() const {
  if (ruleset_fd_ < 0 && !deny_ip_sockets_) return true;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  if (ruleset_fd_ >= 0) {
#ifdef SYS_landlock_restrict_self
    if (syscall(SYS_landlock_restrict_self, ruleset_fd_, 0) != 0) return false;
#else
    return false;
#endif
  }
  return !deny_ip_sockets_ || ApplyIpSocketFilter();
}

}  // namespace acs
