// The device farm (DESIGN §6) without gRPC: workers register their device class, lease
// measurement tasks of their machine id, extend the leases by heartbeats and report
// results; expired leases are re-queued by Sweep, a task failing max_attempts times fails
// with its error, and a worker not heard from for offline_after_ms shows offline. Kernel
// results go into the measurement store the predictors train from. A worker is bound to
// the token that registered it: only that token leases, heartbeats and reports for it.
// Results are checked against their schema before they are accepted. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "predictors/store.h"
#include "server/server_store.h"

namespace acs::server {

struct FarmOptions {
  int64_t lease_ms = 60000;          // a leased task returns to the queue after this without a heartbeat
  int heartbeat_seconds = 5;         // what workers are told to use (well below lease_ms)
  int max_attempts = 3;              // leases per task before it fails
  int64_t offline_after_ms = 20000;  // a worker silent this long shows offline
  int max_lease_batch = 8;           // tasks per Lease call at most
};

struct WorkerRegistration {
  std::string name;
  std::string machine_id;   // DeviceClass::MachineId of the worker
  std::string device_json;  // DeviceClass::ToJson
  std::string version;
  int64_t token_id = 0;     // the caller's token (Principal::token_id)
};

struct DeviceView {
  WorkerRecord worker;
  bool online = false;
};

inline constexpr const char* kTaskMeasureKernel = "measure-kernel";
inline constexpr const char* kTaskMeasureModel = "measure-model";

class Farm {
 public:
  // Both stores must outlive the farm. clock: unix milliseconds (tests pass a fake).
  Farm(ServerStore* store, predictors::MeasurementStore* measurements, FarmOptions options,
       std::function<int64_t()> clock = nullptr);

  // InvalidArgument for a registration without machine id; PermissionDenied when the
  // token (other than the no-auth 0) registered another machine id before. The same
  // token, name and machine id register the same worker again (its row is reused).
  StatusOr<WorkerRecord> Register(const WorkerRegistration& registration);
  // Each call below names the worker and the caller's token: NotFound for an unknown
  // worker (it must register again), PermissionDenied when another token registered it.
  // Sweeps expired leases, then leases up to max tasks (capped by max_lease_batch).
  StatusOr<std::vector<TaskRecord>> Lease(const std::string& worker_id, int64_t token_id, int max);
  // Extends the leases; returns the ids no longer leased to this worker (stop those).
  StatusOr<std::vector<std::string>> Heartbeat(const std::string& worker_id, int64_t token_id,
                                               const std::vector<std::string>& task_ids);
  // Accepted once per task and lease; a kernel result is added to the measurement store.
  // InvalidArgument when an ok result does not follow its task kind's schema (a kernel
  // measurement record; a model measurement with positive runtime and dense times).
  StatusOr<bool> Report(const std::string& worker_id, int64_t token_id, const std::string& task_id, bool ok,
                        const std::string& result_json, const std::string& error);
  // The model blob (sha256) of a measure-model task leased to this worker;
  // FailedPrecondition when the task is not leased to it.
  StatusOr<std::string> ModelOfLeasedTask(const std::string& worker_id, int64_t token_id, const std::string& task_id);
  // Kernel measurement tasks of a campaign for a machine; `source` is kept with each result
  // ("initial", "heldout", ...).
  StatusOr<std::vector<std::string>> EnqueueKernels(const std::string& machine_id, const std::vector<KernelSpec>& specs,
                                                    const std::string& source, const std::string& job_id = "");
  // Re-queues or fails expired leases; the number of tasks changed.
  StatusOr<int> Sweep();
  StatusOr<std::vector<DeviceView>> Devices();
  const FarmOptions& options() const { return options_; }
  int64_t Now() const { return clock_(); }

 private:
  // The worker's record after the token check; its last-seen time is updated.
  StatusOr<WorkerRecord> Caller(const std::string& worker_id, int64_t token_id);

  ServerStore* store_;
  predictors::MeasurementStore* measurements_;
  FarmOptions options_;
  std::function<int64_t()> clock_;
};

}  // namespace acs::server
