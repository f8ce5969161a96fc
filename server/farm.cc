#include "server/farm.h"

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

namespace acs::server {
namespace {

bool PositiveNumber(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>()) &&
         j[key].get<double>() > 0;
}

// Optional fields must be numbers when present.
bool NumberOrAbsent(const nlohmann::json& j, const char* key) { return !j.contains(key) || j[key].is_number(); }

// A measure-model result: {"runtime": {"median_us" > 0, ...}, "dense": {"median_us" > 0, ...}}.
bool IsModelMeasurement(const nlohmann::json& r) {
  for (const char* part : {"runtime", "dense"}) {
    if (!r.is_object() || !r.contains(part) || !PositiveNumber(r[part], "median_us")) return false;
    if (!NumberOrAbsent(r[part], "min_us") || !NumberOrAbsent(r[part], "iqr_us")) return false;
  }
  return true;
}

}  // namespace

Farm::Farm(ServerStore* store, predictors::MeasurementStore* measurements, FarmOptions options,
           std::function<int64_t()> clock)
    : store_(store), measurements_(measurements), options_(options), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

StatusOr<WorkerRecord> Farm::Register(const WorkerRegistration& r) {
  if (r.machine_id.empty()) return Status::InvalidArgument("a worker must say its machine id (device class)");
  WorkerRecord w;
  w.token_id = r.token_id;
  ACS_ASSIGN_OR_RETURN(std::vector<WorkerRecord> known, store_->ListWorkers());
  for (const WorkerRecord& k : known) {
    if (k.token_id != r.token_id) continue;
    if (r.token_id != 0 && k.machine_id != r.machine_id) {
      return Status::PermissionDenied("this worker token speaks for device class " + k.machine_id +
                                      ", not " + r.machine_id + ": a class needs a token of its own");
    }
    if (k.name == (r.name.empty() ? "worker" : r.name) && k.machine_id == r.machine_id) w.id = k.id;  // again
  }
  w.name = r.name.empty() ? "worker" : r.name;
  w.machine_id = r.machine_id;
  w.device_json = r.device_json;
  w.version = r.version;
  ACS_ASSIGN_OR_RETURN(WorkerRecord stored, store_->RegisterWorker(w, Now()));
  if (measurements_ && !r.device_json.empty()) {
    // Keep the device description (without roofline) unless one is stored already.
    ACS_ASSIGN_OR_RETURN(std::optional<std::string> known, measurements_->Device(r.machine_id));
    if (!known) ACS_RETURN_IF_ERROR(measurements_->PutDevice(r.machine_id, r.device_json));
  }
  return stored;
}

StatusOr<WorkerRecord> Farm::Caller(const std::string& worker_id, int64_t token_id) {
  ACS_ASSIGN_OR_RETURN(std::vector<WorkerRecord> workers, store_->ListWorkers());
  for (const WorkerRecord& w : workers) {
    if (w.id != worker_id) continue;
    if (w.token_id != token_id) {
      return Status::PermissionDenied("worker " + worker_id + " was registered with another token");
    }
    ACS_RETURN_IF_ERROR(store_->TouchWorker(worker_id, Now()));
    return w;
  }
  return Status::NotFound("no worker '" + worker_id + "'; register first");
}

StatusOr<std::vector<TaskRecord>> Farm::Lease(const std::string& worker_id, int64_t token_id, int max) {
  ACS_ASSIGN_OR_RETURN(WorkerRecord worker, Caller(worker_id, token_id));
  ACS_RETURN_IF_ERROR(Sweep().status());
  const int n = std::max(0, std::min(max, options_.max_lease_batch));
  return store_->LeaseTasks(worker_id, worker.machine_id, n, Now(), options_.lease_ms);
}

StatusOr<std::vector<std::string>> Farm::Heartbeat(const std::string& worker_id, int64_t token_id,
                                                   const std::vector<std::string>& task_ids) {
  ACS_RETURN_IF_ERROR(Caller(worker_id, token_id).status());
  return store_->ExtendLeases(worker_id, task_ids, Now(), options_.lease_ms);
}

StatusOr<bool> Farm::Report(const std::string& worker_id, int64_t token_id, const std::string& task_id, bool ok,
                            const std::string& result_json, const std::string& error) {
  ACS_RETURN_IF_ERROR(Caller(worker_id, token_id).status());
  ACS_ASSIGN_OR_RETURN(TaskRecord task, store_->GetTask(task_id));
  if (ok && task.kind == kTaskMeasureModel && !IsModelMeasurement(nlohmann::json::parse(result_json, nullptr, false))) {
    return Status::InvalidArgument("result of task " + task_id + " is not a model measurement (runtime and dense " +
                                   "objects with a positive median_us)");
  }
  predictors::KernelRecord record;
  const bool kernel = ok && task.kind == kTaskMeasureKernel;
  if (kernel) {
    // Validate before accepting, so that a malformed result leaves the task leased.
    const nlohmann::json r = nlohmann::json::parse(result_json, nullptr, false);
    const nlohmann::json spec = nlohmann::json::parse(task.spec_json, nullptr, false);
    if (!PositiveNumber(r, "median_us") || !NumberOrAbsent(r, "iqr_us") || !NumberOrAbsent(r, "min_us") ||
        !spec.is_object()) {
      return Status::InvalidArgument("result of task " + task_id + " is not a kernel measurement record");
    }
    ACS_ASSIGN_OR_RETURN(record.spec, ParseKernelSpec(spec.value("spec", nlohmann::json())));
    record.device_class = task.machine_id;
    record.median_us = r["median_us"].get<double>();
    record.iqr_us = r.value("iqr_us", 0.0);
    record.min_us = r.value("min_us", 0.0);
    record.repeats = r.contains("repeats") && r["repeats"].is_number_integer() ? r["repeats"].get<int>() : 0;
    record.source = spec.value("source", "farm");
    record.record_json = result_json;
  }
  std::vector<predictors::KernelRecord> batch;
  if (kernel) batch.push_back(record);
  return store_->ReportTask(worker_id, task_id, ok, result_json, error, options_.max_attempts,
                            kernel ? &batch : nullptr);
}

StatusOr<std::string> Farm::ModelOfLeasedTask(const std::string& worker_id, int64_t token_id,
                                              const std::string& task_id) {
  ACS_RETURN_IF_ERROR(Caller(worker_id, token_id).status());
  ACS_ASSIGN_OR_RETURN(TaskRecord task, store_->GetTask(task_id));
  if (task.state != kTaskLeased || task.worker_id != worker_id) {
    return Status::FailedPrecondition("task " + task_id + " is not leased to worker " + worker_id);
  }
  const nlohmann::json spec = nlohmann::json::parse(task.spec_json, nullptr, false);
  const std::string sha = spec.is_object() && spec.contains("model_sha256") && spec["model_sha256"].is_string()
                              ? spec["model_sha256"].get<std::string>()
                              : "";
  if (task.kind != kTaskMeasureModel || sha.empty()) {
    return Status::InvalidArgument("task " + task_id + " has no model");
  }
  return sha;
}

StatusOr<std::vector<std::string>> Farm::EnqueueKernels(const std::string& machine_id,
                                                        const std::vector<KernelSpec>& specs,
                                                        const std::string& source, const std::string& job_id) {
  std::vector<std::string> ids;
  for (const KernelSpec& s : specs) {
    TaskRecord t;
    t.job_id = job_id;
    t.kind = kTaskMeasureKernel;
    t.machine_id = machine_id;
    t.spec_json = nlohmann::json{{"spec", s.ToJson()}, {"source", source}}.dump();
    ACS_ASSIGN_OR_RETURN(TaskRecord stored, store_->EnqueueTask(t));
    ids.push_back(stored.id);
  }
  return ids;
}

StatusOr<int> Farm::Sweep() { return store_->RequeueExpired(Now(), options_.max_attempts); }

StatusOr<std::vector<DeviceView>> Farm::Devices() {
  ACS_ASSIGN_OR_RETURN(std::vector<WorkerRecord> workers, store_->ListWorkers());
  std::vector<DeviceView> out;
  for (const WorkerRecord& w : workers) {
    DeviceView v;
    v.worker = w;
    v.online = Now() - w.last_seen_ms <= options_.offline_after_ms;
    out.push_back(v);
  }
  return out;
}

}  // namespace acs::server
