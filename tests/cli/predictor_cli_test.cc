// acs predictor collect / train / eval / predict end to end on this machine: real
// measurements (few and short) into a real SQLite store, then the model trained on them.
// Asserts what the commands produce, never how fast anything ran.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/core/test_models.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result Acs(const std::string& args) {
  const std::string out = acs::test_models::TempPath(".out"), err = acs::test_models::TempPath(".err");
  const std::string cmd = std::string(ACS_BINARY_DIR) + "/cli/acs " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
}

TEST(PredictorCliTest, CollectTrainEvalPredict) {
  const std::string plain = acs::test_models::BuildTestModel("plain");
  const std::string residual = acs::test_models::BuildTestModel("residual");
  const std::string store = acs::test_models::TempPath(".db");
  const std::string common = " --store " + store;
  Result c = Acs("predictor collect" + common +
                 " --samples 30 --heldout 8 --rounds 1 --round-samples 6 --threads 1 --min-seconds 0"
                 " --min-repeats 2 --passes 2 --input 1x3x16x16 --policies 1 --models " + plain + "," + residual);
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("roofline at 1 thread(s)"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("8 held-out and 8 repeated kernel measurements"), std::string::npos) << c.out;

  Result e = Acs("predictor eval" + common + " --json " + store + ".json --predictions " + store + ".csv");
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
  for (const char* word : {"xgboost", "flops", "roofline", "lookup", "kernels", "whole model", "Spearman", "repeat",
                           "8 held-out kernels (8 measured again)"}) {
    EXPECT_NE(e.out.find(word), std::string::npos) << word << "\n" << e.out;
  }
  EXPECT_NE(ReadFile(store + ".json").find("\"within10\""), std::string::npos);
  const std::string csv = ReadFile(store + ".csv");
  EXPECT_EQ(csv.rfind("kernel_key,kind,pattern,precision,threads,measured_us,predicted_us\n", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 9) << csv;  // header + 8 held-out kernels

  Result t = Acs("predictor train" + common);
  ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
  EXPECT_NE(t.out.find("latency model v1"), std::string::npos) << t.out;
  EXPECT_NE(Acs("predictor train" + common).out.find("latency model v2"), std::string::npos);

  const std::string policy = acs::test_models::TempPath(".json");
  std::ofstream(policy) << R"({"version": 1, "layers": {"features.conv2": {"pattern": "block", "block": 4,
                              "sparsity": 0.75}}})";
  Result p = Acs("predictor predict" + common + " --model " + plain + " --input 1x3x16x16 --policy " + policy);
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  EXPECT_NE(p.out.find("features.conv2"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("block1x4 75%"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("predicted latency"), std::string::npos) << p.out;
}

TEST(PredictorCliTest, ClearErrorsWithoutData) {
  const std::string store = acs::test_models::TempPath(".db");
  Result t = Acs("predictor train --store " + store);
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(t.err.find("run 'acs predictor collect'"), std::string::npos) << t.err;
  Result p = Acs("predictor predict --store " + store + " --model " + acs::test_models::BuildTestModel("plain") +
                 " --input 1x3x16x16");
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("no trained latency predictor"), std::string::npos) << p.err;
  Result d = Acs("predictor collect --store " + store + " --device-class someone-elses");
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find("--device-class local"), std::string::npos) << d.err;
  Result u = Acs("predictor frobnicate");
  EXPECT_EQ(u.exit_code, 2);
  Result bad = Acs("predictor collect --store /proc/acs/nope.db");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nope.db"), std::string::npos) << bad.err;
}

}  // namespace
