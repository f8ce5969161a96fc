// The farm on a fake clock: leases, heartbeats, a worker that vanishes (a task it held
// last fails naming it), reports that land in the measurement store once; workers bound to
// their token, results to their schema.
#include "server/farm.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

namespace acs::server {
namespace {

constexpr int64_t kToken = 7;  // the token the test's workers register with

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
  const WorkerRecord w1 = farm.Register({"w1", "m1", R"({"id": "m1-t1"})", "0.1", kToken}).value();
  const WorkerRecord w2 = farm.Register({"w2", "m1", R"({"id": "m1-t1"})", "0.1", kToken}).value();
  const WorkerRecord other = farm.Register({"w3", "m2", "{}", "0.1", kToken + 1}).value();  // a token per class
  const std::vector<std::string> ids = farm.EnqueueKernels("m1", {Spec(8), Spec(16)}, "initial").value();
  ASSERT_EQ(ids.size(), 2u);

  EXPECT_TRUE(farm.Lease(other.id, kToken + 1, 4)->empty());  // another machine's tasks
  auto leased = farm.Lease(w1.id, kToken, 4);
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 2u);
  // w1 heartbeats once, then vanishes.
  now += 8000;
  EXPECT_TRUE(farm.Heartbeat(w1.id, kToken, ids)->empty());
  EXPECT_TRUE(farm.Lease(w2.id, kToken, 4)->empty());
  now += 9000;  // within the extended lease
  EXPECT_TRUE(farm.Lease(w2.id, kToken, 4)->empty());
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
  auto again = farm.Lease(w2.id, kToken, 4);
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].attempts, 2);
  // w1 comes back late: its heartbeat names both tasks as lost, its report is refused.
  EXPECT_EQ(farm.Heartbeat(w1.id, kToken, ids)->size(), 2u);
  const std::string result = R"({"median_us": 12.5, "iqr_us": 0.5, "repeats": 20})";
  EXPECT_FALSE(*farm.Report(w1.id, kToken, ids[0], true, result, ""));
  EXPECT_EQ(farm.Report(w2.id, kToken, ids[0], true, "{\"nope\": 1}", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(*farm.Report(w2.id, kToken, ids[0], true, result, ""));
  EXPECT_FALSE(*farm.Report(w2.id, kToken, ids[0], true, result, ""));  // a retried report is not stored twice
  auto kernels = measurements->Kernels("m1").value();
  ASSERT_EQ(kernels.size(), 1u);
  EXPECT_EQ(kernels[0].spec.Key(), Spec(8).Key());
  EXPECT_DOUBLE_EQ(kernels[0].median_us, 12.5);
  EXPECT_EQ(kernels[0].source, "initial");
  EXPECT_TRUE(measurements->Device("m1").value().has_value());
  // The other task fails on every attempt and ends failed with its error.
  EXPECT_TRUE(*farm.Report(w2.id, kToken, ids[1], false, "", "out of memory"));
  ASSERT_EQ(farm.Lease(w2.id, kToken, 4)->size(), 1u);
  EXPECT_TRUE(*farm.Report(w2.id, kToken, ids[1], false, "", "out of memory"));
  EXPECT_EQ(store->GetTask(ids[1])->state, kTaskFailed);
  EXPECT_EQ(store->GetTask(ids[1])->error, "failed after 3 attempts: out of memory");
  // A task whose last lease expires fails naming the worker that stopped answering.
  const std::string lost = farm.EnqueueKernels("m1", {Spec(32)}, "initial").value().at(0);
  for (int attempt = 0; attempt < 3; ++attempt) {
    ASSERT_EQ(farm.Lease(w2.id, kToken, 4)->size(), 1u);
    now += o.lease_ms + 1;
  }
  EXPECT_EQ(farm.Sweep().value(), 1);
  EXPECT_EQ(store->GetTask(lost)->state, kTaskFailed);
  EXPECT_EQ(store->GetTask(lost)->error,
            "failed after 3 attempts: worker w2 stopped answering while running it (its lease expired)");
  EXPECT_EQ(farm.Lease("worker-unknown", kToken, 1).status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(FarmTest, WorkersAreBoundToTheirTokenAndResultsToTheirSchema) {
  const auto dir = std::filesystem::temp_directory_path() / ("acs_farm_bound_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = ServerStore::Open((dir / "s.db").string()).value();
  auto measurements = predictors::OpenSqliteStore((dir / "s.db").string()).value();
  Farm farm(store.get(), measurements.get(), FarmOptions());
  const WorkerRecord w = farm.Register({"w", "m1", "{}", "0.1", kToken}).value();
  // Registering again (a restarted worker) reuses the row.
  EXPECT_EQ(farm.Register({"w", "m1", "{}", "0.2", kToken})->id, w.id);
  EXPECT_EQ(store->ListWorkers()->size(), 1u);
  EXPECT_NE(farm.Register({"w", "m1", "{}", "0.1", kToken + 1})->id, w.id);  // another token's worker
  // A token is bound to the device class it first registered.
  const StatusOr<WorkerRecord> other_class = farm.Register({"w2", "m2", "{}", "0.1", kToken});
  EXPECT_EQ(other_class.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(other_class.status().message().find("m1"), std::string::npos) << other_class.status().ToString();
  EXPECT_TRUE(farm.Register({"w2", "m1", "{}", "0.1", kToken}).ok());  // another worker of the class

  TaskRecord model_task;
  model_task.kind = kTaskMeasureModel;
  model_task.machine_id = "m1";
  model_task.spec_json = "{}";
  const std::string task = store->EnqueueTask(model_task)->id;
  // Another token can neither lease, heartbeat nor report for this worker.
  EXPECT_EQ(farm.Lease(w.id, kToken + 1, 1).status().code(), StatusCode::kPermissionDenied);
  ASSERT_EQ(farm.Lease(w.id, kToken, 1)->size(), 1u);
  EXPECT_EQ(farm.Heartbeat(w.id, kToken + 1, {task}).status().code(), StatusCode::kPermissionDenied);
  const std::string good = R"({"runtime": {"median_us": 90, "min_us": 85}, "dense": {"median_us": 180}})";
  EXPECT_EQ(farm.Report(w.id, kToken + 1, task, true, good, "").status().code(), StatusCode::kPermissionDenied);
  // Malformed model results are refused; the task stays leased.
  for (const std::string bad : {"[]", R"({"runtime": "fast", "dense": {"median_us": 1}})",
                                R"({"runtime": {"median_us": -1}, "dense": {"median_us": 1}})",
                                R"({"runtime": {"median_us": 1, "min_us": "x"}, "dense": {"median_us": 1}})",
                                R"({"runtime": {"median_us": 1}})"}) {
    EXPECT_EQ(farm.Report(w.id, kToken, task, true, bad, "").status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(store->GetTask(task)->state, kTaskLeased);
  EXPECT_TRUE(*farm.Report(w.id, kToken, task, true, good, ""));
  EXPECT_EQ(store->GetTask(task)->state, kTaskDone);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace acs::server
