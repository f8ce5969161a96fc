#include "core/sqlite_db.h"

#include <sqlite3.h>

namespace acs {
namespace {

Status SqlError(sqlite3* db, const std::string& sql, int rc) {
  const std::string msg = std::string(sqlite3_errstr(rc)) + (db ? std::string(": ") + sqlite3_errmsg(db) : "");
  const std::string what = "SQLite '" + sql.substr(0, 80) + "': " + msg;
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Aborted(what);
  return Status::Internal(what);
}

}  // namespace

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& o) noexcept
    : db_(o.db_), stmt_(o.stmt_), sql_(std::move(o.sql_)), bind_error_(o.bind_error_) {
  o.stmt_ = nullptr;
}

Statement& Statement::Bind(int index, int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}
Statement& Statement::Bind(int index, const std::string& value) {
  if (int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    bind_error_ = rc;
  return *this;
}
Statement& Statement::BindBlob(int index, const std::string& bytes) {
  if (int rc = sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    bind_error_ = rc;
  return *this;
}
Statement& Statement::BindNull(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}

StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) return SqlError(db_, sql_, bind_error_);
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqlError(db_, sql_, rc);
}

Status Statement::Run() {
  while (true) {
    ACS_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

Status Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
  return Status::Ok();
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }
std::string Statement::Text(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  const int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
bool Statement::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  std::unique_ptr<Db> db(new Db());
  db->path_ = path;
  const int rc = sqlite3_open_v2(path.c_str(), &db->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    return Status::Unavailable("cannot open database '" + path + "': " +
                               (db->db_ ? sqlite3_errmsg(db->db_) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db->db_, 5000);
  ACS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  ACS_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=NORMAL"));
  ACS_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON"));
  return db;
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

StatusOr<Statement> Db::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqlError(db_, sql, rc);
  return Statement(db_, stmt, sql);
}

Status Db::Exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  return rc == SQLITE_OK ? Status::Ok() : SqlError(db_, sql, rc);
}

Status Db::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status Db::Commit() { return Exec("COMMIT"); }
void Db::Rollback() { (void)Exec("ROLLBACK"); }
int64_t Db::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
int Db::Changes() const { return sqlite3_changes(db_); }

Status Db::Migrate(const std::string& component, const std::vector<std::string>& migrations) {
  ACS_RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"));
  ACS_ASSIGN_OR_RETURN(Statement get, Prepare("SELECT version FROM schema_migrations WHERE component = ?"));
  get.Bind(1, component);
  ACS_ASSIGN_OR_RETURN(bool row, get.Step());
  const int64_t current = row ? get.Int(0) : 0;
  if (current > static_cast<int64_t>(migrations.size())) {
    return Status::FailedPrecondition("database '" + path_ + "' has " + component + " schema version " +
                                      std::to_string(current) + ", newer than this build's " +
                                      std::to_string(migrations.size()));
  }
  for (size_t v = static_cast<size_t>(current); v < migrations.size(); ++v) {
    ACS_RETURN_IF_ERROR(Begin());
    Status s = Exec(migrations[v]);
    if (s.ok()) {
      StatusOr<Statement> set =
          Prepare("INSERT INTO schema_migrations (component, version) VALUES (?, ?) "
                  "ON CONFLICT(component) DO UPDATE SET version = excluded.version");
      if (!set.ok()) {
        s = set.status();
      } else {
        set->Bind(1, component).Bind(2, static_cast<int64_t>(v + 1));
        s = set->Run();
      }
    }
    if (!s.ok()) {
      Rollback();
      return Status(s.code(), "migration " + std::to_string(v + 1) + " of " + component + ": " + s.message());
    }
    ACS_RETURN_IF_ERROR(Commit());
  }
  return Status::Ok();
}

}  // namespace acs
