#include "server/server_store.h"

#include <openssl/rand.h>

#include <algorithm>

#include "core/sha256.h"
#include "server/server_store_internal.h"

namespace acs::server {
namespace {

using store_internal::InTransaction;
using store_internal::NextSeq;
using store_internal::ReadAll;
using store_internal::CampaignRunMigrations;

// Numbered migrations of the "server" component; append only.
const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> m = {
      R"sql(
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  revoked INTEGER NOT NULL DEFAULT 0,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  state TEXT NOT NULL,
  request_json TEXT NOT NULL,
  progress_json TEXT NOT NULL,
  checkpoint BLOB NOT NULL,
  error TEXT NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
CREATE INDEX jobs_by_state ON jobs (state);
CREATE TABLE job_events (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  json TEXT NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (job_id, seq));
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  device_json TEXT NOT NULL,
  version TEXT NOT NULL,
  last_seen_ms INTEGER NOT NULL);
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  job_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  state TEXT NOT NULL,
  worker_id TEXT NOT NULL DEFAULT '',
  lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  result_json TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '');
CREATE INDEX tasks_by_state ON tasks (state, machine_id, seq);
CREATE INDEX tasks_by_job ON tasks (job_id);
)sql",
      "ALTER TABLE workers ADD COLUMN token_id INTEGER NOT NULL DEFAULT 0;",
      "ALTER TABLE tokens ADD COLUMN expires TEXT NOT NULL DEFAULT '';",
      R"sql(
CREATE TABLE uploads (
  owner TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (owner, sha256));
)sql",
      // A search's episode log, one row per episode (seq = its index from 0) appended as
      // episodes finish; jobs.checkpoint then holds a snapshot of the agent that covers
      // the first N rows (SearchSession::Snapshot), or a format-1 blob from before.
      R"sql(
CREATE TABLE job_episodes (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  seq INTEGER NOT NULL,
  episode_json TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
)sql",
      // `uploads` holds, despite its name, every blob stored for an owner (their uploads and
      // their jobs' puts), what the quota sums; the artifacts existing jobs list join once
      // (before, StoredBytes read them from the progress). Its key (owner, sha256) is also
      // the index of the per-owner sum.
      R"sql(
INSERT OR IGNORE INTO uploads (owner, sha256, bytes)
SELECT jobs.owner, json_extract(a.value, '$.sha256'), MAX(json_extract(a.value, '$.bytes'))
FROM jobs, json_each(CASE WHEN json_valid(jobs.progress_json) THEN jobs.progress_json ELSE '{}' END,
                     '$.artifacts') AS a
WHERE a.type = 'object' AND json_type(a.value, '$.sha256') = 'text' AND json_type(a.value, '$.bytes') = 'integer'
GROUP BY jobs.owner, json_extract(a.value, '$.sha256');
)sql",
      // Blob collection forgets a blob's rows of every owner at once; `created` is when the
      // owner last stored it (RecordStoredBlob).
      "CREATE INDEX IF NOT EXISTS uploads_by_sha256 ON uploads (sha256);",
  };
  return m;
}

// SQL: an event's time in unix ms, from its `created` text (UTC, to the second in rows of
// older servers, to the millisecond since); 0 when it does not parse.
constexpr const char* kEventTimeMs = "COALESCE(CAST(ROUND((julianday(created) - 2440587.5) * 86400000) AS INTEGER), 0)";

// SQL: a token row that still authenticates.
constexpr const char* kLiveToken =
    "(revoked = 0 AND (expires = '' OR expires > strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))";

constexpr const char* kJobColumns = "id, owner, state, request_json, progress_json, checkpoint, error, created, updated";
// The same without the checkpoint (a learned agent's snapshot is megabytes), for listings.
constexpr const char* kListedJobColumns = "id, owner, state, request_json, progress_json, '', error, created, updated";

JobRecord ReadJob(const Statement& q) {
  JobRecord j;
  j.id = q.Text(0);
  j.owner = q.Text(1);
  j.state = q.Text(2);
  j.request_json = q.Text(3);
  j.progress_json = q.Text(4);
  j.checkpoint = q.Text(5);
  j.error = q.Text(6);
  j.created = q.Text(7);
  j.updated = q.Text(8);
  return j;
}

StatusOr<JobRecord> GetJobLocked(Db& db, const std::string& id) {
  ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?"));
  q.Bind(1, id);
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("no job '" + id + "'");
  return ReadJob(q);
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAdmin: return "admin";
    case Role::kUser: return "user";
    case Role::kWorker: return "worker";
  }
  return "?";
}

StatusOr<Role> ParseRole(const std::string& name) {
  for (Role r : {Role::kAdmin, Role::kUser, Role::kWorker}) {
    if (name == RoleName(r)) return r;
  }
  return Status::InvalidArgument("unknown role '" + name + "' (expected admin, user or worker)");
}

bool IsTerminalJobState(const std::string& s) {
  return s == kJobSucceeded || s == kJobBudgetNotMet || s == kJobFailed || s == kJobCancelled;
}

StatusOr<std::string> RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    return Status::Internal("no random bytes from the system");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

StatusOr<std::unique_ptr<ServerStore>> ServerStore::Open(const std::string& path) {
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(path));
  ACS_RETURN_IF_ERROR(db->Migrate("server", Migrations()));
  ACS_RETURN_IF_ERROR(db->Migrate("campaigns", CampaignRunMigrations()));
  ACS_RETURN_IF_ERROR(predictors::MigrateMeasurements(*db));
  return std::unique_ptr<ServerStore>(new ServerStore(std::move(db)));
}

StatusOr<std::string> ServerStore::CreateToken(const std::string& name, Role role, int64_t expires_days) {
  if (name.empty()) return Status::InvalidArgument("a token needs a name");
  if (expires_days < 0) return Status::InvalidArgument("a token's expiry must be a positive number of days");
  ACS_ASSIGN_OR_RETURN(std::string secret, RandomHex(24));
  const std::string token = std::string("acs_") + RoleName(role)[0] + "_" + secret;
  std::lock_guard<std::mutex> lock(mu_);
  ACS_RETURN_IF_ERROR(InTransaction(*db_, [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(Statement live, db_->Prepare(std::string("SELECT COUNT(*) FROM tokens WHERE name = ? AND ") +
                                                      kLiveToken));
    live.Bind(1, name);
    ACS_ASSIGN_OR_RETURN(bool row, live.Step());
    if (row && live.Int(0) > 0) {
      return Status::AlreadyExists("a live token is named '" + name + "'; revoke it first or choose another name");
    }
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(
                                          "INSERT INTO tokens (name, role, sha256, expires) VALUES (?, ?, ?, CASE "
                                          "WHEN ? > 0 THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+' || ? || ' days') "
                                          "ELSE '' END)"));
    q.Bind(1, name).Bind(2, std::string(RoleName(role))).Bind(3, Sha256Hex(token)).Bind(4, expires_days);
    q.Bind(5, expires_days);
    return q.Run();
  }));
  return token;
}

StatusOr<std::vector<TokenRecord>> ServerStore::ListTokens() {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT id, name, role, created, expires, revoked, ") +
                                                 kLiveToken + " FROM tokens ORDER BY id"));
  std::vector<TokenRecord> out;
  while (true) {
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    TokenRecord t;
    t.id = q.Int(0);
    t.name = q.Text(1);
    ACS_ASSIGN_OR_RETURN(t.role, ParseRole(q.Text(2)));
    t.created = q.Text(3);
    t.expires = q.Text(4);
    t.revoked = q.Int(5) != 0;
    t.live = q.Int(6) != 0;
    out.push_back(t);
  }
  return out;
}

Status ServerStore::RevokeTokenNamed(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q,
                       db_->Prepare(std::string("UPDATE tokens SET revoked = 1 WHERE name = ? AND ") + kLiveToken));
  q.Bind(1, name);
  ACS_RETURN_IF_ERROR(q.Run());
  if (db_->Changes() == 0) return Status::NotFound("no live token is named '" + name + "'");
  return Status::Ok();
}

StatusOr<Principal> ServerStore::Authenticate(const std::string& token) {
  if (token.empty()) return Status::Unauthenticated("no bearer token given");
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT id, name, role FROM tokens WHERE sha256 = ? AND ") +
                                                 kLiveToken));
  q.Bind(1, Sha256Hex(token));
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::Unauthenticated("unknown, revoked or expired token");
  Principal p;
  p.token_id = q.Int(0);
  p.name = q.Text(1);
  ACS_ASSIGN_OR_RETURN(p.role, ParseRole(q.Text(2)));
  return p;
}

Status ServerStore::RevokeToken(int64_t token_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("UPDATE tokens SET revoked = 1 WHERE id = ?"));
  q.Bind(1, token_id);
  return q.Run();
}

StatusOr<int64_t> ServerStore::CountTokens() {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT COUNT(*) FROM tokens WHERE ") + kLiveToken));
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

StatusOr<std::map<std::string, int64_t>> ServerStore::CountJobsByState() {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT state, COUNT(*) FROM jobs WHERE owner != ? GROUP BY state"));
  q.Bind(1, std::string(kCampaignOwner));
  std::map<std::string, int64_t> counts;
  while (true) {
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    counts[q.Text(0)] = q.Int(1);
  }
  return counts;
}

StatusOr<JobRecord> ServerStore::CreateJob(JobRecord job) {
  ACS_ASSIGN_OR_RETURN(std::string suffix, RandomHex(6));
  job.id = "job-" + suffix;
  std::lock_guard<std::mutex> lock(mu_);
  ACS_RETURN_IF_ERROR(InTransaction(*db_, [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(int64_t seq, NextSeq(*db_, "jobs"));
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT INTO jobs (id, seq, owner, state, request_json, "
                                                   "progress_json, checkpoint, error) VALUES (?,?,?,?,?,?,?,?)"));
    q.Bind(1, job.id).Bind(2, seq).Bind(3, job.owner).Bind(4, job.state).Bind(5, job.request_json);
    q.Bind(6, job.progress_json).BindBlob(7, job.checkpoint).Bind(8, job.error);
    return q.Run();
  }));
  return GetJobLocked(*db_, job.id);
}

StatusOr<JobRecord> ServerStore::GetJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetJobLocked(*db_, id);
}

Status ServerStore::UpdateJob(const JobRecord& job) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("UPDATE jobs SET state = ?, progress_json = ?, checkpoint = ?, "
                                                 "error = ?, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                                                 "WHERE id = ?"));
  q.Bind(1, job.state).Bind(2, job.progress_json).BindBlob(3, job.checkpoint).Bind(4, job.error).Bind(5, job.id);
  ACS_RETURN_IF_ERROR(q.Run());
  if (db_->Changes() == 0) return Status::NotFound("no job '" + job.id + "'");
  return Status::Ok();
}

Status ServerStore::UpdateJobProgress(const std::string& id, const std::string& progress_json) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("UPDATE jobs SET progress_json = ?, "
                                                 "updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?"));
  q.Bind(1, progress_json).Bind(2, id);
  ACS_RETURN_IF_ERROR(q.Run());
  if (db_->Changes() == 0) return Status::NotFound("no job '" + id + "'");
  return Status::Ok();
}

StatusOr<std::vector<JobRecord>> ServerStore::ListJobs(const JobFilter& filter, std::string* next_page_token) {
  const int page = std::clamp(filter.page_size <= 0 ? 50 : filter.page_size, 1, 1000);
  std::lock_guard<std::mutex> lock(mu_);
  int64_t after = 0;
  if (!filter.page_token.empty()) {
    ACS_ASSIGN_OR_RETURN(Statement t, db_->Prepare("SELECT seq FROM jobs WHERE id = ?"));
    t.Bind(1, filter.page_token);
    ACS_ASSIGN_OR_RETURN(bool row, t.Step());
    if (!row) return Status::InvalidArgument("page token '" + filter.page_token + "' is not a job of this server");
    after = t.Int(0);
  }
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kListedJobColumns +
                                                 " FROM jobs WHERE seq > ? AND (? = '' OR owner = ?) AND "
                                                 "(? = '' OR state = ?) AND (? OR owner != ?) ORDER BY seq LIMIT ?"));
  q.Bind(1, after).Bind(2, filter.owner).Bind(3, filter.owner).Bind(4, filter.state).Bind(5, filter.state);
  q.Bind(6, static_cast<int64_t>(filter.campaigns)).Bind(7, std::string(kCampaignOwner));
  q.Bind(8, static_cast<int64_t>(page + 1));
  ACS_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, ReadAll<JobRecord>(q, ReadJob));
  if (next_page_token) next_page_token->clear();
  if (static_cast<int>(jobs.size()) > page) {
    jobs.resize(page);
    if (next_page_token) *next_page_token = jobs.back().id;
  }
  return jobs;
}

StatusOr<std::vector<JobRecord>> ServerStore::JobsInStates(const std::vector<std::string>& states) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobRecord> out;
  for (const std::string& state : states) {
    ACS_ASSIGN_OR_RETURN(Statement q,
                         db_->Prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE state = ? ORDER BY seq"));
    q.Bind(1, state);
    ACS_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, ReadAll<JobRecord>(q, ReadJob));
    out.insert(out.end(), jobs.begin(), jobs.end());
  }
  return out;
}

StatusOr<std::optional<JobRecord>> ServerStore::LatestCampaign(const std::string& machine_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kJobColumns +
                                                 " FROM jobs WHERE owner = ? AND json_valid(request_json) AND "
                                                 "json_extract(request_json, '$.campaign') = ? ORDER BY seq DESC LIMIT 1"));
  q.Bind(1, std::string(kCampaignOwner)).Bind(2, machine_id);
  ACS_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, ReadAll<JobRecord>(q, ReadJob));
  if (jobs.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(jobs.front());
}

StatusOr<int64_t> ServerStore::StoredBytes(const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT COALESCE(SUM(bytes), 0) FROM uploads WHERE owner = ?"));
  q.Bind(1, owner);
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

Status ServerStore::RecordStoredBlob(const std::string& owner, const std::string& sha256, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q,
                       db_->Prepare("INSERT INTO uploads (owner, sha256, bytes) VALUES (?, ?, ?) ON CONFLICT "
                                    "(owner, sha256) DO UPDATE SET created = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"));
  q.Bind(1, owner).Bind(2, sha256).Bind(3, bytes);
  return q.Run();
}

StatusOr<bool> ServerStore::StoresBlob(const std::string& owner, const std::string& sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT 1 FROM uploads WHERE owner = ? AND sha256 = ?"));
  q.Bind(1, owner).Bind(2, sha256);
  return q.Step();
}

Status ServerStore::RecordJobBlob(const std::string& job_id, const std::string& sha256, int64_t bytes) {
  std::string owner;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT owner FROM jobs WHERE id = ?"));
    q.Bind(1, job_id);
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Status::NotFound("no job '" + job_id + "'");
    owner = q.Text(0);
  }
  return RecordStoredBlob(owner, sha256, bytes);  // a job's owner never changes
}

StatusOr<int64_t> ServerStore::AddEvent(const std::string& job_id, const std::string& kind, const std::string& json) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> StatusOr<int64_t> {
    ACS_ASSIGN_OR_RETURN(Statement n, db_->Prepare("SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?"));
    n.Bind(1, job_id);
    ACS_ASSIGN_OR_RETURN(bool row, n.Step());
    const int64_t seq = row ? n.Int(0) : 1;
    // `created` to the millisecond (kEventTimeMs reads it back; older rows have seconds).
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT INTO job_events (job_id, seq, kind, json, created) "
                                                   "VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"));
    q.Bind(1, job_id).Bind(2, seq).Bind(3, kind).Bind(4, json);
    ACS_RETURN_IF_ERROR(q.Run());
    return seq;
  });
}

StatusOr<std::vector<JobEventRecord>> ServerStore::EventsAfter(const std::string& job_id, int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT seq, kind, json, ") + kEventTimeMs +
                                                 " FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq"));
  q.Bind(1, job_id).Bind(2, seq);
  return ReadAll<JobEventRecord>(q, [&](const Statement& r) {
    return JobEventRecord{r.Int(0), job_id, r.Text(1), r.Text(2), r.Int(3)};
  });
}

StatusOr<std::optional<JobEventRecord>> ServerStore::LastEvent(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT seq, kind, json, ") + kEventTimeMs +
                                                 " FROM job_events WHERE job_id = ? ORDER BY seq DESC LIMIT 1"));
  q.Bind(1, job_id);
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<JobEventRecord>();
  return std::optional<JobEventRecord>(JobEventRecord{q.Int(0), job_id, q.Text(1), q.Text(2), q.Int(3)});
}

Status ServerStore::PutJobEpisodes(const std::string& job_id, int64_t first_seq,
                                   const std::vector<std::string>& episodes_json) {
  if (first_seq < 0) return Status::InvalidArgument("episode seq " + std::to_string(first_seq));
  if (episodes_json.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT OR REPLACE INTO job_episodes (job_id, seq, episode_json) "
                                                   "VALUES (?, ?, ?)"));
    for (size_t i = 0; i < episodes_json.size(); ++i) {
      q.Bind(1, job_id).Bind(2, first_seq + static_cast<int64_t>(i)).Bind(3, episodes_json[i]);
      ACS_RETURN_IF_ERROR(q.Run());
      ACS_RETURN_IF_ERROR(q.Reset());
    }
    return Status::Ok();
  });
}

StatusOr<std::vector<std::string>> ServerStore::JobEpisodes(const std::string& job_id, int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT episode_json FROM job_episodes WHERE job_id = ? AND seq < ? "
                                                 "ORDER BY seq"));
  q.Bind(1, job_id).Bind(2, limit);
  return ReadAll<std::string>(q, [](const Statement& r) { return r.Text(0); });
}

StatusOr<int64_t> ServerStore::TruncateJobEpisodes(const std::string& job_id, int64_t first_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("DELETE FROM job_episodes WHERE job_id = ? AND seq >= ?"));
  q.Bind(1, job_id).Bind(2, first_seq);
  ACS_RETURN_IF_ERROR(q.Run());
  return static_cast<int64_t>(db_->Changes());
}

}  // namespace acs::server
