#include "server/farm.h"

#include <chrono>

#include <nlohmann/json.hpp>

namespace acs::server {

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

StatusOr<std::vector<TaskRecord>> Farm::Lease(const std::string& worker_id, int max) {
  ACS_RETURN_IF_ERROR(store_->TouchWorker(worker_id, Now()));
  ACS_RETURN_IF_ERROR(Sweep().status());
  ACS_ASSIGN_OR_RETURN(std::vector<WorkerRecord> workers, store_->ListWorkers());
  std::string machine;
  for (const WorkerRecord& w : workers) {
    if (w.id == worker_id) machine = w.machine_id;
  }
  const int n = std::max(0, std::min(max, options_.max_lease_batch));
  return store_->LeaseTasks(worker_id, machine, n, Now(), options_.lease_ms);
}

StatusOr<std::vector<std::string>> Farm::Heartbeat(const std::string& worker_id,
                                                   const std::vector<std::string>& task_ids) {
  ACS_RETURN_IF_ERROR(store_->TouchWorker(worker_id, Now()));
  return store_->ExtendLeases(worker_id, task_ids, Now(), options_.lease_ms);
}

StatusOr<bool> Farm::Report(const std::string& worker_id, const std::string& task_id, bool ok,
                            const std::string& result_json, const std::string& error) {
  ACS_RETURN_IF_ERROR(store_->TouchWorker(worker_id, Now()));
  ACS_ASSIGN_OR_RETURN(TaskRecord task, store_->GetTask(task_id));
  predictors::KernelRecord record;
  const bool kernel = ok && task.kind == kTaskMeasureKernel;
  if (kernel) {
    // Validate before accepting, so that a malformed result leaves the task leased.
    const nlohmann::json r = nlohmann::json::parse(result_json, nullptr, false);
    const nlohmann::json spec = nlohmann::json::parse(task.spec_json, nullptr, false);
    if (!r.is_object() || !r.contains("median_us") || !r["median_us"].is_number() || !spec.is_object()) {
      return Status::InvalidArgument("result of task " + task_id + " is not a kernel measurement record");
    }
    ACS_ASSIGN_OR_RETURN(record.spec, ParseKernelSpec(spec.value("spec", nlohmann::json())));
    record.device_class = task.machine_id;
    record.median_us = r["median_us"].get<double>();
    record.iqr_us = r.value("iqr_us", 0.0);
    record.min_us = r.value("min_us", 0.0);
    record.repeats = r.value("repeats", 0);
    record.source = spec.value("source", "farm");
    record.record_json = result_json;
  }
  ACS_ASSIGN_OR_RETURN(bool accepted,
                       store_->ReportTask(worker_id, task_id, ok, result_json, error, options_.max_attempts));
  if (accepted && kernel && measurements_) {
    std::vector<predictors::KernelRecord> batch = {record};
    ACS_RETURN_IF_ERROR(measurements_->AddKernels(batch));
  }
  return accepted;
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
