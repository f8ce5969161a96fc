// What server_store.cc and server_store_farm.cc share. Internal to those two files.
#pragma once

#include <string>
#include <vector>

#include "core/sqlite_db.h"
#include "core/status.h"

namespace acs::server::store_internal {

// Every row of q, each read by read(q).
template <typename T, typename Read>
StatusOr<std::vector<T>> ReadAll(Statement& q, Read read) {
  std::vector<T> out;
  while (true) {
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    out.push_back(read(q));
  }
}

// Runs body inside BEGIN IMMEDIATE .. COMMIT, rolling back on error.
template <typename Body>
auto InTransaction(Db& db, Body body) -> decltype(body()) {
  ACS_RETURN_IF_ERROR(db.Begin());
  auto result = body();
  if (!result.ok()) {
    db.Rollback();
    return result;
  }
  ACS_RETURN_IF_ERROR(db.Commit());
  return result;
}

// The seq after the largest in table (1 for an empty one).
inline StatusOr<int64_t> NextSeq(Db& db, const std::string& table) {
  ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare("SELECT COALESCE(MAX(seq), 0) + 1 FROM " + table));
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 1;
}

// The "campaigns" component's migrations (server/server_store_campaigns.cc).
const std::vector<std::string>& CampaignRunMigrations();

}  // namespace acs::server::store_internal
