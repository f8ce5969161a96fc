// `acs sweep` against a real acs-server and worker on loopback: two flops budgets
// submitted over one upload, followed to their end, a row each with the measured speedup
// and the Pareto front, the same rows again from `--jobs`; --no-wait prints the ids at
// once, and a cancelled job makes the sweep exit 4.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_server_fixture.h"

namespace {

using namespace acs::test_process;
namespace v1 = acs::v1;

class SweepIntegrationTest : public acs::test_cli::CliServerTest {
 protected:
  std::string DirPrefix() const override { return "acs_sweep_it_"; }

  Output Acs(const std::string& args) { return CliServerTest::Acs("sweep", args); }
  size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }
};

TEST_F(SweepIntegrationTest, OneJobPerBudgetThenTheFront) {
  auto server = StartServer("server.log");
  auto worker = StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  const std::string job = " --input 1x3x16x16 --data name:fashion-mnist --agent random --episodes 3 --top-k 1";

  Output sweep =
      Acs(model_ + job + " --budgets flops=0.5x,0.7x --poll-seconds 0.5 --json " + (dir_ / "s.json").string());
  ASSERT_EQ(sweep.code, 0) << sweep.out << server->Log();
  EXPECT_EQ(Count(sweep.out, "model " + model_ + ":"), 1u) << sweep.out;      // uploaded once
  EXPECT_NE(sweep.out.find("[2/2] flops="), std::string::npos) << sweep.out;  // the progress lines
  EXPECT_NE(sweep.out.find("speedup predicted  measured"), std::string::npos) << sweep.out;
  const nlohmann::json rows = ReadJson("s.json");
  ASSERT_EQ(rows["rows"].size(), 2u) << sweep.out;
  EXPECT_EQ(rows["rows"][0]["budget"], "flops=0.5x");
  EXPECT_EQ(rows["rows"][1]["budget"], "flops=0.7x");
  for (const nlohmann::json& row : rows["rows"]) {
    EXPECT_EQ(row["state"], "SUCCEEDED") << row.dump();
    EXPECT_EQ(row["budget_met"], true) << row.dump();
    EXPECT_GT(row["measured_speedup"].get<double>(), 0) << row.dump();
    EXPECT_GT(row["accuracy"].get<double>(), 0) << row.dump();
    EXPECT_EQ(row["accuracy_source"], "validation") << row.dump();
  }
  ASSERT_GE(rows["front"].size(), 1u) << rows.dump(2);
  const std::string a = rows["rows"][0]["job_id"], b = rows["rows"][1]["job_id"];
  EXPECT_EQ(Get(a, user_token_).request().budget().ratio(), 0.5);
  EXPECT_EQ(Get(b, user_token_).request().model_sha256(), Get(a, user_token_).request().model_sha256());

  // Coming back later: the same rows from the job ids.
  Output again = Acs("--jobs " + a + "," + b + " --no-wait --json " + (dir_ / "again.json").string());
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(ReadJson("again.json"), rows);

  // --no-wait: the ids at once; a job cancelled makes the table's exit code 4.
  Output started = Acs(model_ + job + " --budgets flops=0.6x --episodes 5000 --no-wait");
  ASSERT_EQ(started.code, 0) << started.out;
  const std::string marker = "submitted flops=0.6x: ";
  const size_t at = started.out.find(marker);
  ASSERT_NE(at, std::string::npos) << started.out;
  const std::string id = started.out.substr(at + marker.size(), started.out.find('\n', at) - at - marker.size());
  EXPECT_EQ(Count(started.out, id), 3u) << started.out;  // stdout, and the submitted and hint lines
  grpc::ClientContext ctx;
  Auth(&ctx, user_token_);
  v1::CancelJobRequest cancel;
  cancel.set_id(id);
  v1::Job cancelled;
  ASSERT_TRUE(stub_->CancelJob(&ctx, cancel, &cancelled).ok());
  Output ended = Acs("--jobs " + id + " --poll-seconds 0.5");
  EXPECT_EQ(ended.code, 4) << ended.out;
  EXPECT_NE(ended.out.find("CANCELLED"), std::string::npos) << ended.out;
  EXPECT_NE(ended.out.find("no model (CANCELLED)"), std::string::npos) << ended.out;

  // Bad usage: MODEL and --jobs together.
  EXPECT_EQ(Acs(model_ + " --jobs " + a).code, 2);
  // A job option beside --jobs would be ignored: refused, naming it.
  Output ignored = Acs("--jobs " + a + " --episodes 9 --no-wait");
  EXPECT_EQ(ignored.code, 2) << ignored.out;
  EXPECT_NE(ignored.out.find("--episodes is for a new sweep"), std::string::npos) << ignored.out;
}

}  // namespace
