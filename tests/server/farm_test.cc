// The farm on a fake clock: leases, heartbeats, a worker that vanishes, reports that land
// in the measurement store once.
#include "server/farm.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

namespace acs::server {
namespace {

KernelSpec Spec(int64_t out) {
  KernelSpec s;
  s.in_channels = 8;
  s.out_channels = out;
  s.kernel = {3, 3};
  s.padding = {1, 1};
  s.input = {1, 8, 8, 8};
  return s;
}

TEST(FarmTest, AVanishedWorkersTasksCompleteOnAnother) {
  const auto dir = std::filesystem::temp_directory_path() / ("acs_farm_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = ServerStore::Open((dir / "s.db").string()).value();
  auto measurements = predictors::OpenSqliteStore((dir / "s.db").string()).value();
  int64_t now = 1000000;
  FarmOptions o;
  o.lease_ms = 10000;
  o.offline_after_ms = 5000;
  Farm farm(store.get(), measurements.get(), o, [&] { return now; });

  EXPECT_EQ(farm.Register({"w", "", "", "1"}).status().code(), StatusCode::kInvalidArgument);
  const WorkerRecord w1 = farm.Register({"w1", "m1", R"({"id": "m1-t1"})", "0.1"}).value();
  const WorkerRecord w2 = farm.Register({"w2", "m1", R"({"id": "m1-t1"})", "0.1"}).value();
  const WorkerRecord other = farm.Register({"w3", "m2", "{}", "0.1"}).value();
  const std::vector<std::string> ids = farm.EnqueueKernels("m1", {Spec(8), Spec(16)}, "initial").value();
  ASSERT_EQ(ids.size(), 2u);

  EXPECT_TRUE(farm.Lease(other.id, 4)->empty());  // another machine's tasks
  auto leased = farm.Lease(w1.id, 4);
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 2u);
  // w1 heartbeats once, then vanishes.
  now += 8000;
  EXPECT_TRUE(farm.Heartbeat(w1.id, ids)->empty());
  EXPECT_TRUE(farm.Lease(w2.id, 4)->empty());
  now += 9000;  // within the extended lease
  EXPECT_TRUE(farm.Lease(w2.id, 4)->empty());
  auto devices = farm.Devices().value();
  for (const DeviceView& d : devices) {
    if (d.worker.id == w1.id) {
      EXPECT_FALSE(d.online);
    }
    if (d.worker.id == w2.id) {
      EXPECT_TRUE(d.online);
    }
  }
  now += 2000;  // the lease is over: w2 gets both
  auto again = farm.Lease(w2.id, 4);
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].attempts, 2);
  // w1 comes back late: its heartbeat names both tasks as lost, its report is refused.
  EXPECT_EQ(farm.Heartbeat(w1.id, ids)->size(), 2u);
  const std::string result = R"({"median_us": 12.5, "iqr_us": 0.5, "repeats": 20})";
  EXPECT_FALSE(*farm.Report(w1.id, ids[0], true, result, ""));
  EXPECT_EQ(farm.Report(w2.id, ids[0], true, "{\"nope\": 1}", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(*farm.Report(w2.id, ids[0], true, result, ""));
  EXPECT_FALSE(*farm.Report(w2.id, ids[0], true, result, ""));  // a retried report is not stored twice
  auto kernels = measurements->Kernels("m1").value();
  ASSERT_EQ(kernels.size(), 1u);
  EXPECT_EQ(kernels[0].spec.Key(), Spec(8).Key());
  EXPECT_DOUBLE_EQ(kernels[0].median_us, 12.5);
  EXPECT_EQ(kernels[0].source, "initial");
  EXPECT_TRUE(measurements->Device("m1").value().has_value());
  // The other task fails on every attempt and ends failed with its error.
  EXPECT_TRUE(*farm.Report(w2.id, ids[1], false, "", "out of memory"));
  ASSERT_EQ(farm.Lease(w2.id, 4)->size(), 1u);
  EXPECT_TRUE(*farm.Report(w2.id, ids[1], false, "", "out of memory"));
  EXPECT_EQ(store->GetTask(ids[1])->state, kTaskFailed);
  EXPECT_EQ(store->GetTask(ids[1])->error, "failed after 3 attempts: out of memory");
  EXPECT_EQ(farm.Lease("worker-unknown", 1).status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace acs::server
