// The server's own records (DESIGN §6), beside the measurement store in the same SQLite
// file: bearer tokens (only their sha256 is kept), jobs with their event log, episode log
// and agent checkpoint, workers, and measurement tasks leased to workers with an expiry.
// No gRPC here: the service adapters translate. Thread-safe (one connection behind a
// mutex); the server and its job runner children each open their own on the same file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/sqlite_db.h"
#include "core/status.h"
#include "predictors/store.h"
#include "server/campaign_records.h"

namespace acs::server {

enum class Role { kAdmin, kUser, kWorker };
const char* RoleName(Role role);  // "admin", "user", "worker"
StatusOr<Role> ParseRole(const std::string& name);

struct Principal {
  int64_t token_id = 0;
  std::string name;  // who the token was issued to
  Role role = Role::kUser;
};

struct TokenRecord {
  int64_t id = 0;
  std::string name;
  Role role = Role::kUser;
  std::string created;
  std::string expires;  // UTC ISO 8601; empty: never
  bool revoked = false;
  bool live = false;    // neither revoked nor expired
};

// Job states as stored; the API maps them to its enum.
inline constexpr const char* kJobQueued = "queued";
inline constexpr const char* kJobPreparing = "preparing";
inline constexpr const char* kJobSearching = "searching";
inline constexpr const char* kJobVerifying = "verifying";
inline constexpr const char* kJobSucceeded = "succeeded";
inline constexpr const char* kJobBudgetNotMet = "budget_not_met";  // ended; measured over its latency budget
inline constexpr const char* kJobFailed = "failed";
inline constexpr const char* kJobCancelled = "cancelled";
bool IsTerminalJobState(const std::string& state);

struct JobRecord {
  std::string id;            // set by CreateJob
  std::string owner;         // Principal::name of the submitter
  std::string state = kJobQueued;
  std::string request_json;  // the submitted request
  std::string progress_json = "{}";  // episodes done, best so far, ETA, ...
  std::string checkpoint;    // to resume after a restart: a snapshot of the search's agent
                             // covering the first N rows of its episode log (JobEpisodes),
                             // or a format-1 blob of agent state and log (older databases)
  std::string error;
  std::string created, updated;  // UTC ISO 8601, set by the store
};

struct JobEventRecord {
  int64_t seq = 0;           // increasing per job, set by the store
  std::string job_id;
  std::string kind;          // "state", "episode", "verified"
  std::string json;
  int64_t time_ms = 0;  // unix ms when stored, set by the store (to the second for events
                        // of older servers; 0 when unknown)
};

struct WorkerRecord {
  std::string id;
  std::string name;
  std::string machine_id;
  std::string device_json;
  std::string version;
  int64_t last_seen_ms = 0;  // unix milliseconds
  int64_t token_id = 0;      // the token that registered it; only that token speaks for it
};

inline constexpr const char* kTaskQueued = "queued";
inline constexpr const char* kTaskLeased = "leased";
inline constexpr const char* kTaskDone = "done";
inline constexpr const char* kTaskFailed = "failed";

struct TaskRecord {
  std::string id;
  std::string job_id;        // empty for a predictor campaign
  std::string kind;          // "measure-kernel", "measure-model"
  std::string machine_id;    // which workers may run it
  std::string spec_json;
  std::string state = kTaskQueued;
  std::string worker_id;     // when leased
  int64_t lease_expires_ms = 0;
  int attempts = 0;          // leases handed out so far
  std::string result_json;
  std::string error;
};

// Owner of the job records of predictor campaigns.
inline constexpr const char* kCampaignOwner = "farm";

struct JobFilter {
  std::string owner;         // empty: any
  std::string state;         // empty: any
  bool campaigns = false;    // also list predictor campaigns (owner kCampaignOwner)
  int page_size = 50;
  std::string page_token;    // the last id of the previous page
};

// The jobs' references to some blobs as read by ServerStore::ScanJobBlobs, outside the
// store's lock: ForgetUnreferencedBlobs then re-reads only the jobs changed since.
struct JobBlobScan {
  std::string since;  // UTC ISO second, one before the scan began: a job updated at or
                      // after it may have changed after it was read
  struct Job {
    std::string updated;               // the job's `updated` when read
    std::vector<std::string> digests;  // of the scan's candidates, those it names
  };
  std::map<int64_t, Job> jobs;  // by rowid
};

class ServerStore;

// A submit's hold on a blob (ServerStore::HoldBlob), released when destroyed. Move-only;
// must not outlive its store.
class BlobHold {
 public:
  BlobHold() = default;
  BlobHold(BlobHold&& other) noexcept;
  BlobHold& operator=(BlobHold&& other) noexcept;
  BlobHold(const BlobHold&) = delete;
  BlobHold& operator=(const BlobHold&) = delete;
  ~BlobHold();

 private:
  friend class ServerStore;
  void Release();
  ServerStore* store_ = nullptr;
  std::string sha256_;
};

class ServerStore {
 public:
  // Opens (creating) the SQLite file and applies the "server" migrations.
  static StatusOr<std::unique_ptr<ServerStore>> Open(const std::string& path);

  // Tokens. CreateToken returns the token text, shown once; only its sha256 is stored.
  // expires_days > 0: it stops working that many days from now. AlreadyExists when a
  // token of that name is live (neither revoked nor expired).
  StatusOr<std::string> CreateToken(const std::string& name, Role role, int64_t expires_days = 0);
  // Every token ever made, oldest first (never the secret).
  StatusOr<std::vector<TokenRecord>> ListTokens();
  // NotFound when no live token has the name.
  Status RevokeTokenNamed(const std::string& name);
  // Unauthenticated for an unknown, revoked or expired token.
  StatusOr<Principal> Authenticate(const std::string& token);
  Status RevokeToken(int64_t token_id);
  StatusOr<int64_t> CountTokens();

  // Jobs. CreateJob assigns the id ("job-" + 12 hex digits) and timestamps.
  StatusOr<JobRecord> CreateJob(JobRecord job);
  // NotFound for an unknown id.
  StatusOr<JobRecord> GetJob(const std::string& id);
  // Updates state, progress, checkpoint and error (not owner or request).
  Status UpdateJob(const JobRecord& job);
  // Updates the progress only (the checkpoint may be large and is saved less often).
  Status UpdateJobProgress(const std::string& id, const std::string& progress_json);
  // Ordered by creation (oldest first); next_page_token empty at the end. The records' checkpoint
  // is left empty (it may be megabytes): never UpdateJob a listed record.
  StatusOr<std::vector<JobRecord>> ListJobs(const JobFilter& filter, std::string* next_page_token);
  // The page token that makes ListJobs start `offset` jobs into the filter's list (its
  // page_token ignored): "" for 0; NotFound when the list has no more than `offset` jobs.
  StatusOr<std::string> JobPageTokenAt(const JobFilter& filter, int64_t offset);
  StatusOr<std::vector<JobRecord>> JobsInStates(const std::vector<std::string>& states);
  // Jobs of clients (not predictor campaigns) per stored state; states without jobs absent.
  StatusOr<std::map<std::string, int64_t>> CountJobsByState();
  // The latest predictor campaign of a machine (a job of kCampaignOwner whose request is
  // {"campaign": machine_id, ...}); nullopt when it has none.
  StatusOr<std::optional<JobRecord>> LatestCampaign(const std::string& machine_id);
  StatusOr<int64_t> AddEvent(const std::string& job_id, const std::string& kind, const std::string& json);
  // The bytes of the blobs stored for `owner` (the per-user quota): the sum of what
  // RecordStoredBlob recorded for them, each blob once however often stored. Their uploads
  // and every blob their jobs stored (RecordJobBlob), also those a job's progress no longer
  // lists (an earlier round's export, a report rewritten).
  StatusOr<int64_t> StoredBytes(const std::string& owner);
  // Idempotent per (owner, sha256): a repeat of the same blob changes only when it was last
  // stored (what blob collection goes by: ForgetUnreferencedBlobs).
  Status RecordStoredBlob(const std::string& owner, const std::string& sha256, int64_t bytes);
  // Whether RecordStoredBlob recorded `sha256` for `owner`: a blob they uploaded or one of
  // their jobs stored.
  StatusOr<bool> StoresBlob(const std::string& owner, const std::string& sha256);
  // RecordStoredBlob for the job's owner; NotFound for an unknown job.
  Status RecordJobBlob(const std::string& job_id, const std::string& sha256, int64_t bytes);
  // Blob collection (server/server_store_blobs.cc, server/blob_gc.h). ReferencedBlobs: every
  // sha256 digest, as a JSON string anywhere, in a job's request (model, dataset, test set) or
  // progress (artifacts, also a kept result's), any job's whatever its state; a campaign run's
  // spec (models given by digest); a queued or leased task's spec (the model a worker fetches).
  StatusOr<std::set<std::string>> ReferencedBlobs();
  // The digests RecordStoredBlob recorded, for anyone.
  StatusOr<std::vector<std::string>> RecordedBlobs();
  // Of `candidates`, those ReferencedBlobs leaves out and nobody stored (RecordStoredBlob) at
  // or after `stored_before` (unix seconds): deletes their `uploads` rows and returns them.
  // One transaction, which also reads the references: a record stored before it commits
  // keeps its blobs; once it has, StoresBlob is false for the blobs returned. With `scan`
  // (ScanJobBlobs of the same candidates, any time before) the transaction parses only the
  // jobs the scan did not read or that were updated since (by `updated`, to the second);
  // without, every job: the same blobs go either way, the store's lock is held shorter.
  StatusOr<std::vector<std::string>> ForgetUnreferencedBlobs(const std::vector<std::string>& candidates,
                                                             int64_t stored_before, const JobBlobScan* scan = nullptr);
  // Which of `candidates` each job names, read in batches of `batch_jobs` with the lock held
  // per batch only and parsed without it.
  StatusOr<JobBlobScan> ScanJobBlobs(const std::vector<std::string>& candidates, int batch_jobs = 256);
  // Submit's reference on a blob its job will name, from its check until the job is stored
  // (which names it from then on): while held, ForgetUnreferencedBlobs of this store leaves
  // it alone whatever its age. The blob's rows count as stored now, as RecordStoredBlob's
  // repeat: of `owner`, who must have one (else NotFound and nothing held); of every owner
  // when `owner` is empty (an admin's submit, which may name any blob; none needed).
  StatusOr<BlobHold> HoldBlob(const std::string& owner, const std::string& sha256);
  // The job's events of seq > `seq`, in order.
  StatusOr<std::vector<JobEventRecord>> EventsAfter(const std::string& job_id, int64_t seq);
  // The job's event of the largest seq; nullopt when it has none.
  StatusOr<std::optional<JobEventRecord>> LastEvent(const std::string& job_id);
  // A job's episode log: one JSON text per episode, seq its index from 0. PutJobEpisodes
  // writes seqs first_seq, first_seq + 1, ... in one transaction, replacing rows it meets
  // (a resumed search re-runs the episodes its snapshot did not cover).
  Status PutJobEpisodes(const std::string& job_id, int64_t first_seq, const std::vector<std::string>& episodes_json);
  // The rows of seq < limit, in order (fewer when the log is shorter).
  StatusOr<std::vector<std::string>> JobEpisodes(const std::string& job_id, int64_t limit);
  // Deletes the rows of seq >= first_seq; returns how many.
  StatusOr<int64_t> TruncateJobEpisodes(const std::string& job_id, int64_t first_seq);

  // Workers.
  StatusOr<WorkerRecord> RegisterWorker(WorkerRecord worker, int64_t now_ms);
  Status TouchWorker(const std::string& worker_id, int64_t now_ms);
  StatusOr<std::vector<WorkerRecord>> ListWorkers();

  // Tasks. EnqueueTask assigns the id.
  StatusOr<TaskRecord> EnqueueTask(TaskRecord task);
  // Hands out up to `max` queued tasks of the machine id, oldest first, leased to the
  // worker until now + lease_ms; their attempts count up.
  StatusOr<std::vector<TaskRecord>> LeaseTasks(const std::string& worker_id, const std::string& machine_id, int max,
                                               int64_t now_ms, int64_t lease_ms);
  // Extends the leases this worker still holds; returns the ids it no longer holds.
  StatusOr<std::vector<std::string>> ExtendLeases(const std::string& worker_id, const std::vector<std::string>& ids,
                                                  int64_t now_ms, int64_t lease_ms);
  // Records a result: done when ok; a failure goes back to the queue, or fails the task
  // ("failed after N attempts: <error>") once it had max_attempts leases. Idempotent:
  // false (and nothing changes) when the task is not leased to this worker any more
  // (reported already, expired, re-leased). `kernels` (may be null) are the result's
  // measurements, appended to the file's measurement store (predictors::InsertKernels) in
  // the same transaction, only when the task is done: a task is never done without them.
  StatusOr<bool> ReportTask(const std::string& worker_id, const std::string& task_id, bool ok,
                            const std::string& result_json, const std::string& error, int max_attempts,
                            std::vector<predictors::KernelRecord>* kernels = nullptr);
  // Expired leases go back to the queue, or fail once they had max_attempts leases, the
  // error naming the worker that held the last one. Returns how many tasks changed.
  StatusOr<int> RequeueExpired(int64_t now_ms, int max_attempts);
  StatusOr<TaskRecord> GetTask(const std::string& id);
  StatusOr<std::vector<TaskRecord>> TasksOfJob(const std::string& job_id);
  // Fails the job's queued and leased tasks with `error` (workers holding a lease learn it
  // at their next heartbeat); returns how many.
  StatusOr<int> FailOpenTasksOfJob(const std::string& job_id, const std::string& error);
  // Fails those of `task_ids` that are queued or leased tasks of the job, with `error`, in
  // one transaction; ids of other jobs, unknown or ended ones are left alone. Returns how many.
  StatusOr<int> FailOpenTasks(const std::string& job_id, const std::vector<std::string>& task_ids,
                              const std::string& error);

  // Nightly campaign runs (server/server_store_campaigns.cc). StartCampaignRun creates the
  // run of (owner, campaign, date) with its cells, or returns the one stored (*created
  // false; FailedPrecondition when it ran another spec hash).
  StatusOr<CampaignRunRecord> StartCampaignRun(CampaignRunRecord run, bool* created);
  // NotFound for an unknown id.
  StatusOr<CampaignRunRecord> GetCampaignRun(const std::string& id);
  StatusOr<std::optional<CampaignRunRecord>> FindCampaignRun(const std::string& owner, const std::string& campaign,
                                                             const std::string& date);
  // Without spec_json; with cells.
  StatusOr<std::vector<CampaignRunRecord>> ListCampaignRuns(const CampaignRunFilter& filter);
  // Sets the cell's job (unless job_id is empty), note and re-measurement (unless
  // remeasure_json is empty). NotFound for an unknown cell, FailedPrecondition when the
  // cell has another job already.
  Status SetCampaignCell(const std::string& run_id, const std::string& key, const std::string& job_id,
                         const std::string& note, const std::string& remeasure_json = "");

 private:
  friend class BlobHold;
  explicit ServerStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}
  std::unique_ptr<Db> db_;
  std::mutex mu_;
  std::multiset<std::string> held_blobs_;  // guarded by mu_ (HoldBlob)
};

// n random bytes as hex, from the system's cryptographic source.
StatusOr<std::string> RandomHex(int bytes);

}  // namespace acs::server
