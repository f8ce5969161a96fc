#include <mutex>

#include <nlohmann/json.hpp>

#include "core/sqlite_db.h"
#include "predictors/store.h"

namespace acs::predictors {
namespace {

// Numbered migrations of the "measurements" component; append only.
const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> m = {
      R"sql(
CREATE TABLE devices (
  device_class TEXT PRIMARY KEY,
  json TEXT NOT NULL,
  updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
CREATE TABLE kernel_measurements (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_class TEXT NOT NULL,
  kernel_key TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  threads INTEGER NOT NULL,
  median_us REAL NOT NULL,
  iqr_us REAL NOT NULL,
  repeats INTEGER NOT NULL,
  source TEXT NOT NULL,
  record_json TEXT NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
CREATE INDEX kernel_measurements_by_class ON kernel_measurements (device_class);
CREATE TABLE model_measurements (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_class TEXT NOT NULL,
  model TEXT NOT NULL,
  policy_hash TEXT NOT NULL,
  policy_json TEXT NOT NULL,
  threads INTEGER NOT NULL,
  median_us REAL NOT NULL,
  iqr_us REAL NOT NULL,
  layers_json TEXT NOT NULL,
  other_ops REAL NOT NULL,
  other_bytes REAL NOT NULL,
  record_json TEXT NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
CREATE INDEX model_measurements_by_class ON model_measurements (device_class);
CREATE TABLE predictors (
  device_class TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  blob BLOB NOT NULL,
  metrics_json TEXT NOT NULL,
  measurements INTEGER NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (device_class, name, version));
)sql",
      // The fastest sample of each measurement, the label the predictors learn.
      R"sql(
ALTER TABLE kernel_measurements ADD COLUMN min_us REAL NOT NULL DEFAULT 0;
ALTER TABLE model_measurements ADD COLUMN min_us REAL NOT NULL DEFAULT 0;
UPDATE kernel_measurements SET min_us = CASE WHEN json_valid(record_json)
  THEN COALESCE(json_extract(record_json, '$.min_us'), 0) ELSE 0 END;
UPDATE model_measurements SET min_us = CASE WHEN json_valid(record_json)
  THEN COALESCE(json_extract(record_json, '$.runtime.min_us'), 0) ELSE 0 END;
)sql",
      // The task a model measurement was taken by (record_json's job.task), indexed: a
      // task's measurement is looked up, not searched for.
      R"sql(
ALTER TABLE model_measurements ADD COLUMN task TEXT;
UPDATE model_measurements SET task = CASE WHEN json_valid(record_json) THEN
  (CASE WHEN json_type(record_json, '$.job.task') = 'text' THEN json_extract(record_json, '$.job.task') END) END;
CREATE INDEX model_measurements_by_task ON model_measurements (task);
)sql",
      // The model a model measurement is of (record_json's job.model_sha256), indexed with
      // its device class: a model's measurements are looked up, not searched for. An empty
      // task the migration before wrote is NULL, as an insert writes it.
      R"sql(
ALTER TABLE model_measurements ADD COLUMN model_sha256 TEXT;
UPDATE model_measurements SET model_sha256 = CASE WHEN json_valid(record_json) THEN
  (CASE WHEN json_type(record_json, '$.job.model_sha256') = 'text'
   THEN NULLIF(json_extract(record_json, '$.job.model_sha256'), '') END) END;
CREATE INDEX model_measurements_by_model ON model_measurements (device_class, model_sha256);
UPDATE model_measurements SET task = NULL WHERE task = '';
)sql",
  };
  return m;
}

StatusOr<KernelSpec> SpecFromText(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::DataLoss("stored kernel spec is not JSON");
  return ParseKernelSpec(j);
}

// A text field of a model record's job (record_json's job.<key>: "task", "model_sha256"),
// "" when it has none.
std::string JobField(const std::string& record_json, const char* key) {
  const nlohmann::json j = nlohmann::json::parse(record_json, nullptr, false);
  if (!j.is_object() || !j.contains("job") || !j["job"].is_object()) return "";
  const auto field = j["job"].find(key);
  return field != j["job"].end() && field->is_string() ? field->get<std::string>() : "";
}

// Binds `text` to parameter i of q, NULL for "" (a column no lookup matches).
void BindTextOrNull(Statement& q, int i, const std::string& text) {
  if (text.empty()) {
    q.BindNull(i);
  } else {
    q.Bind(i, text);
  }
}

constexpr const char* kModelColumns =
    "id, model, policy_hash, policy_json, threads, median_us, iqr_us, layers_json, other_ops, other_bytes, "
    "record_json, min_us";

// The model record of q's row (kModelColumns).
StatusOr<ModelRecord> ReadModel(const Statement& q, const std::string& device_class) {
  ModelRecord r;
  r.id = q.Int(0);
  r.device_class = device_class;
  r.model = q.Text(1);
  r.policy_hash = q.Text(2);
  r.policy_json = q.Text(3);
  r.shape.threads = static_cast<int>(q.Int(4));
  r.median_us = q.Double(5);
  r.iqr_us = q.Double(6);
  const nlohmann::json layers = nlohmann::json::parse(q.Text(7), nullptr, false);
  if (!layers.is_array()) {
    return Status::DataLoss("stored model measurement " + std::to_string(r.id) + " has no layers");
  }
  for (const auto& l : layers) {
    ACS_ASSIGN_OR_RETURN(KernelSpec s, ParseKernelSpec(l));
    r.shape.layers.push_back(std::move(s));
  }
  r.shape.other_ops = q.Double(8);
  r.shape.other_bytes = q.Double(9);
  r.record_json = q.Text(10);
  r.min_us = q.Double(11);
  return r;
}

// Every model record of q's rows (kModelColumns), in order.
StatusOr<std::vector<ModelRecord>> ReadModels(Statement& q, const std::string& device_class) {
  std::vector<ModelRecord> out;
  while (true) {
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ACS_ASSIGN_OR_RETURN(ModelRecord r, ReadModel(q, device_class));
    out.push_back(std::move(r));
  }
  return out;
}

class SqliteStore final : public MeasurementStore {
 public:
  explicit SqliteStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status AddKernels(std::vector<KernelRecord>& records) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_RETURN_IF_ERROR(db_->Begin());
    if (Status s = InsertKernels(*db_, records); !s.ok()) {
      db_->Rollback();
      return s;
    }
    return db_->Commit();
  }

  StatusOr<std::vector<KernelRecord>> Kernels(const std::string& device_class) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT id, spec_json, median_us, iqr_us, repeats, source, "
                                                   "record_json, min_us FROM kernel_measurements WHERE device_class = ? "
                                                   "ORDER BY id"));
    q.Bind(1, device_class);
    std::vector<KernelRecord> out;
    while (true) {
      ACS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      KernelRecord r;
      r.id = q.Int(0);
      r.device_class = device_class;
      ACS_ASSIGN_OR_RETURN(r.spec, SpecFromText(q.Text(1)));
      r.median_us = q.Double(2);
      r.iqr_us = q.Double(3);
      r.repeats = static_cast<int>(q.Int(4));
      r.source = q.Text(5);
      r.record_json = q.Text(6);
      r.min_us = q.Double(7);
      out.push_back(std::move(r));
    }
    return out;
  }

  Status AddModel(ModelRecord& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    nlohmann::json layers = nlohmann::json::array();
    for (const KernelSpec& s : r.shape.layers) layers.push_back(s.ToJson());
    ACS_ASSIGN_OR_RETURN(Statement insert,
                         db_->Prepare("INSERT INTO model_measurements (device_class, model, policy_hash, policy_json, "
                                      "threads, median_us, iqr_us, layers_json, other_ops, other_bytes, record_json, "
                                      "min_us, task, model_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    insert.Bind(1, r.device_class)
        .Bind(2, r.model)
        .Bind(3, r.policy_hash)
        .Bind(4, r.policy_json)
        .Bind(5, static_cast<int64_t>(r.shape.threads))
        .Bind(6, r.median_us)
        .Bind(7, r.iqr_us)
        .Bind(8, layers.dump())
        .Bind(9, r.shape.other_ops)
        .Bind(10, r.shape.other_bytes)
        .Bind(11, r.record_json)
        .Bind(12, r.min_us);
    BindTextOrNull(insert, 13, JobField(r.record_json, "task"));
    BindTextOrNull(insert, 14, JobField(r.record_json, "model_sha256"));
    ACS_RETURN_IF_ERROR(insert.Run());
    r.id = db_->LastInsertId();
    return Status::Ok();
  }

  StatusOr<std::vector<ModelRecord>> Models(const std::string& device_class) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kModelColumns +
                                                   " FROM model_measurements WHERE device_class = ? ORDER BY id"));
    q.Bind(1, device_class);
    return ReadModels(q, device_class);
  }

  StatusOr<std::vector<ModelRecord>> ModelsOfModel(const std::string& device_class,
                                                   const std::string& model_sha256) override {
    if (model_sha256.empty()) return std::vector<ModelRecord>();
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kModelColumns +
                                                   " FROM model_measurements WHERE device_class = ? AND "
                                                   "model_sha256 = ? ORDER BY id"));
    q.Bind(1, device_class).Bind(2, model_sha256);
    return ReadModels(q, device_class);
  }

  StatusOr<std::optional<ModelRecord>> ModelOfTask(const std::string& device_class,
                                                   const std::string& task_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kModelColumns +
                                                   " FROM model_measurements WHERE task = ? AND device_class = ? "
                                                   "ORDER BY id LIMIT 1"));
    q.Bind(1, task_id).Bind(2, device_class);
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::optional<ModelRecord>();
    ACS_ASSIGN_OR_RETURN(ModelRecord r, ReadModel(q, device_class));
    return std::optional<ModelRecord>(std::move(r));
  }

  StatusOr<int64_t> AddPredictor(const PredictorRecord& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_RETURN_IF_ERROR(db_->Begin());
    auto add = [&]() -> StatusOr<int64_t> {
      ACS_ASSIGN_OR_RETURN(Statement next, db_->Prepare("SELECT COALESCE(MAX(version), 0) + 1 FROM predictors "
                                                        "WHERE device_class = ? AND name = ?"));
      next.Bind(1, r.device_class).Bind(2, r.name);
      ACS_ASSIGN_OR_RETURN(bool row, next.Step());
      const int64_t version = row ? next.Int(0) : 1;
      ACS_ASSIGN_OR_RETURN(Statement insert,
                           db_->Prepare("INSERT INTO predictors (device_class, name, version, blob, metrics_json, "
                                        "measurements) VALUES (?,?,?,?,?,?)"));
      insert.Bind(1, r.device_class)
          .Bind(2, r.name)
          .Bind(3, version)
          .BindBlob(4, r.blob)
          .Bind(5, r.metrics_json)
          .Bind(6, r.measurements);
      ACS_RETURN_IF_ERROR(insert.Run());
      return version;
    };
    StatusOr<int64_t> v = add();
    if (!v.ok()) {
      db_->Rollback();
      return v.status();
    }
    ACS_RETURN_IF_ERROR(db_->Commit());
    return v;
  }

  StatusOr<std::optional<PredictorRecord>> LatestPredictor(const std::string& device_class,
                                                           const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT version, blob, metrics_json, measurements, created FROM "
                                                   "predictors WHERE device_class = ? AND name = ? "
                                                   "ORDER BY version DESC LIMIT 1"));
    q.Bind(1, device_class).Bind(2, name);
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::optional<PredictorRecord>();
    PredictorRecord r;
    r.version = q.Int(0);
    r.device_class = device_class;
    r.name = name;
    r.blob = q.Text(1);
    r.metrics_json = q.Text(2);
    r.measurements = q.Int(3);
    r.created = q.Text(4);
    return std::optional<PredictorRecord>(std::move(r));
  }

  Status PutDevice(const std::string& device_class, const std::string& json) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT INTO devices (device_class, json) VALUES (?, ?) "
                                                   "ON CONFLICT(device_class) DO UPDATE SET json = excluded.json, "
                                                   "updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"));
    q.Bind(1, device_class).Bind(2, json);
    return q.Run();
  }

  StatusOr<std::optional<std::string>> Device(const std::string& device_class) override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT json FROM devices WHERE device_class = ?"));
    q.Bind(1, device_class);
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(q.Text(0));
  }

  StatusOr<std::vector<std::string>> DeviceClasses() override {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT device_class FROM devices UNION SELECT DISTINCT "
                                                   "device_class FROM kernel_measurements ORDER BY 1"));
    std::vector<std::string> out;
    while (true) {
      ACS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back(q.Text(0));
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::unique_ptr<Db> db_;
};

}  // namespace

Status MigrateMeasurements(Db& db) { return db.Migrate("measurements", Migrations()); }

Status InsertKernels(Db& db, std::vector<KernelRecord>& records) {
  ACS_ASSIGN_OR_RETURN(Statement insert,
                       db.Prepare("INSERT INTO kernel_measurements (device_class, kernel_key, spec_json, threads, "
                                  "median_us, iqr_us, repeats, source, record_json, min_us) "
                                  "VALUES (?,?,?,?,?,?,?,?,?,?)"));
  for (KernelRecord& r : records) {
    insert.Bind(1, r.device_class)
        .Bind(2, r.spec.Key())
        .Bind(3, r.spec.ToJson().dump())
        .Bind(4, static_cast<int64_t>(r.spec.threads))
        .Bind(5, r.median_us)
        .Bind(6, r.iqr_us)
        .Bind(7, static_cast<int64_t>(r.repeats))
        .Bind(8, r.source)
        .Bind(9, r.record_json)
        .Bind(10, r.min_us);
    ACS_RETURN_IF_ERROR(insert.Run());
    r.id = db.LastInsertId();
    ACS_RETURN_IF_ERROR(insert.Reset());
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<MeasurementStore>> OpenSqliteStore(const std::string& path) {
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(path));
  ACS_RETURN_IF_ERROR(MigrateMeasurements(*db));
  return std::unique_ptr<MeasurementStore>(std::make_unique<SqliteStore>(std::move(db)));
}

}  // namespace acs::predictors
