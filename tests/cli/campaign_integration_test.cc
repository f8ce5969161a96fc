// `acs campaign run` against a real acs-server and worker on loopback: idempotent per
// date, a run with no change exits 0, and one cell made worse on purpose (its model
// replaced by one that always answers another class) is the only one flagged, exit 3, after
// being measured again on the worker; the environment is stored with each run; a run
// without --date after missed nights says so (and --catch-up runs yesterday's); a spec with
// a bad field is refused naming it; cells past the spec's time limit are failed by the
// server (exit 4).
#include <gtest/gtest.h>
#include <torch/script.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_server_fixture.h"

namespace {

using namespace acs::test_process;
namespace v1 = acs::v1;

class CampaignIntegrationTest : public acs::test_cli::CliServerTest {
 protected:
  std::string DirPrefix() const override { return "acs_campaign_it_"; }

  // The test model with its last layer answering `cls` whatever the input (weights 0,
  // bias one-hot), so that compression cannot change its answers.
  std::string ConstantModel(int cls, const std::string& name) {
    torch::NoGradGuard no_grad;
    torch::jit::Module m = torch::jit::load(model_);
    for (const auto& p : m.named_parameters()) {
      if (p.name == "classifier.fc2.weight") p.value.detach().zero_();
      if (p.name == "classifier.fc2.bias") {
        p.value.detach().zero_();
        p.value.detach()[cls] = 5.0;
      }
    }
    const std::string path = (dir_ / name).string();
    m.save(path);
    return path;
  }
  // A CIFAR-10 binary batch of `n` images, every label `cls`.
  std::string TestSet(int cls, int n) {
    const std::string path = (dir_ / "test.bin").string();
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < n; ++i) {
      out.put(static_cast<char>(cls));
      for (int b = 0; b < 3072; ++b) out.put(static_cast<char>((b * 7 + i * 13) % 256));
    }
    return path;
  }
  std::string Spec(const std::string& name, const std::string& model_b) { return Write(name, SpecJson(model_b)); }
  nlohmann::json SpecJson(const std::string& model_b) {
    return {{"name", "it-nightly"},
            {"models",
             {{{"name", "a"},
               {"path", model_a_},
               {"input", {1, 3, 16, 16}},
               {"data", "name:fashion-mnist"},
               {"test_data", test_set_}},
              {{"name", "b"},
               {"path", model_b},
               {"input", {1, 3, 16, 16}},
               {"data", "name:fashion-mnist"},
               {"test_data", test_set_}}}},
            {"budgets", nlohmann::json::array({"flops=0.5x"})},
            {"agents", nlohmann::json::array({"random"})},
            {"seeds", nlohmann::json::array({7})},
            {"episodes", 3},
            {"top_k", 1},
            {"time_limit_minutes", 60},
            {"compare", {{"gate", nlohmann::json::array({"test_accuracy"})}}}};
  }
  std::string Write(const std::string& name, const nlohmann::json& spec) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << spec.dump(2);
    return path;
  }
  Output Acs(const std::string& args) { return CliServerTest::Acs("campaign", args); }
  int JobCount() {
    grpc::ClientContext ctx;
    Auth(&ctx, user_token_);
    v1::ListJobsRequest req;
    req.set_page_size(100);
    v1::ListJobsReply reply;
    EXPECT_TRUE(stub_->ListJobs(&ctx, req, &reply).ok());
    return reply.jobs_size();
  }

  std::string model_a_, test_set_;
};

TEST_F(CampaignIntegrationTest, IdempotentPerDateAndFlagsTheCellMadeWorse) {
  // One verification task per cell: the single worker measures the cells one after another.
  auto server = StartServer("server.log", {"--verify-runs", "1"});
  auto worker = StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  model_a_ = ConstantModel(3, "answers3.pt");
  const std::string answers3_b = ConstantModel(3, "answers3b.pt");
  const std::string answers5 = ConstantModel(5, "answers5.pt");
  test_set_ = TestSet(3, 40);
  const std::string same = Spec("nightly.json", answers3_b);
  const std::string worse = Spec("nightly-worse.json", answers5);

  // Day 1: both cells new; run again for the same date: nothing submitted.
  Output first = Acs("run " + same + " --date 2026-01-01 --out day1.json --poll-seconds 0.5");
  ASSERT_EQ(first.code, 0) << first.out << server->Log();
  EXPECT_EQ(ReadJson("day1.json")["counts"]["new"], 2) << first.out;
  EXPECT_EQ(JobCount(), 2);
  // The progress display: a line per change of a cell's state, with the cells ended so far.
  EXPECT_NE(first.out.find("/2] a flops=0.5x random seed=7: "), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("[2/2] "), std::string::npos) << first.out;
  Output again = Acs("run " + same + " --date 2026-01-01 --out day1-again.json --poll-seconds 0.5");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("exists, resuming"), std::string::npos) << again.out;
  EXPECT_EQ(JobCount(), 2);
  EXPECT_EQ(ReadJson("day1-again.json")["cells"], ReadJson("day1.json")["cells"]);

  // Day 2, no change: compared with day 1, nothing flagged, exit 0.
  Output day2 = Acs("run " + same + " --date 2026-01-02 --out day2.json --poll-seconds 0.5");
  ASSERT_EQ(day2.code, 0) << day2.out;
  nlohmann::json r2 = ReadJson("day2.json");
  EXPECT_EQ(r2["baseline"]["date"], "2026-01-01");
  EXPECT_EQ(r2["counts"]["unchanged"], 2) << r2.dump(2);
  EXPECT_EQ(JobCount(), 4);
  // The server stored each run's environment: the same workers and versions both nights.
  EXPECT_TRUE(r2["environment_known"].get<bool>()) << r2.dump(2);
  EXPECT_EQ(r2["environment_changes"].size(), 0u) << r2.dump(2);
  EXPECT_NE(r2["header"]["runtime"].get<std::string>().find("libtorch"), std::string::npos) << r2.dump(2);
  ASSERT_EQ(r2["header"]["workers"].size(), 1u);
  EXPECT_EQ(r2["baseline_age_days"], 1);

  // Day 3: cell b's model now answers class 5: its test accuracy drops from 1 to 0.
  Output day3 = Acs("run " + worse + " --date 2026-01-03 --out day3.json --poll-seconds 0.5");
  EXPECT_EQ(day3.code, 3) << day3.out;
  nlohmann::json r3 = ReadJson("day3.json");
  EXPECT_EQ(r3["counts"]["regressed"], 1) << r3.dump(2);
  EXPECT_EQ(r3["counts"]["unchanged"], 1);
  EXPECT_TRUE(r3["spec_changed"].get<bool>());
  ASSERT_GE(r3["cells"].size(), 1u);
  EXPECT_EQ(r3["cells"][0]["key"], "b flops=0.5x random seed=7");
  EXPECT_EQ(r3["cells"][0]["verdict"], "regressed");
  EXPECT_EQ(r3["cells"][0]["metrics"]["test_accuracy"]["baseline"], 1.0);
  EXPECT_EQ(r3["cells"][0]["metrics"]["test_accuracy"]["today"], 0.0);
  // The suspect cell was measured again on the worker before it was flagged; its
  // accuracy drop stands (deterministic), and the report shows both measurements.
  const nlohmann::json remeasured = r3["cells"][0]["remeasure"];
  EXPECT_EQ(remeasured["outcome"], "confirmed on re-measure") << r3.dump(2);
  ASSERT_EQ(remeasured["runs"].size(), 3u) << r3.dump(2);
  for (const nlohmann::json& run : remeasured["runs"]) {
    EXPECT_GT(run["measured_us"].get<double>(), 0) << run.dump();
    EXPECT_GT(run["dense_measured_us"].get<double>(), 0) << run.dump();
  }
  EXPECT_TRUE(r3["cells"][0]["metrics"]["measured_speedup"]["today"].is_number());
  EXPECT_TRUE(r3["cells"][0]["metrics"]["measured_speedup"]["remeasured"].is_number());
  EXPECT_NE(day3.out.find("suspect, measuring it again"), std::string::npos) << day3.out;
  EXPECT_FALSE(r3["cells"][1].contains("remeasure"));  // the unchanged cell was not

  // The stored runs read back: list, show, and the report as HTML (same exit code).
  Output list = Acs("list --campaign it-nightly");
  ASSERT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find("2026-01-03"), std::string::npos);
  EXPECT_NE(list.out.find("2026-01-01"), std::string::npos);
  Output show = Acs("show --campaign it-nightly --date 2026-01-02");
  ASSERT_EQ(show.code, 0) << show.out;
  EXPECT_NE(show.out.find("a flops=0.5x random seed=7"), std::string::npos) << show.out;
  Output html = Acs("report --campaign it-nightly --date 2026-01-03 --out day3.html");
  EXPECT_EQ(html.code, 3) << html.out;
  std::ifstream page(dir_ / "day3.html");
  const std::string text((std::istreambuf_iterator<char>(page)), {});
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("regressed"), std::string::npos);
  EXPECT_NE(text.find("confirmed on re-measure"), std::string::npos);  // stored with the run
  EXPECT_NE(text.find("environment unchanged since the baseline"), std::string::npos);

  // No --date, today: the last run (2026-01-03) is older than yesterday. Said on stderr
  // and at the top of the report; nothing is run for the missed nights without --catch-up.
  Output today = Acs("run " + same + " --out today.json --poll-seconds 0.5");
  EXPECT_EQ(today.code, 0) << today.out;
  EXPECT_NE(today.out.find("night(s) missed: the last run of it-nightly was on 2026-01-03"), std::string::npos)
      << today.out;
  nlohmann::json rt = ReadJson("today.json");
  EXPECT_EQ(rt["baseline"]["date"], "2026-01-03");
  EXPECT_GT(rt["baseline_age_days"].get<int>(), 1);
  EXPECT_NE(rt["missed_nights"].get<std::string>().find("--catch-up would first run"), std::string::npos);
  EXPECT_EQ(JobCount(), 8);
  // --catch-up: one run for the latest missed night (yesterday), then today's (which
  // exists: nothing submitted), now compared with yesterday.
  Output caught = Acs("run " + same + " --catch-up --out caught.json --poll-seconds 0.5");
  EXPECT_EQ(caught.code, 0) << caught.out;
  EXPECT_NE(caught.out.find("catching up"), std::string::npos) << caught.out;
  EXPECT_EQ(JobCount(), 10);
  nlohmann::json rc = ReadJson("caught.json");
  EXPECT_EQ(rc["baseline_age_days"], 1) << rc.dump(2);
  Output list_all = Acs("list --campaign it-nightly");
  EXPECT_NE(list_all.out.find(rc["baseline"]["date"].get<std::string>()), std::string::npos) << list_all.out;

  // A spec with a bad field is refused before anything is submitted, the field named (exit
  // 2, as bad usage).
  {
    nlohmann::json bad = SpecJson(answers3_b);
    bad["agents"] = {"amc", "dqn"};
    Output refused = Acs("run " + Write("bad.json", bad) + " --date 2026-03-01");
    EXPECT_EQ(refused.code, 2) << refused.out;
    EXPECT_NE(refused.out.find("bad.json: agents[1]: unknown agent 'dqn'"), std::string::npos) << refused.out;
    EXPECT_EQ(JobCount(), 10);
  }

  // Each cell's job carries the spec's time limit (1 minute): the server fails the cells
  // still searching once they have run that long; the run reports them as failed and exits
  // 4 (cells failed), not 3.
  {
    nlohmann::json slow = SpecJson(answers3_b);
    slow["name"] = "it-limit";
    slow["episodes"] = 100000;
    slow["time_limit_minutes"] = 1;
    Output limited = Acs("run " + Write("slow.json", slow) + " --date 2026-01-01 --out limit.json --poll-seconds 1");
    EXPECT_EQ(limited.code, 4) << limited.out;
    EXPECT_NE(limited.out.find("a flops=0.5x random seed=7: failed: the job exceeded its time limit of 60 s while "),
              std::string::npos)
        << limited.out;
    nlohmann::json rl = ReadJson("limit.json");
    EXPECT_EQ(rl["counts"]["failed"], 2) << rl.dump(2);
    ASSERT_GE(rl["cells"].size(), 1u);
    EXPECT_EQ(rl["cells"][0]["state"], "failed") << rl.dump(2);
    EXPECT_NE(rl["cells"][0]["error"].get<std::string>().find("exceeded its time limit of 60 s"), std::string::npos)
        << rl.dump(2);
    Output report = Acs("report --campaign it-limit --date 2026-01-01 --format md");
    EXPECT_EQ(report.code, 4) << report.out;
    EXPECT_NE(report.out.find("| a flops=0.5x random seed=7 | failed |"), std::string::npos) << report.out;
  }

  // Another user sees none of it.
  const std::string bob = Token("bob", "user");
  Output other = Command(std::string(ACS_BINARY_DIR) +
                             "/cli/acs campaign show --campaign it-nightly --date "
                             "2026-01-01 --server " +
                             address_ + " --token " + bob,
                         dir_);
  EXPECT_EQ(other.code, 1) << other.out;
  EXPECT_NE(other.out.find("NOT_FOUND"), std::string::npos) << other.out;
}

}  // namespace
