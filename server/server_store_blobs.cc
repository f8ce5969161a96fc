// The server store's side of blob collection (server/blob_gc.h): which blobs its records
// name, and forgetting the `uploads` rows of those nothing names.
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "server/blob_store.h"
#include "server/server_store.h"
#include "server/server_store_internal.h"

namespace acs::server {
namespace {

using store_internal::InTransaction;
using store_internal::ReadAll;

// Adds every sha256 digest `value` holds as a string, also inside strings that are JSON
// texts themselves (a progress's kept_result), to at most 4 such levels.
void AddDigests(const nlohmann::json& value, std::set<std::string>* out, int depth = 0) {
  if (value.is_structured()) {
    for (const nlohmann::json& v : value) AddDigests(v, out, depth);
    return;
  }
  if (!value.is_string()) return;
  const std::string& text = value.get_ref<const std::string&>();
  if (IsSha256(text)) {
    out->insert(text);
  } else if (depth < 4 && !text.empty() && (text[0] == '{' || text[0] == '[')) {
    AddDigests(nlohmann::json::parse(text, nullptr, false), out, depth + 1);
  }
}

// Every digest in the records that name blobs (see ReferencedBlobs).
Status AddReferences(Db& db, std::set<std::string>* out) {
  for (const std::string& sql :
       {std::string("SELECT request_json, progress_json FROM jobs"),
        std::string("SELECT spec_json, '' FROM campaign_runs"),
        std::string("SELECT spec_json, '' FROM tasks WHERE state IN ('") + kTaskQueued + "', '" + kTaskLeased + "')"}) {
    ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare(sql));
    while (true) {
      ACS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      for (int c = 0; c < 2; ++c) AddDigests(nlohmann::json::parse(q.Text(c), nullptr, false), out);
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::set<std::string>> ServerStore::ReferencedBlobs() {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> out;
  ACS_RETURN_IF_ERROR(AddReferences(*db_, &out));
  return out;
}

StatusOr<std::vector<std::string>> ServerStore::RecordedBlobs() {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT DISTINCT sha256 FROM uploads ORDER BY sha256"));
  return ReadAll<std::string>(q, [](const Statement& r) { return r.Text(0); });
}

StatusOr<std::vector<std::string>> ServerStore::ForgetUnreferencedBlobs(const std::vector<std::string>& candidates,
                                                                        int64_t stored_before) {
  if (candidates.empty()) return std::vector<std::string>();
  std::lock_guard<std::mutex> lock(mu_);
  // The references are read in the transaction that deletes: a job or run stored by any
  // process before it commits is seen, and one stored after it finds the rows gone.
  return InTransaction(*db_, [&]() -> StatusOr<std::vector<std::string>> {
    std::set<std::string> referenced;
    ACS_RETURN_IF_ERROR(AddReferences(*db_, &referenced));
    ACS_ASSIGN_OR_RETURN(Statement recent, db_->Prepare("SELECT 1 FROM uploads WHERE sha256 = ? AND created >= "
                                                        "strftime('%Y-%m-%dT%H:%M:%SZ', ?, 'unixepoch') LIMIT 1"));
    ACS_ASSIGN_OR_RETURN(Statement forget, db_->Prepare("DELETE FROM uploads WHERE sha256 = ?"));
    std::vector<std::string> forgotten;
    for (const std::string& sha : candidates) {
      if (referenced.count(sha) > 0) continue;
      recent.Bind(1, sha).Bind(2, stored_before);
      ACS_ASSIGN_OR_RETURN(bool stored_recently, recent.Step());
      ACS_RETURN_IF_ERROR(recent.Reset());
      if (stored_recently) continue;
      forget.Bind(1, sha);
      ACS_RETURN_IF_ERROR(forget.Run());
      ACS_RETURN_IF_ERROR(forget.Reset());
      forgotten.push_back(sha);
    }
    return forgotten;
  });
}

}  // namespace acs::server
