// Where measurements and trained latency models are kept (issue 4; the server reuses it):
// a small interface and its SQLite implementation. Device classes are keyed by their
// machine id (DeviceClass::Id() without the thread suffix): threads are a feature.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/kernel_spec.h"
#include "core/status.h"
#include "predictors/model_latency.h"

namespace acs {
class Db;
}  // namespace acs

namespace acs::predictors {

struct KernelRecord {
  int64_t id = 0;             // set by the store
  std::string device_class;
  KernelSpec spec;
  double median_us = 0;
  double iqr_us = 0;
  double min_us = 0;          // the fastest sample; 0: not known (older records)
  int repeats = 0;
  std::string source;         // how it was chosen: "initial", "adaptive-1", "heldout", ...
  std::string record_json;    // the whole measurement as the harness wrote it
};

struct ModelRecord {
  int64_t id = 0;
  std::string device_class;
  std::string model;          // a name (file stem), the unit of hold-out
  std::string policy_hash;
  std::string policy_json;
  ModelShape shape;           // layers as run, other ops, threads
  double median_us = 0;       // the runtime's whole-model latency
  double iqr_us = 0;
  double min_us = 0;          // its fastest sample; 0: not known (older records)
  std::string record_json;
};

struct PredictorRecord {
  int64_t version = 0;        // set by the store: 1, 2, ... per (device class, name)
  std::string device_class;
  std::string name;           // "xgboost"
  std::string blob;
  std::string metrics_json;   // held-out accuracy figures kept beside the model
  int64_t measurements = 0;   // kernel measurements it was trained on
  std::string created;        // UTC, ISO 8601, set by the store
};

class MeasurementStore {
 public:
  virtual ~MeasurementStore() = default;
  // Appends in one transaction (all or nothing) and sets the ids.
  virtual Status AddKernels(std::vector<KernelRecord>& records) = 0;
  virtual StatusOr<std::vector<KernelRecord>> Kernels(const std::string& device_class) = 0;
  virtual Status AddModel(ModelRecord& record) = 0;
  virtual StatusOr<std::vector<ModelRecord>> Models(const std::string& device_class) = 0;
  // The record of device_class whose record_json names `task_id` as its job.task (the
  // measurement that task produced; the first stored if several), nullopt when none; found
  // through an index, not a scan.
  virtual StatusOr<std::optional<ModelRecord>> ModelOfTask(const std::string& device_class,
                                                           const std::string& task_id) = 0;
  // The records of device_class whose record_json names `model_sha256` as its
  // job.model_sha256 (every measurement of that model), in the order stored; none for "".
  // Found through an index, not a scan of the class.
  virtual StatusOr<std::vector<ModelRecord>> ModelsOfModel(const std::string& device_class,
                                                           const std::string& model_sha256) = 0;
  // Returns the version given.
  virtual StatusOr<int64_t> AddPredictor(const PredictorRecord& record) = 0;
  virtual StatusOr<std::optional<PredictorRecord>> LatestPredictor(const std::string& device_class,
                                                                   const std::string& name) = 0;
  // Device description JSON (device class fields, roofline points), replaced on Put.
  virtual Status PutDevice(const std::string& device_class, const std::string& json) = 0;
  virtual StatusOr<std::optional<std::string>> Device(const std::string& device_class) = 0;
  virtual StatusOr<std::vector<std::string>> DeviceClasses() = 0;
};

// Opens or creates an SQLite store (WAL, migrations applied). Errors: Unavailable for a
// path that cannot be opened, FailedPrecondition for a newer schema.
StatusOr<std::unique_ptr<MeasurementStore>> OpenSqliteStore(const std::string& path);

// The SQLite store's schema on another connection to its file, for a store that records a
// measurement in the same transaction as its own rows (a task completed with its result):
// MigrateMeasurements applies the migrations as OpenSqliteStore does; InsertKernels
// appends inside the caller's transaction and sets the ids.
Status MigrateMeasurements(Db& db);
Status InsertKernels(Db& db, std::vector<KernelRecord>& records);

}  // namespace acs::predictors
