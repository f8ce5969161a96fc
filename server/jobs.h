// Compression jobs (DESIGN §6) without gRPC: a submitted request is validated and queued;
// runner threads take queued jobs in order, make sure the device class has a latency
// predictor (a measurement campaign on its workers first when it has none), run the
// search with periodic checkpoints of the agent and the episode log, export the best
// policy's artifacts into the blob store, and send the top-k policies to workers of the
// device class for end-to-end measurement. Every step leaves an event; a restarted server
// resumes running jobs from their last checkpoint. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agents/env.h"
#include "core/child_process.h"
#include "core/data_split.h"
#include "predictors/predictor.h"
#include "predictors/store.h"
#include "server/blob_store.h"
#include "server/farm.h"
#include "server/job_records.h"
#include "server/measurement_campaign.h"
#include "server/job_channel.h"
#include "server/server_store.h"

namespace acs {
struct DatasetOptions;  // core/dataset.h
}  // namespace acs

namespace acs::server {

struct SchedulerOptions {
  int max_concurrent = 1;                            // jobs searching at once
  double checkpoint_seconds = 5;                     // at most this long between checkpoints
  std::string datasets_dir = "/usr/share/datasets";  // dataset_name resolves to DIR/NAME
  std::string work_dir;                              // exports before they enter the blob store (required)
  MeasurementCampaignOptions measurement_campaign;   // for a device class without predictor
  int64_t calibration_samples = 256;
  int64_t validation_samples = 500;
  double poll_seconds = 0.5;       // waiting for measurement campaigns and verification tasks
  double no_worker_seconds = 120;  // a job waiting on workers (preparing, verifying)
                                   // fails after this long without an online worker
                                   // of the device class (--no-worker-seconds)
  int max_episodes = 100000;
  int max_top_k = 20;                    // policies a job may have verified
  bool measure_model_layers = true;      // latency jobs: measure the model's own layers
                                         // and its dense latency before the search
  int budget_rounds = 3;                 // closed-loop rounds after a result that missed
                                         // its latency budget as measured
  double round_episodes = 0.5;           // episodes each such round adds, x the request's
  int verify_runs = 3;                   // tasks that measure the exported policy (its
                                         // budget is judged on their median ratio), and
                                         // every verified one before a refit
  int fine_tune_epochs = 3;              // for jobs that ask for fine-tuning
  int64_t fine_tune_samples = 5000;      // training samples after calibration and validation
  double fine_tune_distill = -1;         // distillation weight in [0, 1], < 0: the search's
                                         // default (SearchSessionOptions::fine_tune_distill)
  int64_t max_input_elements = 1 << 22;  // elements of a request's input shape, batch included
  int max_jobs_per_user = 20;            // queued or running at once
  // DatasetOptions::max_decoded_bytes of every dataset a job reads; 0: no limit.
  int64_t max_dataset_bytes = int64_t{4} << 30;

  // Isolation. With a runner program (the server's own binary) each job runs in a child
  // `PROGRAM run-job ID FLAGS...` and Submit's check of the model and dataset in a child
  // `PROGRAM check-job FLAGS...`, under these limits; without one, both run in this
  // process (the children themselves, unit tests).
  std::string runner_program;
  std::vector<std::string> runner_flags;
  // 8 GiB, no CPU or wall limit; a check 8 GiB and 120 s. The writes are set for each
  // child (ChildConfinement). job_limits.wall_seconds bounds a job's runners in all (its
  // resumes share it) and caps a request's time_limit_seconds (JobTimeLimit); jobs run
  // in this process have no time limit.
  ProcessLimits job_limits{int64_t{8} << 30, 0, 0, {}};
  ProcessLimits check_limits{int64_t{8} << 30, 0, 120, {}};
  int max_concurrent_checks = 4;   // Submit checks in children at once (each holds a
                                   // gRPC thread); past it: ResourceExhausted
  int max_runner_deaths = 2;       // a job whose runner died this often fails
  double stop_grace_seconds = 30;  // a runner asked to stop is killed after this
  bool confine_writes = true;      // children write only their own directory and read
                                   // only what their work needs (ChildConfinement;
                                   // Landlock, where the kernel has it); false:
                                   // acs-server --no-confine
  std::string db_path;             // the store's SQLite file (no child may open it)
};

// acs-server's flag that sets SchedulerOptions::max_dataset_bytes, named in its errors.
inline constexpr const char* kDatasetLimitFlag = "--max-dataset-gb";

// `s` of reading a dataset: a reader's refusal past the decoded-size limit (its reason
// StatusReason::kDecodedSizeLimit) gets the flag that sets it appended, and loses that
// reason (a second call leaves it as it is); any other status is returned as it is.
Status WithDatasetLimit(const Status& s);

// The events a job leaves (JobEventRecord::kind).
// Policies of the same model measured by earlier jobs that a job's predictions refit on, at
// most (EarlierMeasuredPolicies).
inline constexpr size_t kEarlierPoliciesMax = 16;

// The policies of the request's model (sha256, input shape, threads) whose verification
// earlier jobs recorded in `measurements` on `device_class`, each with the median over its
// runs of the runtime's latency over the dense baseline's: the most recent
// kEarlierPoliciesMax policies, oldest first, as (policy JSON, ratio).
StatusOr<std::vector<std::pair<std::string, double>>> EarlierMeasuredPolicies(
    predictors::MeasurementStore& measurements, const JobRequest& request, const std::string& device_class);

// "acs <project version> / libtorch <version>" of this server.
std::string ServerRuntimeVersion();
// The project version of this server, e.g. "0.1.0".
std::string ServerAcsVersion();

// A job's artifact of the acs runtime's file (RuntimeModel::Save; runs with libacs_ops).
inline constexpr const char* kRuntimeModelFile = "compressed.acs.pt";

inline constexpr const char* kEventState = "state";
inline constexpr const char* kEventEpisode = "episode";
inline constexpr const char* kEventVerified = "verified";

// The budget kinds a request may name (JobRequest::budget_kind), in the API's order.
inline const std::vector<std::string>& BudgetKinds() {
  static const std::vector<std::string> kinds = {"latency", "flops", "params", "bytes"};
  return kinds;
}

// The wall-clock seconds a job's runners may run it in all: the request's
// time_limit_seconds capped by the server's `server_seconds`, either alone when the other
// is 0; 0 when neither sets one.
double JobTimeLimit(const JobRequest& request, double server_seconds);

// The search space a request asks for (the search's defaults where it names none).
// Errors: InvalidArgument for an unknown pattern or precision name.
StatusOr<SearchSpace> SearchSpaceOf(const JobRequest& request);

// The device class's newest trained predictor, null when it has none.
StatusOr<std::shared_ptr<const predictors::TrainedPredictor>> LatestPredictor(predictors::MeasurementStore* store,
                                                                              const std::string& device_class);

class JobScheduler {
 public:
  // Everything passed must outlive the scheduler.
  JobScheduler(ServerStore* store, BlobStore* blobs, Farm* farm, MeasurementCampaigns* measurement_campaigns,
               predictors::MeasurementStore* measurements, SchedulerOptions options);
  ~JobScheduler();

  // Validates and queues. Errors name the problem: InvalidArgument (unknown model or
  // dataset blob, a model that does not import at the input shape, a malformed budget,
  // agent or search space, an input shape over max_input_elements, a negative time
  // limit), FailedPrecondition (a budget that cannot be met, no worker of the device
  // class), ResourceExhausted naming the limit (the owner has max_jobs_per_user jobs queued
  // or running, the dataset would decode past max_dataset_bytes).
  StatusOr<JobRecord> Submit(const std::string& owner, const JobRequest& request);
  // Cancels a queued or running job (a running one stops before its next episode);
  // FailedPrecondition when it has ended already.
  StatusOr<JobRecord> Cancel(const std::string& id);

  // The checks of the options that can refuse Start, without starting anything: a server
  // runs them before it listens. InvalidArgument without a work dir, or when a directory
  // confined children may read whole (the system's, --datasets-dir) holds the data dir,
  // naming both.
  Status Validate() const;
  // Validates, then starts the runner threads; jobs a previous server left running come
  // first.
  Status Start();
  // Stops the runners after their current episode; running jobs keep their state and
  // checkpoint, to be resumed by the next Start.
  void Stop();

  // Runs one job in this process until it ends or stops (a job runner child's work);
  // every error and exception ends the job with its message.
  void RunJobHere(const std::string& id);
  // What Submit checks by running the user's model: it imports at the input shape, the
  // dataset reads, and the budget is reachable under the cost model. `request` names its
  // device class. Errors as Submit's.
  Status CheckModelAndData(const JobRequest& request);
  // Stops the runners at their next chance; async-signal-safe.
  void RequestStop() { stopping_ = true; }
  // WORK_DIR/ID: the job's own files while it runs (its exports, its runner's temporary
  // files), the only place under the work dir its runner may change or remove files.
  std::string JobDir(const std::string& id) const;
  // Where this process extracts uploaded dataset archives (ReadableDatasetPath): a child
  // sets its own directory, so that no job reads what another job's process wrote. Unset:
  // WORK_DIR/datasets, shared (jobs run in the serving process, unconfined).
  void set_extract_dir(std::string dir) { extract_dir_ = std::move(dir); }
  // Where a running job's reads and writes of the store go: a job runner child sets its
  // channel to the server (RemoteJobHost); otherwise this process's stores.
  void set_host(JobHost* host) { host_ = host; }

  // Queues `runs` measure-model tasks of the ended job's exported policy (rank 0) against
  // its dense model on the job's device class, as its verification did, tied to the job;
  // returns their ids and sets *device_class. FailedPrecondition when the job has no
  // verified exported policy.
  StatusOr<std::vector<std::string>> EnqueueRemeasure(const JobRecord& job, int runs, std::string* device_class);

  // Blocks until an event is added to any job or `seconds` pass.
  void WaitForEvents(double seconds);
  const SchedulerOptions& options() const { return options_; }

 private:
  void RunnerLoop();
  std::string NextJob();
  // Runs the job in a child process, for what is left of its time limit, and accounts for
  // how it ended.
  void RunJobInChild(const std::string& id);
  // Ends a job that has not ended as FAILED with `message`, its open tasks failed.
  void FailJob(JobRecord& job, const std::string& message);
  Status CheckInChild(const JobRequest& request);
  // What a child may write and read (server/job_process.cc): it writes only `own_dir` (also
  // its temporary dir, where it extracts datasets; made here, the child cannot), and reads
  // only the system's directories, its program's, the datasets dir, the request's blobs
  // and its own dir: never the SQLite file, other jobs' dirs or other blobs.
  WriteConfinement ChildConfinement(const std::string& own_dir, const JobRequest& request) const;
  // --data-dir (the work dir's parent).
  std::string DataDir() const;
  // At Validate, with confined children: InvalidArgument when a directory they may read whole
  // (the system's, --datasets-dir) holds the data dir, naming both.
  Status ChildReadsCheck() const;
  // Runs `child` to its end, answering its calls on `channel` (JobChannelServer); kills it
  // at a protocol violation (*violation says what) or, for a job, when it is interrupted.
  ProcessExit ServeChild(ChildProcess& child, int channel, JobChannelServer& server, const std::string& job_id,
                         std::string* violation);
  Status RunJob(JobRecord& job);
  Status Prepare(JobRecord& job, const JobRequest& request, JobProgress& progress);
  Status Search(JobRecord& job, const JobRequest& request, JobProgress& progress);
  // The result kept while an accuracy round searched (JobProgress::kept_result) becomes
  // the job's result again, saved.
  Status RestoreKeptResult(JobRecord& job, JobProgress& progress);
  Status Verify(JobRecord& job, const JobRequest& request, JobProgress& progress);
  // Preparing a latency job once its class has a predictor: the model's layers measured
  // (a campaign) and its dense latency (a measure-model task). True when both are done.
  StatusOr<bool> MeasureModelOnClass(JobRecord& job, const JobRequest& request, JobProgress& progress,
                                     const PredictorState& predictor);
  // The closed loop after a verification that missed the budget (a round is left): the
  // verified policies' layers measured and the predictor retrained, then NextRound (not
  // when interrupted while waiting).
  Status StartNextRound(JobRecord& job, const JobRequest& request, JobProgress& progress,
                        const nlohmann::json& outcome);
  // After a result well under its budget (a round is left): the result kept
  // (JobProgress::kept_result), then NextRound.
  Status StartAccuracyRound(JobRecord& job, JobProgress& progress, const nlohmann::json& outcome);
  // The verified policies join JobProgress::measured_policies (the next search refits its
  // predictions on them), the round counter advances, and the job is searching again.
  Status NextRound(JobRecord& job, JobProgress& progress, const std::string& message);
  // Waits for the device class's running measurement campaign; its predictor state when done.
  StatusOr<PredictorState> WaitForMeasurementCampaign(const std::string& job_id, const std::string& device_class);
  // A "measure-model" task of this job's model under `policy_json`, its runtime profiled
  // over `profile_runs` runs when > 0.
  StatusOr<std::string> EnqueueModelTask(const JobRecord& job, const JobRequest& request,
                                         const std::string& device_class, const std::string& policy_json, int rank,
                                         const std::string& policy_hash, int profile_runs = 0);
  // A verified policy's whole-model latency joins the device class's measurements (the
  // predictor's per-model overhead learns from them).
  Status RecordModelMeasurement(const JobRequest& request, const JobProgress& progress, const Verification& v,
                                const nlohmann::json& result);
  Status SetState(JobRecord& job, const std::string& state, const std::string& message = "");
  Status Save(JobRecord& job, const JobProgress& progress);
  Status Event(const std::string& job_id, const std::string& kind, const nlohmann::json& json);
  // A request's data (server/job_data.cc): its dataset, or its test set (an empty path when
  // it names none).
  enum class DataRole { kData, kTest };
  StatusOr<std::string> DatasetPath(const JobRequest& request, DataRole role = DataRole::kData) const;
  // DatasetPath, with an uploaded tar archive (an image folder) extracted once into
  // EXTRACT_DIR/SHA (set_extract_dir; ExtractTar's checks and limits) and that folder given
  // instead. Called by the check and job processes, not the serving one.
  StatusOr<std::string> ReadableDatasetPath(const JobRequest& request, DataRole role = DataRole::kData) const;
  // The dataset options of the request's data at `data_path` (the train split of an IDX
  // directory, its preprocessing spec, the split's shuffle seed or 1 for an image folder,
  // max_dataset_bytes), not yet fitted to the input shape. InvalidArgument for a malformed
  // spec or split.
  StatusOr<DatasetOptions> DataOptionsOf(const JobRequest& request, const std::string& data_path = "") const;
  // The samples each part of the request's split takes of data holding `total`, this
  // scheduler's counts for the parts it leaves unset; InvalidArgument naming the counts and
  // the total when they do not fit.
  StatusOr<SplitCounts> SplitOf(const JobRequest& request, int64_t total) const;
  StatusOr<std::string> ResolveDeviceClass(const std::string& requested) const;
  bool Interrupted(const std::string& job_id) const;

  ServerStore* store_;
  BlobStore* blobs_;
  Farm* farm_;
  MeasurementCampaigns* measurement_campaigns_;
  predictors::MeasurementStore* measurements_;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, event_cv_;
  std::deque<std::string> resume_;  // jobs of a previous server, first
  std::set<std::string> running_, cancel_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> checks_running_{0};  // CheckInChild calls under way
  std::string extract_dir_;             // set_extract_dir
  std::vector<std::thread> runners_;
  std::unique_ptr<LocalJobHost> local_host_;  // over the stores passed, when any
  JobHost* host_ = nullptr;                   // local_host_ or set_host's
};

}  // namespace acs::server
