// Where a job runs (part of JobScheduler, server/jobs.h): the runner threads take queued
// jobs and run each here or, with a runner program, in a child process under the job's
// limits, accounting for how that child ended; Submit's check of a model in a child.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "core/child_process.h"
#include "core/importer.h"
#include "core/torchscript_model.h"
#include "server/jobs.h"

namespace acs::server {
namespace fs = std::filesystem;

namespace {

// Removes a child's own dir when it goes out of scope.
struct RemovedDir {
  std::string path;
  ~RemovedDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

std::string JobScheduler::JobDir(const std::string& id) const { return (fs::path(options_.work_dir) / id).string(); }

WriteConfinement JobScheduler::ChildWrites(const std::string& own_dir, bool adds_blobs) const {
  WriteConfinement w;
  w.enabled = options_.confine_writes;
  // SQLite in WAL mode writes these three; the serving process keeps them in existence.
  if (!options_.db_path.empty()) {
    for (const char* suffix : {"", "-wal", "-shm"}) w.writable.push_back({options_.db_path + suffix});
  }
  w.writable.push_back({own_dir});
  if (adds_blobs) w.writable.push_back({blobs_->blob_dir(), WriteAccess::kAddOnly});
  w.temp_dir = own_dir;
  std::error_code ec;  // the child cannot create it
  fs::create_directories(own_dir, ec);
  return w;
}

Status JobScheduler::CheckInChild(const JobRequest& request) {
  if (checks_running_.fetch_add(1) >= options_.max_concurrent_checks) {
    checks_running_.fetch_sub(1);
    return Status::ResourceExhausted(std::to_string(options_.max_concurrent_checks) +
                                     " submitted models are being checked, this server's limit: submit again in a "
                                     "moment");
  }
  struct Slot {
    std::atomic<int>& running;
    ~Slot() { running.fetch_sub(1); }
  } slot{checks_running_};
  std::vector<std::string> argv = {options_.runner_program, "check-job"};
  argv.insert(argv.end(), options_.runner_flags.begin(), options_.runner_flags.end());
  std::error_code ec;
  fs::create_directories(options_.work_dir, ec);
  std::string own = (fs::path(options_.work_dir) / "check-XXXXXX").string();
  if (mkdtemp(own.data()) == nullptr) {
    return Status::Unavailable("cannot make a directory for checking the model under '" + options_.work_dir + "'");
  }
  const RemovedDir removed{own};
  ProcessLimits limits = options_.check_limits;
  limits.writes = ChildWrites(own, /*adds_blobs=*/false);
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> child, ChildProcess::Start(argv, limits, request.ToJson().dump()));
  const ProcessExit exit = child->WaitForExit();
  const std::string what = "model " + request.model_sha256.substr(0, 12) + " at input " +
                           FormatShape(request.input_shape);
  if (!exit.ok()) {
    return Status::InvalidArgument(what + ": importing it and reading the dataset " + DescribeExit(exit, limits));
  }
  return StatusFromJsonLine(exit.output);
}

void JobScheduler::RunnerLoop() {
  while (!stopping_) {
    const std::string id = NextJob();
    if (id.empty()) {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(options_.poll_seconds * 1000)));
      continue;
    }
    if (options_.runner_program.empty()) {
      RunJobHere(id);
    } else {
      RunJobInChild(id);
    }
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(id);
  }
}

void JobScheduler::RunJobHere(const std::string& id) {
  StatusOr<JobRecord> job = store_->GetJob(id);
  Status s = job.status();
  if (s.ok() && !IsTerminalJobState(job->state)) {
    try {
      s = RunJob(*job);
    } catch (const std::exception& e) {
      s = Status::Internal("the job failed while " + job->state + ": " + ShortError(e));
    } catch (...) {
      s = Status::Internal("the job failed while " + job->state + " (an unknown exception)");
    }
  }
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = cancel_.erase(id) > 0;
  }
  if (job.ok() && !IsTerminalJobState(job->state)) {
    if (cancelled) {
      (void)store_->FailOpenTasksOfJob(id, "cancelled");
      (void)SetState(*job, kJobCancelled, "cancelled");
    } else if (!s.ok()) {
      const std::string memory = OutOfMemoryMessage(s.message(), "the job", job->state);
      job->error = memory.empty() ? s.message() : memory;
      (void)SetState(*job, kJobFailed, job->error);
    }
    // Otherwise stopped by the server's shutdown: the job stays as it is, to resume.
  }
}

void JobScheduler::RunJobInChild(const std::string& id) {
  std::vector<std::string> argv = {options_.runner_program, "run-job", id};
  argv.insert(argv.end(), options_.runner_flags.begin(), options_.runner_flags.end());
  ProcessLimits limits = options_.job_limits;
  limits.writes = ChildWrites(JobDir(id), /*adds_blobs=*/true);
  const RemovedDir removed{JobDir(id)};  // nothing in it outlives the child
  StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv, limits);
  std::optional<ProcessExit> exit;
  if (child.ok()) {
    spdlog::info("job {} runs in process {}{}", id, (*child)->pid(),
                 (*child)->writes_confined() ? " (writes confined)" : "");
    std::optional<std::chrono::steady_clock::time_point> asked_to_stop;
    while (!(exit = (*child)->Wait(0.25))) {
      event_cv_.notify_all();  // the child's events are in the store
      if (!Interrupted(id)) continue;
      const auto now = std::chrono::steady_clock::now();
      if (!asked_to_stop) {
        (*child)->Signal(SIGTERM);  // it stops after its current episode, checkpointed
        asked_to_stop = now;
      } else if (std::chrono::duration<double>(now - *asked_to_stop).count() > options_.stop_grace_seconds) {
        (*child)->Signal(SIGKILL);
      }
    }
    event_cv_.notify_all();
  }
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = cancel_.erase(id) > 0;
  }
  StatusOr<JobRecord> job = store_->GetJob(id);
  if (!job.ok() || IsTerminalJobState(job->state)) return;
  if (cancelled) {
    (void)store_->FailOpenTasksOfJob(id, "cancelled");
    (void)SetState(*job, kJobCancelled, "cancelled");
    return;
  }
  if (stopping_ && child.ok()) return;  // the server stops: the job resumes at its next start
  JobProgress progress = JobProgress::FromJson(job->progress_json);
  ++progress.runner_deaths;
  std::string what = !child.ok() ? "the job runner could not be started: " + child.status().message()
                     : exit->ok() ? "the job runner exited before the job ended, while " + job->state
                                  : "the job runner " + DescribeExit(*exit, limits) + " while " + job->state;
  const bool final = !child.ok() || exit->wall_timeout || exit->signal == SIGXCPU ||
                     progress.runner_deaths >= options_.max_runner_deaths;
  job->progress_json = progress.ToJson().dump();
  if (final) {
    if (progress.runner_deaths > 1) what += " (its runner died " + std::to_string(progress.runner_deaths) + " times)";
    job->error = what;
    (void)store_->FailOpenTasksOfJob(id, "the job failed");
    (void)SetState(*job, kJobFailed, what);
    return;
  }
  (void)store_->UpdateJob(*job);
  (void)Event(id, kEventState, {{"state", job->state}, {"message", what + "; resuming from its last checkpoint"}});
  std::lock_guard<std::mutex> lock(mu_);
  resume_.push_back(id);
}

}  // namespace acs::server
