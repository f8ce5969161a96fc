// A job's wait on the workers of its device class (WorkerWait) on a fake host and clock:
// it fails naming the wait once no online worker of the class has been seen for its limit,
// and only online workers of the class count (jobs preparing and verifying with no worker:
// JobTimeLimitTest). acs-server --no-worker-seconds sets the limit
// (SchedulerOptions::no_worker_seconds).
#include "server/worker_wait.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/flags.h"
#include "server/server_main.h"

namespace acs::server {
namespace {

using std::chrono::milliseconds;

// A host whose devices (or error) the test sets; WorkerWait calls nothing else of it.
class FakeDevicesHost : public LocalJobHost {
 public:
  FakeDevicesHost() : LocalJobHost(nullptr, nullptr, nullptr, nullptr) {}
  StatusOr<std::vector<DeviceView>> Devices() override {
    if (!error.ok()) return error;
    return devices;
  }

  std::vector<DeviceView> devices;
  Status error;
};

DeviceView Device(const std::string& machine_id, bool online) {
  DeviceView d;
  d.worker.machine_id = machine_id;
  d.online = online;
  return d;
}

TEST(WorkerWaitTest, FailsOnceNoOnlineWorkerOfTheClassWasSeenForTheLimit) {
  FakeDevicesHost host;
  const WorkerWait::Clock::time_point t0 = WorkerWait::Clock::now();
  WorkerWait wait(&host, "m1", 2, t0);
  // Another class's online worker and the class's offline one do not count.
  host.devices = {Device("m2", true), Device("m1", false)};
  EXPECT_TRUE(wait.Check("verifying", t0 + milliseconds(1000)).ok());
  EXPECT_TRUE(wait.Check("verifying", t0 + milliseconds(2000)).ok());  // at the limit
  const Status late = wait.Check("verifying", t0 + milliseconds(2001));
  EXPECT_EQ(late.code(), StatusCode::kUnavailable);
  EXPECT_EQ(late.message(), "no worker of device class m1 was online for 2 s while verifying");
}

TEST(WorkerWaitTest, AnOnlineWorkerOfTheClassStartsTheLimitAgain) {
  FakeDevicesHost host;
  const WorkerWait::Clock::time_point t0 = WorkerWait::Clock::now();
  WorkerWait wait(&host, "m1", 2, t0);
  host.devices = {Device("m1", true)};
  EXPECT_TRUE(wait.Check("preparing", t0 + milliseconds(1500)).ok());
  host.devices = {Device("m1", false)};  // it went offline after that check
  EXPECT_TRUE(wait.Check("preparing", t0 + milliseconds(3500)).ok());
  EXPECT_EQ(wait.Check("preparing", t0 + milliseconds(3501)).message(),
            "no worker of device class m1 was online for 2 s while preparing");
  // Seen online again: the wait goes on from there.
  host.devices = {Device("m2", false), Device("m1", true)};
  EXPECT_TRUE(wait.Check("preparing", t0 + milliseconds(10000)).ok());
  host.devices.clear();
  EXPECT_TRUE(wait.Check("preparing", t0 + milliseconds(12000)).ok());
  EXPECT_FALSE(wait.Check("preparing", t0 + milliseconds(12001)).ok());
}

TEST(WorkerWaitTest, TheHostsErrorIsReturned) {
  FakeDevicesHost host;
  const WorkerWait::Clock::time_point t0 = WorkerWait::Clock::now();
  WorkerWait wait(&host, "m1", 2, t0);
  host.error = Status::Unavailable("the server's channel is closed");
  const Status s = wait.Check("verifying", t0 + milliseconds(100));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "the server's channel is closed");
}

TEST(WorkerWaitTest, AcsServerNoWorkerSecondsSetsTheLimit) {
  Flags flags;
  StatusOr<SchedulerOptions> o = SchedulerOptionsOf(flags, "/tmp/unused");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->no_worker_seconds, 120);  // the default
  flags.values["no-worker-seconds"] = "7.5";
  o = SchedulerOptionsOf(flags, "/tmp/unused");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->no_worker_seconds, 7.5);
  for (const char* refused : {"0", "-3", "nan"}) {
    flags.values["no-worker-seconds"] = refused;
    o = SchedulerOptionsOf(flags, "/tmp/unused");
    ASSERT_FALSE(o.ok()) << refused;
    EXPECT_EQ(o.status().message(), "--no-worker-seconds must be > 0") << refused;
  }
  flags.values["no-worker-seconds"] = "soon";
  o = SchedulerOptionsOf(flags, "/tmp/unused");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("no-worker-seconds"), std::string::npos) << o.status().ToString();
}

}  // namespace
}  // namespace acs::server
