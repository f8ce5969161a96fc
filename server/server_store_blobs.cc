// The server store's side of blob collection (server/blob_gc.h): which blobs its records
// name, and forgetting the `uploads` rows of those nothing names.
#include <algorithm>
#include <limits>
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

// Every digest a job row's request and progress texts hold.
void AddJobDigests(const std::string& request_json, const std::string& progress_json, std::set<std::string>* out) {
  for (const std::string* text : {&request_json, &progress_json}) {
    AddDigests(nlohmann::json::parse(*text, nullptr, false), out);
  }
}

// Every digest in the records that name blobs (see ReferencedBlobs); the jobs' only when
// `jobs`.
Status AddReferences(Db& db, std::set<std::string>* out, bool jobs = true) {
  std::vector<std::string> queries = {
      std::string("SELECT spec_json, '' FROM campaign_runs"),
      std::string("SELECT spec_json, '' FROM tasks WHERE state IN ('") + kTaskQueued + "', '" + kTaskLeased + "')"};
  if (jobs) queries.push_back("SELECT request_json, progress_json FROM jobs");
  for (const std::string& sql : queries) {
    ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare(sql));
    while (true) {
      ACS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      AddJobDigests(q.Text(0), q.Text(1), out);
    }
  }
  return Status::Ok();
}

// The jobs' digests as ForgetUnreferencedBlobs needs them, from `scan` where a job is as it
// was read, parsed again where it was updated since (or is new).
Status AddScannedJobReferences(Db& db, const JobBlobScan& scan, std::set<std::string>* out) {
  ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare("SELECT rowid, updated FROM jobs"));
  std::vector<int64_t> changed;
  while (true) {
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const std::string updated = q.Text(1);
    const auto read = scan.jobs.find(q.Int(0));
    if (read == scan.jobs.end() || read->second.updated != updated || updated >= scan.since) {
      changed.push_back(q.Int(0));
    } else {
      out->insert(read->second.digests.begin(), read->second.digests.end());
    }
  }
  ACS_ASSIGN_OR_RETURN(Statement job, db.Prepare("SELECT request_json, progress_json FROM jobs WHERE rowid = ?"));
  for (int64_t rowid : changed) {
    job.Bind(1, rowid);
    ACS_ASSIGN_OR_RETURN(bool row, job.Step());
    if (row) AddJobDigests(job.Text(0), job.Text(1), out);
    ACS_RETURN_IF_ERROR(job.Reset());
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

StatusOr<JobBlobScan> ServerStore::ScanJobBlobs(const std::vector<std::string>& candidates, int batch_jobs) {
  const std::set<std::string> wanted(candidates.begin(), candidates.end());
  JobBlobScan scan;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 seconds')"));
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) scan.since = q.Text(0);
  }
  struct Read {
    int64_t rowid = 0;
    std::string updated, request_json, progress_json;
  };
  int64_t after = std::numeric_limits<int64_t>::min();
  while (true) {
    std::vector<Read> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT rowid, updated, request_json, progress_json FROM jobs "
                                                     "WHERE rowid > ? ORDER BY rowid LIMIT ?"));
      q.Bind(1, after).Bind(2, static_cast<int64_t>(std::max(batch_jobs, 1)));
      ACS_ASSIGN_OR_RETURN(batch, ReadAll<Read>(q, [](const Statement& r) {
                             return Read{r.Int(0), r.Text(1), r.Text(2), r.Text(3)};
                           }));
    }
    if (batch.empty()) return scan;
    for (const Read& r : batch) {
      std::set<std::string> named;
      AddJobDigests(r.request_json, r.progress_json, &named);
      JobBlobScan::Job& job = scan.jobs[r.rowid];
      job.updated = r.updated;
      for (const std::string& sha : named) {
        if (wanted.count(sha) > 0) job.digests.push_back(sha);
      }
    }
    after = batch.back().rowid;
  }
}

StatusOr<std::vector<std::string>> ServerStore::ForgetUnreferencedBlobs(const std::vector<std::string>& candidates,
                                                                        int64_t stored_before,
                                                                        const JobBlobScan* scan) {
  if (candidates.empty()) return std::vector<std::string>();
  std::lock_guard<std::mutex> lock(mu_);
  // The references are read in the transaction that deletes: a job or run stored by any
  // process before it commits is seen, and one stored after it finds the rows gone.
  return InTransaction(*db_, [&]() -> StatusOr<std::vector<std::string>> {
    std::set<std::string> referenced;
    ACS_RETURN_IF_ERROR(AddReferences(*db_, &referenced, /*jobs=*/scan == nullptr));
    if (scan != nullptr) {
      ACS_RETURN_IF_ERROR(AddScannedJobReferences(*db_, *scan, &referenced));
    }
    ACS_ASSIGN_OR_RETURN(Statement recent, db_->Prepare("SELECT 1 FROM uploads WHERE sha256 = ? AND created >= "
                                                        "strftime('%Y-%m-%dT%H:%M:%SZ', ?, 'unixepoch') LIMIT 1"));
    ACS_ASSIGN_OR_RETURN(Statement forget, db_->Prepare("DELETE FROM uploads WHERE sha256 = ?"));
    std::vector<std::string> forgotten;
    for (const std::string& sha : candidates) {
      if (referenced.count(sha) > 0 || held_blobs_.count(sha) > 0) continue;
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

StatusOr<BlobHold> ServerStore::HoldBlob(const std::string& owner, const std::string& sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("UPDATE uploads SET created = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                                                 "WHERE sha256 = ?1 AND (?2 = '' OR owner = ?2)"));
  q.Bind(1, sha256).Bind(2, owner);
  ACS_RETURN_IF_ERROR(q.Run());
  if (!owner.empty() && db_->Changes() == 0) return Status::NotFound(owner + " stores no blob " + sha256);
  held_blobs_.insert(sha256);
  BlobHold hold;
  hold.store_ = this;
  hold.sha256_ = sha256;
  return hold;
}

BlobHold::BlobHold(BlobHold&& other) noexcept : store_(other.store_), sha256_(std::move(other.sha256_)) {
  other.store_ = nullptr;
}

BlobHold& BlobHold::operator=(BlobHold&& other) noexcept {
  if (this != &other) {
    Release();
    store_ = other.store_;
    sha256_ = std::move(other.sha256_);
    other.store_ = nullptr;
  }
  return *this;
}

BlobHold::~BlobHold() { Release(); }

void BlobHold::Release() {
  if (store_ == nullptr) return;
  std::lock_guard<std::mutex> lock(store_->mu_);
  store_->held_blobs_.erase(store_->held_blobs_.find(sha256_));
  store_ = nullptr;
}

}  // namespace acs::server
