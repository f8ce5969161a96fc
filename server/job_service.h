// The client API without a transport (DESIGN §2, §9): who may see and change which job,
// uploads within their limits, submit / get / list / cancel, a job's events as a cursor,
// artifact streaming, devices and predictors. The gRPC adapter (server/acs_service.h) and
// any other one only authenticate the caller and translate; the rules live here.
// Users see and change their own jobs, admins all. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "predictors/predictor.h"
#include "server/blob_store.h"
#include "server/farm.h"
#include "server/jobs.h"
#include "server/measurement_campaign.h"
#include "server/server_parts.h"
#include "server/server_store.h"

namespace acs::server {

// Everything the service works on; all must outlive it.
struct JobServiceParts {
  ServerStore* store = nullptr;
  BlobStore* blobs = nullptr;
  JobScheduler* jobs = nullptr;
  Farm* farm = nullptr;
  MeasurementCampaigns* measurement_campaigns = nullptr;
  predictors::MeasurementStore* measurements = nullptr;

  // The parts a server opened.
  static JobServiceParts Of(const ServerParts& p) {
    return {p.store.get(), p.blobs.get(), p.jobs.get(), p.farm.get(), p.measurement_campaigns.get(),
            p.measurements.get()};
  }
};

struct JobServiceOptions {
  int64_t max_upload_bytes = int64_t{1} << 30;        // larger uploads: ResourceExhausted
  int64_t max_user_stored_bytes = int64_t{20} << 30;  // what a user stores (ServerStore::
                                                      // StoredBytes): an upload past it, or a
                                                      // Submit once over it, ResourceExhausted;
                                                      // a running job's artifacts never fail
                                                      // it (0: no quota)
  int max_watchers_per_user = 16;                     // concurrent watches; more: ResourceExhausted
  int max_open_remeasure_runs = 30;                   // a job's queued or running re-measurements;
                                                      // a request past it: ResourceExhausted
};

// One piece of an upload as the transport received it.
struct UploadPiece {
  int64_t total_bytes = 0;  // announced size, read from the first piece only (0: not announced)
  std::string data;
};
// Fills the next piece of an upload; false at the end of the stream.
using NextUploadPiece = std::function<bool(UploadPiece*)>;
// True once the caller has gone away (a cancelled call or a closed connection).
using CallerGone = std::function<bool()>;

// Which jobs a listing asks for; the service restricts a user to their own.
struct JobListQuery {
  std::string state;       // a stored job state (kJobQueued, ...); empty: any
  int page_size = 0;       // 0: the store's default
  std::string page_token;  // from the previous page's next_page_token
  int64_t offset = 0;      // > 0: the page starts this many jobs into the list (no page_token)
};

struct JobPage {
  std::vector<JobRecord> jobs;  // oldest first
  std::string next_page_token;  // empty at the end
};

// A verification task's result as a VERIFIED event carries it (0: unknown).
struct VerificationView {
  int rank = 0, run = 0;
  std::string policy_hash;
  double accuracy = 0;
  double predicted_us = 0, dense_predicted_us = 0;
  double measured_us = 0, dense_measured_us = 0, stock_us = 0, acs_file_us = 0;
  double measured_speedup = 0;   // dense_measured_us / measured_us
  double predicted_speedup = 0;  // dense_predicted_us / predicted_us
  double prediction_error = 0;   // predicted_us / measured_us - 1
  std::string error;
};

// What a submitted request may name, as Submit checks it.
struct SubmitChoices {
  std::vector<std::string> agents, budget_kinds, patterns, precisions;
  std::string default_agent;
  SearchSpace defaults;  // what a request's empty space fields mean
};

// A job event as a watcher sees it.
struct JobEventView {
  int64_t seq = 0;      // from 1, increasing per job: the cursor to resume after
  int64_t time_ms = 0;  // unix ms when stored (to the second for older events); 0: unknown
  std::string kind;     // kEventState, kEventEpisode, kEventVerified
  std::string state;    // kEventState: the stored state entered; otherwise empty
  int episode = 0;
  double reward = 0;
  double accuracy = 0;
  double cost_ratio = 0;
  std::string message;  // readable; for kEventVerified the policy's measured latencies
  std::optional<VerificationView> verification;  // kEventVerified: the same, structured
  JobRecord job;        // the job as read after the event (it may have moved on)
};
// Receives one event; false when the watcher went away (the watch then ends, OK).
using SendJobEvent = std::function<bool(const JobEventView&)>;

// A piece of an artifact being downloaded.
struct ArtifactPiece {
  bool first = false;       // the first piece carries total_bytes and sha256
  int64_t total_bytes = 0;  // first piece only
  std::string sha256;       // first piece only
  std::string data;         // at most kArtifactPieceBytes
};
inline constexpr size_t kArtifactPieceBytes = size_t{1} << 20;
// Receives one piece; false when the receiver went away (the download then ends, OK).
using SendArtifactPiece = std::function<bool(const ArtifactPiece&)>;

// Aggregate counts for monitoring (no job ids or names).
struct ServiceCounts {
  std::map<std::string, int64_t> jobs_by_state;  // stored state -> jobs of clients in it
  int64_t workers = 0;                           // registered workers
  int64_t workers_online = 0;                    // of them, heard from recently
};

// The view of a stored event (its JSON read, the verification message formatted); `job`
// left empty.
JobEventView EventView(const JobEventRecord& event);
// A predictor's state as shown to people: "collecting 3/40", "failed: <error>", "ready".
std::string PredictorStateText(const PredictorState& state);

class JobService {
 public:
  JobService(JobServiceParts parts, JobServiceOptions options) : p_(parts), options_(options) {}

  // Every call names the errors of its rules; each also returns PermissionDenied when the
  // principal's role may not make it (admins and users may, except where noted), and the
  // store's errors.

  // Receives an upload of `who` (what: "model" or "dataset", in messages) into the blob
  // store and records it against the owner's quota. Nothing is stored unless every
  // announced byte arrived and the stream ended without the caller going away.
  // ResourceExhausted past max_upload_bytes or the quota, InvalidArgument for an empty
  // stream or a size unlike the announced one, Cancelled when `gone` after the last piece.
  StatusOr<BlobWriter::Committed> Upload(const Principal& who, const std::string& what, const NextUploadPiece& next,
                                         const CallerGone& gone);
  // JobScheduler::Submit's errors; ResourceExhausted while the owner stores more than the
  // quota (max_user_stored_bytes).
  StatusOr<JobRecord> Submit(const Principal& who, const JobRequest& request);
  // InvalidArgument for an empty id; NotFound for an unknown id and another user's job.
  StatusOr<JobRecord> Get(const Principal& who, const std::string& id);
  StatusOr<JobPage> List(const Principal& who, const JobListQuery& query);
  // Get's errors, then JobScheduler::Cancel's.
  StatusOr<JobRecord> Cancel(const Principal& who, const std::string& id);
  // Sends the job's events of seq > after_seq in order (0: from the first) as they are
  // stored, until the event that ended the job was sent or lies at or before the cursor,
  // `send` returns false, or the caller is `gone`. ResourceExhausted when `who` has
  // max_watchers_per_user watches open already; then Get's errors; InvalidArgument for a
  // negative after_seq.
  Status Watch(const Principal& who, const std::string& id, int64_t after_seq, const SendJobEvent& send,
               const CallerGone& gone);
  // Watch in two steps, for transports that must answer before the events flow: OpenWatch
  // takes the place in the watcher cap and checks everything Watch checks (its errors);
  // the returned watch's Run sends as Watch does. The watch holds its place until
  // destroyed; it must not outlive the service.
  class OpenedWatch;
  StatusOr<std::unique_ptr<OpenedWatch>> OpenWatch(const Principal& who, const std::string& id, int64_t after_seq);
  // Sends the job's artifact `name` in pieces of at most kArtifactPieceBytes (one empty
  // first piece for an empty artifact). Get's errors; NotFound naming the artifacts the
  // job has; DataLoss when the blob is damaged or cannot be opened or read (never a
  // short artifact).
  Status DownloadArtifact(const Principal& who, const std::string& job_id, const std::string& name,
                          const SendArtifactPiece& send);
  StatusOr<std::vector<DeviceView>> Devices(const Principal& who);
  // Admins only. Starts a measurement campaign of the device class; samples > 0 sets the
  // campaign's samples, a sixth of them (at least 1) held out.
  StatusOr<PredictorState> TrainPredictor(const Principal& who, const std::string& device_class, int samples);
  // InvalidArgument for an empty device class.
  StatusOr<PredictorState> PredictorStatus(const Principal& who, const std::string& device_class);
  // The predictors scored on the device class's measurements; FailedPrecondition when it
  // has no kernel measurements.
  StatusOr<predictors::EvalReport> EvaluatePredictor(const Principal& who, const std::string& device_class);
  // The names Submit accepts and its defaults (agents/agent_names.h, BudgetKinds, the
  // policy's pattern and precision names, the search's default space).
  StatusOr<SubmitChoices> Choices(const Principal& who);
  // A measurement of an ended job again (RemeasureJob in proto/acs.proto): Get's errors;
  // FailedPrecondition for a job that has not ended with a result or has no verified
  // exported policy; InvalidArgument for runs outside 0-10 or a task of another job;
  // ResourceExhausted when the new runs would pass max_open_remeasure_runs of the job.
  struct RemeasureRun {
    std::string task_id, state, worker_id, error;
    double measured_us = 0, dense_measured_us = 0;
  };
  struct RemeasureResult {
    std::string device_class;
    std::vector<RemeasureRun> runs;
    bool done = false;
  };
  StatusOr<RemeasureResult> Remeasure(const Principal& who, const std::string& id, int runs,
                                      const std::vector<std::string>& task_ids, bool cancel);
  // What the server runs on now, as JSON: {"acs_version", "runtime", "predictors": {CLASS:
  // version}, "workers": [{id, name, device_class, version, cpu_model, isa, runtime,
  // online}]} (stored with a campaign run when it is created).
  nlohmann::json Environment();
  // Any principal (the counts name no one); the store's errors.
  StatusOr<ServiceCounts> Counts();
  // The store the service reads (for the campaign runs' rules, server/campaign_runs.h).
  ServerStore* store() const { return p_.store; }

 private:
  // Counts a watch of a user while it lasts.
  class WatchSlot;
  StatusOr<JobRecord> VisibleJob(const Principal& who, const std::string& id);
  // Watch's loop from the cursor `seq` on.
  Status SendEvents(const std::string& id, int64_t seq, const SendJobEvent& send, const CallerGone& gone);

  JobServiceParts p_;
  JobServiceOptions options_;
  std::mutex remeasure_mu_;  // held while a re-measurement request counts and enqueues
  std::mutex watch_mu_;
  std::map<std::string, int> watchers_;  // open watches per user; guarded by watch_mu_
};

class JobService::OpenedWatch {
 public:
  ~OpenedWatch();
  OpenedWatch(const OpenedWatch&) = delete;
  OpenedWatch& operator=(const OpenedWatch&) = delete;
  // Sends the events as Watch does; call once.
  Status Run(const SendJobEvent& send, const CallerGone& gone);

 private:
  friend class JobService;
  OpenedWatch(JobService* service, std::unique_ptr<WatchSlot> slot, std::string id, int64_t after_seq);
  JobService* service_;
  std::unique_ptr<WatchSlot> slot_;
  std::string id_;
  int64_t after_seq_;
};

}  // namespace acs::server
