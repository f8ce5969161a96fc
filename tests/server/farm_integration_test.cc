// The real acs-server and two real acs-worker processes on a loopback port: workers
// register, a predictor campaign is measured by them and trained; a worker killed with
// SIGKILL loses its lease and the other finishes its task; the server killed mid-campaign
// and restarted finishes the campaign; bad tokens get clear statuses.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "process_util.h"

namespace {

using namespace acs::test_process;
namespace fs = std::filesystem;

class FarmIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("acs_farm_it_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    bin_ = ACS_BINARY_DIR;
    server_ = bin_ + "/server/acs-server";
    worker_ = bin_ + "/devices/acs-worker";
    acs_ = bin_ + "/cli/acs";
    data_ = (dir_ / "data").string();
    address_ = "127.0.0.1:" + std::to_string(FreePort());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Process> StartServer(const std::string& log) {
    return std::make_unique<Process>(
        std::vector<std::string>{server_, "--data-dir", data_, "--listen", address_, "--lease-seconds", "2",
                                 "--offline-seconds", "3", "--max-attempts", "5"},
        dir_ / log);
  }
  std::unique_ptr<Process> StartWorker(const std::string& name, const std::string& token) {
    return std::make_unique<Process>(std::vector<std::string>{worker_, "serve", "--server", address_, "--token", token,
                                                              "--name", name, "--min-seconds", "0.02", "--min-repeats",
                                                              "10"},
                                     dir_ / (name + ".log"));
  }
  Output Acs(const std::string& args, const std::string& token) {
    return Command(acs_ + " " + args + " --server " + address_ + " --token " + token, dir_);
  }

  fs::path dir_;
  std::string bin_, server_, worker_, acs_, data_, address_;
};

TEST_F(FarmIntegrationTest, CampaignSurvivesAKilledWorkerAndAKilledServer) {
  Output init = Command(server_ + " --init --data-dir " + data_, dir_);
  ASSERT_EQ(init.code, 0) << init.out;
  const std::string marker = "admin token (shown once): ";
  ASSERT_NE(init.out.find(marker), std::string::npos) << init.out;
  std::string admin = init.out.substr(init.out.find(marker) + marker.size());
  admin = admin.substr(0, admin.find('\n'));
  Output wt = Command(server_ + " token --data-dir " + data_ + " --name fleet --role worker", dir_);
  ASSERT_EQ(wt.code, 0) << wt.out;
  const std::string worker_token = wt.out.substr(0, wt.out.find('\n'));

  auto server = StartServer("server1.log");
  auto a = StartWorker("a", worker_token);
  auto b = StartWorker("b", worker_token);
  Output devices;
  ASSERT_TRUE(WaitFor(
      [&] {
        devices = Acs("devices", admin);
        size_t n = 0;
        for (size_t p = devices.out.find("online"); p != std::string::npos; p = devices.out.find("online", p + 1)) ++n;
        return devices.code == 0 && n == 2;
      },
      60))
      << devices.out << server->Log() << a->Log();
  // The machine id of the workers, from the listing.
  const std::string worker_line = devices.out.substr(devices.out.find("worker-"));
  std::istringstream fields(worker_line);
  std::string id, machine;
  fields >> id >> machine;
  ASSERT_FALSE(machine.empty());

  // Tokens: wrong, and right token but wrong role.
  Output bad = Acs("devices", "acs_u_not-a-token");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("unknown, revoked or expired token"), std::string::npos) << bad.out;
  Output wrong_role = Acs("devices", worker_token);
  EXPECT_EQ(wrong_role.code, 1);
  EXPECT_NE(wrong_role.out.find("needs the admin or user role"), std::string::npos) << wrong_role.out;
  Output not_admin = Acs("predictor campaign --device-class " + machine + " --samples 5", worker_token);
  EXPECT_EQ(not_admin.code, 1);
  EXPECT_NE(not_admin.out.find("needs the admin role"), std::string::npos) << not_admin.out;

  Output start = Acs("predictor campaign --device-class " + machine + " --samples 60", admin);
  ASSERT_EQ(start.code, 0) << start.out;
  EXPECT_NE(start.out.find("collecting"), std::string::npos) << start.out;
  Output twice = Acs("predictor campaign --device-class " + machine + " --samples 60", admin);
  EXPECT_EQ(twice.code, 1);
  EXPECT_NE(twice.out.find("running already"), std::string::npos) << twice.out;

  // Kill worker a while it works (some tasks done, more to come), then the server; restart it.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string st = Acs("predictor status --device-class " + machine, admin).out;
        const size_t at = st.find("collecting ");
        return at != std::string::npos && std::stoi(st.substr(at + 11)) >= 6;
      },
      120));
  EXPECT_EQ(a->Kill(SIGKILL), -SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Output mid = Acs("predictor status --device-class " + machine, admin);
  EXPECT_NE(mid.out.find("collecting"), std::string::npos) << "the campaign ended before the server was killed\n"
                                                           << mid.out;
  EXPECT_EQ(server->Kill(SIGKILL), -SIGKILL);
  server = StartServer("server2.log");

  Output wait;
  ASSERT_TRUE(WaitFor(
      [&] {
        wait = Acs("predictor status --device-class " + machine, admin);
        return wait.out.find("ready") != std::string::npos;
      },
      240))
      << wait.out << "\n--- server\n" << server->Log() << "\n--- worker b\n" << b->Log();
  EXPECT_NE(wait.out.find("version 1"), std::string::npos) << wait.out;
  // 60 + 60/6 held-out kernels: each measured at most once (reports are idempotent), and
  // all but those the runtime cannot run.
  const size_t at = wait.out.find(" kernel measurements");
  ASSERT_NE(at, std::string::npos) << wait.out;
  const int measured = std::stoi(wait.out.substr(wait.out.rfind(' ', at - 1) + 1));
  EXPECT_LE(measured, 70) << wait.out;
  EXPECT_GE(measured, 60) << wait.out;
  Output after;
  EXPECT_TRUE(WaitFor(
      [&] {
        after = Acs("devices", admin);
        return after.out.find("offline") != std::string::npos;  // worker a
      },
      15))
      << after.out;
  EXPECT_EQ(b->Kill(SIGTERM), 0) << b->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(FarmIntegrationTest, ServerRefusesClearly) {
  Output no_dir = Command(server_ + " --data-dir " + (dir_ / "missing").string() + " --listen " + address_, dir_);
  EXPECT_EQ(no_dir.code, 1);
  EXPECT_NE(no_dir.out.find("acs-server --init"), std::string::npos) << no_dir.out;
  Output open = Command(server_ + " --no-auth --listen 0.0.0.0:1 --data-dir " + data_, dir_);
  EXPECT_EQ(open.code, 2);
  EXPECT_NE(open.out.find("loopback"), std::string::npos) << open.out;
  Output unreachable = Command(acs_ + " devices --server " + address_ + " --token x", dir_);
  EXPECT_EQ(unreachable.code, 1);
  EXPECT_NE(unreachable.out.find("cannot reach acs-server"), std::string::npos) << unreachable.out;
}

}  // namespace
