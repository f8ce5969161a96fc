// ChildProcess's write confinement (core/sandbox.h): Landlock where the kernel has it, an
// unconfined child and a reason where it does not.
#include "core/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

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

  // `script` in /bin/sh under `writes`, its stderr joined to the output it returns.
  ProcessExit Run(const std::string& script, const WriteConfinement& writes, bool* confined) {
    ProcessLimits limits;
    limits.wall_seconds = 30;
    limits.writes = writes;
    StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start({"/bin/sh", "-c", "exec 2>&1; " + script}, limits);
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

TEST(DescribeExitTest, NamesARefusedConfinement) {
  ProcessLimits limits;
  limits.writes.enabled = true;
  ProcessExit exit;
  exit.code = kConfinementFailedExit;
  EXPECT_EQ(DescribeExit(exit, limits), "could not confine its writes (the kernel refused the Landlock ruleset)");
  limits.writes.enabled = false;
  EXPECT_EQ(DescribeExit(exit, limits), "exited with status 126");
}

}  // namespace
}  // namespace acs
