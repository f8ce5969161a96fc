// ChildProcess's confinement (core/sandbox.h): Landlock where the kernel has it (files;
// TCP, signals from ABI 4 and 6), an unconfined child and a reason where it does not.
#include "core/child_process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/sandbox.h"

namespace acs {
namespace {

namespace fs = std::filesystem;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteText(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// A fresh directory with a/, b/ (holding readme) and c/ (holding old), removed afterwards.
class WriteConfinementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "acs_sandbox_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    for (const char* d : {"a", "b", "c"}) fs::create_directories(root_ / d);
    WriteText(root_ / "b" / "readme", "readable\n");
    WriteText(root_ / "c" / "old", "old\n");
  }
  void TearDown() override {
    SetLandlockAbiForTesting(-1);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // `script` in `shell` under `writes`, its stderr joined to the output it returns.
  ProcessExit Run(const std::string& script, const WriteConfinement& writes, bool* confined,
                  const std::string& shell = "/bin/sh") {
    ProcessLimits limits;
    limits.wall_seconds = 30;
    limits.writes = writes;
    StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start({shell, "-c", "exec 2>&1; " + script}, limits);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return {};
    *confined = (*child)->writes_confined();
    return (*child)->WaitForExit();
  }

  fs::path A() const { return root_ / "a"; }
  fs::path B() const { return root_ / "b"; }
  fs::path C() const { return root_ / "c"; }
  fs::path root_;
};

TEST_F(WriteConfinementTest, AConfinedChildWritesOnlyWhereItMay) {
  if (StatusOr<int> abi = WriteConfinementSupport(); !abi.ok()) {
    GTEST_SKIP() << "this kernel cannot confine writes: " << abi.status().message();
  }
  WriteConfinement writes;
  writes.enabled = true;
  writes.writable = {{A().string()}, {C().string(), WriteAccess::kAddOnly}, {(root_ / "missing").string()}};
  writes.temp_dir = A().string();
  const std::string a = A().string(), b = B().string(), c = C().string();
  bool confined = false;
  const ProcessExit exit = Run("echo a > " + a +
                                   "/f && echo wrote-a; "  // kFull: writes
                                   "echo b > " +
                                   b +
                                   "/f || echo denied-b; "  // elsewhere: EACCES
                                   "cat " +
                                   b +
                                   "/readme; "  // reads stay open
                                   "mkdir " +
                                   c + "/sub && mv " + a + "/f " + c +
                                   "/sub/f && echo added-c; "  // kAddOnly: adds
                                   "echo x > " +
                                   c +
                                   "/old || echo denied-change-c; "  // ... never changes
                                   "rm -f " +
                                   c +
                                   "/old || echo denied-remove-c; "  // ... nor removes
                                   "mkdir " +
                                   root_.string() +
                                   "/missing || echo denied-missing; "
                                   "echo > /dev/null && echo devnull; "
                                   "echo tmp=$TMPDIR",
                               writes, &confined);
  EXPECT_TRUE(confined);
  EXPECT_TRUE(exit.ok()) << exit.output;
  const std::string& out = exit.output;
  EXPECT_NE(out.find("wrote-a"), std::string::npos) << out;
  EXPECT_NE(out.find(b + "/f: Permission denied"), std::string::npos) << out;  // strerror(EACCES)
  EXPECT_NE(out.find("denied-b"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(B() / "f"));
  EXPECT_NE(out.find("readable"), std::string::npos) << out;
  EXPECT_NE(out.find("added-c"), std::string::npos) << out;
  EXPECT_EQ(ReadText(C() / "sub" / "f"), "a\n");
  EXPECT_NE(out.find("denied-change-c"), std::string::npos) << out;
  EXPECT_NE(out.find("denied-remove-c"), std::string::npos) << out;
  EXPECT_EQ(ReadText(C() / "old"), "old\n");
  EXPECT_NE(out.find("denied-missing"), std::string::npos) << out;
  EXPECT_NE(out.find("devnull"), std::string::npos) << out;
  EXPECT_NE(out.find("tmp=" + a + "\n"), std::string::npos) << out;
}

// A job runner's rules (JobScheduler::ChildConfinement's shape): it writes only its own
// dir and reads only the system, the blob it is given and its own dir; the database file
// beside them can be neither written nor read, another job's dir not read, other blobs not.
TEST_F(WriteConfinementTest, AConfinedRunnerCannotOpenTheDatabaseNorOtherJobsFiles) {
  if (StatusOr<int> abi = WriteConfinementSupport(); !abi.ok()) {
    GTEST_SKIP() << "this kernel cannot confine a child: " << abi.status().message();
  }
  const fs::path db = root_ / "acs.db", own = A(), other = B(), blobs = C();
  WriteText(db, "SQLite format 3");
  WriteText(blobs / "model", "the job's model\n");
  WriteConfinement rules;
  rules.enabled = true;
  rules.writable = {{own.string()}};
  rules.temp_dir = own.string();
  rules.confine_reads = true;
  rules.readable = {"/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/dev", (blobs / "model").string()};
  const std::string script = "echo x >> " + db.string() + " || echo denied-db-write; "
                             "cat " + db.string() + " || echo denied-db-read; "
                             "cat " + (other / "readme").string() + " || echo denied-other-job; "
                             "ls " + root_.string() + " || echo denied-listing; "
                             "cat " + (blobs / "old").string() + " || echo denied-other-blob; "
                             "cat " + (blobs / "model").string() + "; "
                             "echo mine > " + (own / "f").string() + " && cat " + (own / "f").string() + "; "
                             "ls /usr > /dev/null && echo system-ok";
  bool confined = false;
  const ProcessExit exit = Run(script, rules, &confined);
  EXPECT_TRUE(confined);
  EXPECT_TRUE(exit.ok()) << exit.output;
  const std::string& out = exit.output;
  for (const char* denied : {"denied-db-write", "denied-db-read", "denied-other-job", "denied-listing",
                             "denied-other-blob"}) {
    EXPECT_NE(out.find(denied), std::string::npos) << denied << "\n" << out;
  }
  EXPECT_NE(out.find(db.string() + ": Permission denied"), std::string::npos) << out;
  EXPECT_EQ(ReadText(db), "SQLite format 3");
  EXPECT_EQ(out.find("readable\n"), std::string::npos) << out;  // b/readme's text never shown
  EXPECT_NE(out.find("the job's model"), std::string::npos) << out;
  EXPECT_NE(out.find("mine"), std::string::npos) << out;
  EXPECT_NE(out.find("system-ok"), std::string::npos) << out;
}

TEST_F(WriteConfinementTest, AChildNotAskedToBeConfinedWritesAnywhere) {
  bool confined = true;
  const ProcessExit exit = Run("echo b > " + B().string() + "/f", WriteConfinement{}, &confined);
  EXPECT_FALSE(confined);
  EXPECT_TRUE(exit.ok()) << exit.output;
  EXPECT_EQ(ReadText(B() / "f"), "b\n");
}

// Without Landlock the child still runs, unconfined, and the reason is there to log.
TEST_F(WriteConfinementTest, WithoutLandlockTheChildRunsUnconfinedAndSaysWhy) {
  SetLandlockAbiForTesting(0);
  StatusOr<int> none = WriteConfinementSupport();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("Landlock"), std::string::npos) << none.status().message();
  WriteConfinement writes;
  writes.enabled = true;
  writes.writable = {{A().string()}};
  bool confined = true;
  const ProcessExit exit = Run("echo b > " + B().string() + "/f", writes, &confined);
  EXPECT_FALSE(confined);
  EXPECT_TRUE(exit.ok()) << exit.output;
  EXPECT_EQ(ReadText(B() / "f"), "b\n");

  SetLandlockAbiForTesting(1);  // renames across directories cannot be allowed
  StatusOr<int> one = WriteConfinementSupport();
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.status().message().find("ABI 1"), std::string::npos) << one.status().message();

  SetLandlockAbiForTesting(-1);
  if (StatusOr<int> abi = WriteConfinementSupport(); abi.ok()) {
    EXPECT_GE(*abi, 2);
  }
}

// A loopback TCP port that listens and a sleeping process outside the child's domain, both
// the test's: a confined child can neither connect to the one (from Landlock ABI 4) nor
// signal the other (ABI 6); an unconfined one, or one confined by ABI 3's file rules, can.
TEST_F(WriteConfinementTest, AConfinedChildCannotConnectOverTcpNorSignalOutsideItsDomain) {
  const StatusOr<int> abi = WriteConfinementSupport();
  if (!abi.ok()) GTEST_SKIP() << "this kernel cannot confine a child: " << abi.status().message();
  if (*abi < 4) GTEST_SKIP() << "this kernel has Landlock ABI " << *abi << ": TCP needs 4, signals 6";
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), size), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size), 0);
  const std::string port = std::to_string(ntohs(address.sin_port));
  // The child's output; `*hit_by` the signal that ended the sleeper.
  auto attempt = [&](const WriteConfinement& rules, bool* confined, int* hit_by) {
    ProcessLimits sleeper;
    sleeper.wall_seconds = 120;
    StatusOr<std::unique_ptr<ChildProcess>> target = ChildProcess::Start({"/bin/sleep", "120"}, sleeper);
    EXPECT_TRUE(target.ok()) << target.status().ToString();
    if (!target.ok()) return std::string();
    const ProcessExit exit = Run(": 3<>/dev/tcp/127.0.0.1/" + port +
                                     " && echo connected || echo denied-connect; kill -USR1 " +
                                     std::to_string((*target)->pid()) + " && echo signalled || echo denied-signal",
                                 rules, confined, "/bin/bash");
    EXPECT_TRUE(exit.ok()) << exit.output;
    (*target)->Signal(SIGKILL);  // a SIGUSR1 sent before already decided its end
    *hit_by = (*target)->WaitForExit().signal;
    return exit.output;
  };
  WriteConfinement rules;
  rules.enabled = true;
  rules.writable = {{A().string()}};
  bool confined = false;
  int hit_by = 0;
  std::string out = attempt(rules, &confined, &hit_by);
  EXPECT_TRUE(confined);
  EXPECT_NE(out.find("connect: Permission denied"), std::string::npos) << out;  // EACCES
  EXPECT_NE(out.find("denied-connect"), std::string::npos) << out;
  if (*abi >= 6) {
    EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;  // EPERM
    EXPECT_NE(out.find("denied-signal"), std::string::npos) << out;
    EXPECT_EQ(hit_by, SIGKILL) << out;
  }
  // Files only (ABI 3), then no rules: both reach out.
  for (const int forced : {3, -1}) {
    SetLandlockAbiForTesting(forced);
    out = attempt(forced == 3 ? rules : WriteConfinement{}, &confined, &hit_by);
    EXPECT_EQ(confined, forced == 3);
    EXPECT_NE(out.find("connected"), std::string::npos) << forced << "\n" << out;
    EXPECT_NE(out.find("signalled"), std::string::npos) << forced << "\n" << out;
    EXPECT_EQ(hit_by, SIGUSR1) << forced << "\n" << out;
  }
  close(listener);
  if (*abi < 6) GTEST_SKIP() << "this kernel has Landlock ABI " << *abi << ": signals were not checked (ABI 6)";
}

TEST(UnconfinedBeyondFilesTest, NamesWhatTheAbiLeavesOpen) {
  EXPECT_EQ(UnconfinedBeyondFiles(6, true), "");
  EXPECT_EQ(UnconfinedBeyondFiles(7, true), "");
  const std::string five = UnconfinedBeyondFiles(5, true);
  EXPECT_NE(five.find("signals"), std::string::npos) << five;
  EXPECT_NE(five.find("ABI 5"), std::string::npos) << five;
  EXPECT_EQ(five.find("TCP"), std::string::npos) << five;
  EXPECT_EQ(five.find("UDP"), std::string::npos) << five;
  // The seccomp filter closes TCP too, whatever the ABI.
  EXPECT_EQ(UnconfinedBeyondFiles(3, true).find("TCP"), std::string::npos);
  EXPECT_NE(UnconfinedBeyondFiles(3, false).find("TCP"), std::string::npos);
  EXPECT_NE(UnconfinedBeyondFiles(3, false).find("UDP"), std::string::npos);
  const std::string six = UnconfinedBeyondFiles(6, false);
  EXPECT_NE(six.find("UDP"), std::string::npos) << six;
  EXPECT_EQ(six.find("TCP"), std::string::npos) << six;
}

TEST(ConfinementWarningTest, OneWordingForEveryConfiningProgram) {
  SetLandlockAbiForTesting(0);  // no Landlock: writes are not confined
  const std::string none = ConfinementWarning("model tasks", "this worker");
  EXPECT_EQ(none.rfind("model tasks' writes are not confined (", 0), 0u) << none;
  EXPECT_NE(none.find(WriteConfinementSupport().status().message()), std::string::npos) << none;
  EXPECT_NE(none.find("wherever this worker can"), std::string::npos) << none;
  const bool denied = IpSocketDenialSupport().ok();
  SetLandlockAbiForTesting(5);  // files, not signals
  const std::string five = ConfinementWarning("job runners", "this server");
  EXPECT_EQ(five.rfind("job runners are not confined beyond files: ", 0), 0u) << five;
  EXPECT_NE(five.find(UnconfinedBeyondFiles(5, denied)), std::string::npos) << five;
  EXPECT_NE(five.find("signal this server"), std::string::npos) << five;
  EXPECT_EQ(five.find("UDP"), denied ? std::string::npos : five.find("UDP sockets (seccomp)")) << five;
  SetLandlockAbiForTesting(6);
  const std::string six = ConfinementWarning("job runners", "this server");
  EXPECT_EQ(six, denied ? ""
                        : "job runners are not confined beyond files: UDP sockets (seccomp) (they may open "
                          "network sockets)");
  SetLandlockAbiForTesting(-1);
}

// Results of socket calls in a child confined by WriteSandbox::ApplyInChild: 0 or an errno.
struct SocketResults {
  int applied = 0;  // 1 when ApplyInChild succeeded
  int udp4 = 0, tcp6 = 0, unix_socket = 0, unix_pair = 0;
  long i386_udp4 = 0;  // the i386 socket() (int 0x80): 0, -EACCES, or -ENOSYS without i386 calls
};

SocketResults SocketsInForkedChild(const WriteSandbox& sandbox) {
  int pipe_fds[2];
  SocketResults r;
  if (pipe(pipe_fds) != 0) return r;
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    r.applied = sandbox.ApplyInChild() ? 1 : 0;
    auto attempt = [](int family, int type) {
      const int fd = socket(family, type, 0);
      return fd >= 0 ? 0 : errno;
    };
    r.udp4 = attempt(AF_INET, SOCK_DGRAM);
    r.tcp6 = attempt(AF_INET6, SOCK_STREAM);
    r.unix_socket = attempt(AF_UNIX, SOCK_DGRAM);
    int pair[2];
    r.unix_pair = socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0 ? 0 : errno;
#if defined(__x86_64__)
    // In a grandchild: a kernel without i386 emulation may answer int 0x80 with SIGSEGV.
    const pid_t probe = fork();
    if (probe == 0) {
      long result = 359;  // i386 socket
      asm volatile("int $0x80"
                   : "+a"(result)
                   : "b"(AF_INET), "c"(SOCK_DGRAM), "d"(0)
                   : "memory", "r8", "r9", "r10", "r11");
      _exit(result >= 0 ? 0 : result == -EACCES ? 1 : 2);
    }
    int probed = 0;
    r.i386_udp4 = probe > 0 && waitpid(probe, &probed, 0) == probe && WIFEXITED(probed) && WEXITSTATUS(probed) < 2
                      ? (WEXITSTATUS(probed) == 0 ? 0 : -EACCES)
                      : -ENOSYS;
#endif
    const ssize_t written = write(pipe_fds[1], &r, sizeof r);
    _exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(pipe_fds[1]);
  SocketResults got;
  const bool read_all = pid > 0 && read(pipe_fds[0], &got, sizeof got) == static_cast<ssize_t>(sizeof got);
  close(pipe_fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  EXPECT_TRUE(read_all && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return got;
}

// The socket calls of a forked child confined with or without deny_ip_sockets.
SocketResults SocketsInConfinedChild(bool deny_ip_sockets) {
  WriteConfinement rules;
  rules.enabled = true;
  rules.deny_ip_sockets = deny_ip_sockets;
  StatusOr<WriteSandbox> box = WriteSandbox::Make(rules);
  EXPECT_TRUE(box.ok()) << box.status().ToString();
  if (!box.ok()) return {};
  EXPECT_EQ(box->denies_ip_sockets(), deny_ip_sockets);
  const SocketResults results = SocketsInForkedChild(*box);
  EXPECT_EQ(results.applied, 1);
  return results;
}

// deny_ip_sockets: no IPv4 or IPv6 socket of any type (nor through i386's socket()), while
// AF_UNIX sockets and socket pairs still work; without it every one is made.
TEST(IpSocketDenialTest, AConfinedChildCannotMakeIpSocketsButUnixOnes) {
  if (Status s = IpSocketDenialSupport(); !s.ok()) GTEST_SKIP() << s.message();
  const SocketResults denied = SocketsInConfinedChild(true);
  EXPECT_EQ(denied.udp4, EACCES);
  EXPECT_EQ(denied.tcp6, EACCES);
  EXPECT_EQ(denied.unix_socket, 0) << std::strerror(denied.unix_socket);
  EXPECT_EQ(denied.unix_pair, 0) << std::strerror(denied.unix_pair);

  const SocketResults allowed = SocketsInConfinedChild(false);
  EXPECT_EQ(allowed.udp4, 0) << std::strerror(allowed.udp4);
  EXPECT_EQ(allowed.tcp6 == 0 || allowed.tcp6 == EAFNOSUPPORT, true) << std::strerror(allowed.tcp6);
  EXPECT_EQ(allowed.unix_pair, 0);
  // Where the kernel runs i386 calls, the filter checks them too.
  if (allowed.i386_udp4 != -ENOSYS) {
    EXPECT_EQ(allowed.i386_udp4, 0);
    EXPECT_EQ(denied.i386_udp4, -EACCES);
  }
}

// Through ChildProcess: a confined shell cannot open a UDP socket (nor a TCP one, even where
// Landlock is missing), an unconfined one can.
TEST_F(WriteConfinementTest, AConfinedChildCannotOpenAUdpSocket) {
  if (Status s = IpSocketDenialSupport(); !s.ok()) GTEST_SKIP() << s.message();
  WriteConfinement rules;
  rules.enabled = true;
  rules.writable = {{A().string()}};
  rules.deny_ip_sockets = true;
  const std::string script =
      ": 3<>/dev/udp/127.0.0.1/9 && echo udp-opened || echo udp-denied; "
      ": 4<>/dev/tcp/127.0.0.1/9 && echo tcp-opened || echo tcp-denied";
  for (const int forced : {-1, 0}) {  // the kernel's Landlock, none
    SetLandlockAbiForTesting(forced);
    bool confined = false;
    const ProcessExit exit = Run(script, rules, &confined, "/bin/bash");
    EXPECT_TRUE(exit.ok()) << exit.output;
    EXPECT_NE(exit.output.find("socket: Permission denied"), std::string::npos) << forced << "\n" << exit.output;
    EXPECT_NE(exit.output.find("udp-denied"), std::string::npos) << forced << "\n" << exit.output;
    EXPECT_NE(exit.output.find("tcp-denied"), std::string::npos) << forced << "\n" << exit.output;
  }
  SetLandlockAbiForTesting(-1);
  bool confined = true;
  const ProcessExit exit = Run(script, WriteConfinement{}, &confined, "/bin/bash");
  EXPECT_FALSE(confined);
  EXPECT_NE(exit.output.find("udp-opened"), std::string::npos) << exit.output;
}

// The program's and libraries' directories are readable unless one holds the kept-out dir
// (a build tree holding data/): then only the files are; nothing beneath it.
TEST_F(WriteConfinementTest, ReadableRulesKeepTheDataDirOut) {
  const fs::path build = root_ / "build", data = build / "data";
  fs::create_directories(data / "work");
  fs::create_directories(root_ / "lib");
  const std::string program = (build / "acs-server").string(), in_build = (build / "libacs.so").string();
  const std::string lib = (root_ / "lib" / "libtorch.so").string(), other = (root_ / "lib" / "libc10.so").string();
  const std::string inside = (data / "work" / "libx.so").string();
  const std::vector<std::string> rules = ReadableKeepingOut({program, in_build, lib, other, inside}, data.string());
  EXPECT_EQ(rules, (std::vector<std::string>{program, in_build, (root_ / "lib").string()}));
  // The data dir elsewhere: the directories.
  EXPECT_EQ(ReadableKeepingOut({program, lib}, (root_ / "elsewhere").string()),
            (std::vector<std::string>{build.string(), (root_ / "lib").string()}));
  EXPECT_TRUE(PathHolds(build.string(), data.string()));
  EXPECT_TRUE(PathHolds(data.string(), data.string() + "/"));
  EXPECT_FALSE(PathHolds((root_ / "bu").string(), data.string()));  // a prefix of a name is not a parent
  EXPECT_FALSE(PathHolds(data.string(), build.string()));
}

// A program in a build tree that holds the data dir runs confined by those rules, and can
// open neither the database there nor its other files.
TEST_F(WriteConfinementTest, AProgramBesideTheDataDirRunsButCannotReadTheDatabase) {
  if (StatusOr<int> abi = WriteConfinementSupport(); !abi.ok()) {
    GTEST_SKIP() << "this kernel cannot confine a child: " << abi.status().message();
  }
  const fs::path build = root_ / "build", data = build / "data", cat = build / "cat";
  fs::create_directories(data);
  WriteText(data / "acs.db", "SQLite format 3");
  WriteText(build / "notes", "build notes\n");
  fs::copy_file("/bin/cat", cat);
  fs::permissions(cat, fs::perms::owner_all);
  WriteConfinement rules;
  rules.enabled = true;
  rules.writable = {{A().string()}};
  rules.confine_reads = true;
  rules.readable = {"/usr", "/lib", "/lib64", "/etc", "/proc", "/dev", (B() / "readme").string()};
  for (const std::string& rule : ReadableKeepingOut({cat.string()}, data.string())) rules.readable.push_back(rule);
  ProcessLimits limits;
  limits.wall_seconds = 30;
  limits.writes = rules;
  auto run = [&](const fs::path& file) {
    StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start({cat.string(), file.string()}, limits);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    return child.ok() ? (*child)->WaitForExit() : ProcessExit{};
  };
  const ProcessExit runs = run(B() / "readme");
  EXPECT_TRUE(runs.ok()) << DescribeExit(runs, limits);
  EXPECT_EQ(runs.output, "readable\n");
  for (const fs::path& denied : {data / "acs.db", build / "notes"}) {
    const ProcessExit exit = run(denied);
    EXPECT_EQ(exit.code, 1) << denied;  // cat: ...: Permission denied (on its stderr)
    EXPECT_EQ(exit.output, "") << denied;
  }
}

TEST(DescribeExitTest, NamesARefusedConfinement) {
  ProcessLimits limits;
  limits.writes.enabled = true;
  ProcessExit exit;
  exit.code = kConfinementFailedExit;
  EXPECT_EQ(DescribeExit(exit, limits), "could not be confined (the kernel refused its Landlock ruleset or seccomp filter)");
  limits.writes.enabled = false;
  EXPECT_EQ(DescribeExit(exit, limits), "exited with status 126");
}

}  // namespace
}  // namespace acs
