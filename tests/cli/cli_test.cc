// The acs command line on bad arguments and bad files: a clear message on stderr and a
// non-zero exit code.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("acs_cli_test_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `acs ARGS` with stdout and stderr captured separately.
  Result Acs(const std::string& args) {
    std::string cmd = std::string(ACS_BINARY_DIR) + "/cli/acs " + args + " >" + (dir_ / "out").string() + " 2>" +
                      (dir_ / "err").string();
    int status = std::system(cmd.c_str());
    Result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(dir_ / "out");
    r.err = ReadFile(dir_ / "err");
    return r;
  }
  std::string Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name) << content;
    return (dir_ / name).string();
  }

  std::filesystem::path dir_;
};

TEST_F(CliTest, NoArgumentsPrintsUsageAndFails) {
  Result r = Acs("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("usage: acs COMMAND"), std::string::npos);
}

TEST_F(CliTest, UnknownCommand) {
  Result r = Acs("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos);
}

TEST_F(CliTest, HelpOnEveryCommand) {
  for (const std::string cmd : {"inspect", "compress", "eval", "search", "predictor"}) {
    Result r = Acs(cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("usage: acs " + cmd), std::string::npos) << cmd;
  }
}

TEST_F(CliTest, UnknownOption) {
  Result r = Acs("inspect model.pt --input 1x3x8x8 --colour blue");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown option --colour"), std::string::npos);
}

TEST_F(CliTest, InspectNeedsInputShape) {
  Result r = Acs("inspect model.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--input SHAPE is required"), std::string::npos);
}

TEST_F(CliTest, InspectBadShape) {
  Result r = Acs("inspect model.pt --input 1x3xfoo");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad input shape '1x3xfoo'"), std::string::npos);
}

TEST_F(CliTest, InspectMissingModel) {
  std::string missing = (dir_ / "missing.pt").string();
  Result r = Acs("inspect " + missing + " --input 1x3x8x8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'" + missing + "' does not exist"), std::string::npos);
}

TEST_F(CliTest, InspectCorruptModel) {
  std::string corrupt = Write("corrupt.pt", "this is not a zip archive of a TorchScript model");
  Result r = Acs("inspect " + corrupt + " --input 1x3x8x8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot load '" + corrupt + "' as a TorchScript model"), std::string::npos) << r.err;
}

TEST_F(CliTest, CompressNeedsPolicyAndOut) {
  Result r = Acs("compress model.pt --out x.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--policy FILE is required"), std::string::npos);
  r = Acs("compress model.pt --policy p.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--out FILE is required"), std::string::npos);
}

TEST_F(CliTest, CompressMalformedPolicy) {
  std::string policy = Write("p.json", "{\"layers\": {\"conv1\": {\"sparsity\": \"half\"}}}");
  Result r = Acs("compress model.pt --policy " + policy + " --out x.pt --input 1x3x8x8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("sparsity"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists("x.pt"));
}

TEST_F(CliTest, CompressFormatErrors) {
  std::string policy = Write("p.json", "{\"version\": 1}");
  const std::string common = "compress model.pt --policy " + policy + " --out x.pt --input 1x3x8x8 ";
  Result r = Acs(common + "--format onnx");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--format is 'torch' or 'acs', not 'onnx'"), std::string::npos) << r.err;
  r = Acs(common + "--format acs --int8 ops");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--int8 applies to --format torch"), std::string::npos) << r.err;
  r = Acs(common + "--format acs --threads 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--threads must be >= 1"), std::string::npos) << r.err;
}

TEST_F(CliTest, EvalCorruptModel) {
  std::string model = Write("m.pt", "garbage");
  Result r = Acs("eval " + model + " --data " + (dir_ / "nope").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot load '" + model + "'"), std::string::npos) << r.err;
}

TEST_F(CliTest, EvalNeedsData) {
  Result r = Acs("eval m.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--data DATA is required"), std::string::npos);
}

TEST_F(CliTest, EvalBadLimit) {
  Result r = Acs("eval m.pt --data d --limit lots");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--limit expects an integer"), std::string::npos);
}

TEST_F(CliTest, SearchNeedsABudget) {
  Result r = Acs("search m.pt --input 1x3x8x8 --data d --out o");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--budget"), std::string::npos) << r.err;
}

TEST_F(CliTest, SearchRejectsAMalformedBudget) {
  Result r = Acs("search m.pt --input 1x3x8x8 --data d --out o --budget flops=half");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("flops=half"), std::string::npos) << r.err;
}

}  // namespace
