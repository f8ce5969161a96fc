// A small SQLite wrapper shared by the stores: one connection in WAL mode, prepared
// statements only, transactions, and numbered migrations per component (a table
// schema_migrations(component, version) records what ran). Errors as Status values
// naming the statement and SQLite's message. Not thread-safe: one Db per thread, or a
// caller-held mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace acs {

class Statement {
 public:
  ~Statement();
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) = delete;
  // Bind by 1-based index; return *this for chaining. Errors surface at Step.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, const std::string& value);
  Statement& BindBlob(int index, const std::string& bytes);
  Statement& BindNull(int index);
  // true: a row is ready; false: done. Errors: Internal (or Aborted when busy / locked).
  StatusOr<bool> Step();
  // Runs to completion (for statements without rows).
  Status Run();
  Status Reset();  // ready to bind and run again
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;  // also blobs
  bool IsNull(int column) const;

 private:
  friend class Db;
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql) : db_(db), stmt_(stmt), sql_(std::move(sql)) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
  int bind_error_ = 0;
};

class Db {
 public:
  // Opens or creates the file (parent directory must exist), WAL journal, foreign keys on,
  // busy timeout 5 s. Errors: Unavailable naming the path and SQLite's message.
  static StatusOr<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  // Errors: Internal naming the statement.
  StatusOr<Statement> Prepare(const std::string& sql);
  // For statements without parameters (DDL, pragmas).
  Status Exec(const std::string& sql);
  Status Begin();
  Status Commit();
  void Rollback();
  int64_t LastInsertId() const;
  int Changes() const;  // rows changed by the last INSERT, UPDATE or DELETE
  // Applies migrations[i] (1-based version i + 1) for every version above the one recorded
  // for `component`, each in its own transaction. A database that has a newer version
  // than the build knows is an error (FailedPrecondition), so an old build never writes
  // into a newer schema.
  Status Migrate(const std::string& component, const std::vector<std::string>& migrations);
  const std::string& path() const { return path_; }

 private:
  Db() = default;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace acs
