// `acs campaign run` when the only worker of the device class is killed (SIGKILL) while a
// cell's verification task is leased to it, against the real acs-server and workers on
// loopback: the campaign does not hang. With a second worker started, the expired lease
// goes to it and the cell completes; with none and a lease allowed once
// (--max-attempts 1), the cell fails with an error naming the lost worker, and the report
// counts it as failed (not regressed, not missing) against a night that succeeded.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/sqlite_db.h"
#include "tests/cli/cli_server_fixture.h"

namespace {

using namespace acs::test_process;

class CampaignWorkerLossTest : public acs::test_cli::CliServerTest {
 protected:
  std::string DirPrefix() const override { return "acs_campaign_worker_loss_"; }

  // A one-cell campaign of the test model: 3 episodes, one policy verified.
  std::string Spec() {
    const nlohmann::json spec = {
        {"name", "it-worker-loss"},
        {"models", {{{"name", "plain"}, {"path", model_}, {"input", {1, 3, 16, 16}}, {"data", "name:fashion-mnist"}}}},
        {"budgets", nlohmann::json::array({"flops=0.5x"})},
        {"agents", nlohmann::json::array({"random"})},
        {"seeds", nlohmann::json::array({7})},
        {"episodes", 3},
        {"top_k", 1},
        {"time_limit_minutes", 10},
        {"compare", {{"gate", nlohmann::json::array({"validation_accuracy"})}}}};
    const std::string path = (dir_ / "spec.json").string();
    std::ofstream(path) << spec.dump(2);
    return path;
  }
  // A worker whose every measurement takes seconds: a task it leases is still running
  // when the test sees the lease.
  std::unique_ptr<Process> StartSlowWorker(const std::string& name) {
    return std::make_unique<Process>(
        std::vector<std::string>{worker_, "serve", "--server", address_, "--token", worker_token_, "--name", name,
                                 "--min-seconds", "5", "--min-repeats", "5"},
        dir_ / (name + ".log"));
  }
  // `acs campaign run SPEC --date DATE --out OUT.json` started on another thread.
  std::future<Output> RunCampaign(const std::string& spec, const std::string& date, const std::string& out) {
    const std::string cmd = "cd " + dir_.string() + " && timeout 600 " + std::string(ACS_BINARY_DIR) +
                            "/cli/acs campaign run " + spec + " --date " + date + " --out " + out +
                            " --poll-seconds 0.5 --server " + address_ + " --token " + user_token_;
    return std::async(std::launch::async, [this, cmd] { return Command(cmd, dir_); });
  }
  // An integer the query answers from the server's database (read while it runs).
  int64_t Query(const std::string& sql) {
    auto db = acs::Db::Open(data_ + "/acs.db");
    if (!db.ok()) return -1;
    auto q = (*db)->Prepare(sql);
    if (!q.ok()) return -1;
    auto row = q->Step();
    return row.ok() && *row ? q->Int(0) : -1;
  }
  // Waits until a task is leased, then kills `worker` (it holds the lease: it is the only one).
  void KillWhileLeased(Process& worker, const std::string& log) {
    ASSERT_TRUE(WaitFor([&] { return Query("SELECT COUNT(*) FROM tasks WHERE state = 'leased'") > 0; }, 180)) << log;
    EXPECT_EQ(worker.Kill(SIGKILL), -SIGKILL);
  }
};

TEST_F(CampaignWorkerLossTest, ASecondWorkerTakesOverTheDeadWorkersTask) {
  auto server = StartServer("server.log");
  auto slow = StartSlowWorker("slow");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  std::future<Output> run = RunCampaign(Spec(), "2026-02-01", "takeover.json");
  KillWhileLeased(*slow, server->Log());
  auto second = StartWorker("second");

  const Output out = run.get();
  EXPECT_EQ(out.code, 0) << out.out << server->Log();
  const nlohmann::json report = ReadJson("takeover.json");
  EXPECT_EQ(report["counts"]["new"], 1) << report.dump(2);
  EXPECT_EQ(report["counts"].value("failed", 0), 0) << report.dump(2);
  // The task the dead worker held was leased again, and done.
  EXPECT_EQ(Query("SELECT COUNT(*) FROM tasks WHERE state = 'done' AND attempts = 2"), 1) << server->Log();
  EXPECT_EQ(Query("SELECT COUNT(*) FROM tasks WHERE state <> 'done'"), 0) << server->Log();
}

TEST_F(CampaignWorkerLossTest, WithNoOtherWorkerTheCellFailsNamingTheLostWorker) {
  auto server = StartServer("server.log", {"--max-attempts", "1", "--verify-runs", "1"});
  auto worker = StartWorker("w1");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  const std::string spec = Spec();
  const Output night1 = RunCampaign(spec, "2026-02-01", "night1.json").get();
  ASSERT_EQ(night1.code, 0) << night1.out << server->Log();
  worker->Kill(SIGTERM);

  // The next night the only worker of the class dies holding the cell's one verification
  // task; nobody takes it over.
  auto slow = StartSlowWorker("slow");
  ASSERT_TRUE(WaitFor([&] { return Query("SELECT COUNT(*) FROM workers WHERE name = 'slow'") == 1; }, 60))
      << server->Log();
  std::future<Output> run = RunCampaign(spec, "2026-02-02", "night2.json");
  KillWhileLeased(*slow, server->Log());
  const Output out = run.get();
  EXPECT_EQ(out.code, 4) << out.out << server->Log();  // cells failed, nothing gated regressed
  const std::string lost = "worker slow stopped answering while running it (its lease expired)";
  EXPECT_NE(out.out.find("plain flops=0.5x random seed=7: failed: "), std::string::npos) << out.out;
  EXPECT_NE(out.out.find(lost), std::string::npos) << out.out;
  const nlohmann::json report = ReadJson("night2.json");
  EXPECT_EQ(report["baseline"]["date"], "2026-02-01") << report.dump(2);
  EXPECT_EQ(report["counts"]["failed"], 1) << report.dump(2);
  EXPECT_EQ(report["counts"].value("regressed", 0), 0) << report.dump(2);
  EXPECT_EQ(report["counts"].value("missing", 0), 0) << report.dump(2);
  ASSERT_EQ(report["cells"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["cells"][0]["verdict"], "failed");
  EXPECT_NE(report["cells"][0]["error"].get<std::string>().find(lost), std::string::npos) << report.dump(2);
}

}  // namespace
