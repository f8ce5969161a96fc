// Where a job runs (part of JobScheduler, server/jobs.h): the runner threads take queued
// jobs and run each here or, with a runner program, in a child process under the job's
// limits, accounting for how that child ended; Submit's check of a model in a child.
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

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

// Closes a descriptor when it goes out of scope.
struct ClosedFd {
  int fd = -1;
  ~ClosedFd() {
    if (fd >= 0) close(fd);
  }
};

// This program's shared libraries (the files it maps executable, from /proc/self/maps): a
// child of the same program loads them again. Not the data files it maps (SQLite's -shm is
// mapped shared and writable, never executable).
std::set<std::string> LibraryFiles() {
  std::set<std::string> files;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/'), perms = line.find(' ');
    if (slash == std::string::npos || perms == std::string::npos || perms + 4 >= line.size() ||
        line[perms + 3] != 'x') {
      continue;
    }
    std::string path = line.substr(slash);
    if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0) continue;
    files.insert(path);
  }
  return files;
}

// What every child may read of the system: the loader, libraries, LibTorch's /proc and /sys
// probes, /etc.
std::vector<std::string> SystemReadable() {
  return {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys", "/dev"};
}

// How long a child may take to send the rest of a message it started, or to read an answer.
constexpr double kChannelStallSeconds = 30;

}  // namespace

std::string JobScheduler::JobDir(const std::string& id) const { return (fs::path(options_.work_dir) / id).string(); }

std::string JobScheduler::DataDir() const { return fs::path(options_.work_dir).parent_path().string(); }

Status JobScheduler::ChildReadsCheck() const {
  if (options_.runner_program.empty() || !options_.confine_writes) return Status::Ok();
  std::vector<std::string> dirs = SystemReadable();
  if (!options_.datasets_dir.empty()) dirs.push_back(options_.datasets_dir);
  for (const std::string& dir : dirs) {
    if (!PathHolds(dir, DataDir())) continue;
    return Status::InvalidArgument(
        "the data dir '" + DataDir() + "' is inside '" + dir + "', which job runners may read (" +
        (dir == options_.datasets_dir ? "--datasets-dir" : "the system's files") +
        "): they could read its database; move the data dir out of it");
  }
  return Status::Ok();
}

WriteConfinement JobScheduler::ChildConfinement(const std::string& own_dir, const JobRequest& request) const {
  WriteConfinement w;
  w.enabled = options_.confine_writes;
  // Its own dir is all it writes: the store's rows go through the server (job_channel.h)
  // and its exports enter the blob store from there.
  w.writable.push_back({own_dir});
  w.temp_dir = own_dir;
  // Reads: the system, its program and libraries, the datasets jobs may name, and the
  // request's own blobs.
  w.confine_reads = true;
  w.deny_ip_sockets = true;  // it talks over its socket pair only
  w.readable = SystemReadable();
  // Their directories, or where one holds --data-dir (a build tree holding data/) the files
  // alone: nothing of --data-dir (ChildReadsCheck refuses a --datasets-dir holding it).
  std::vector<std::string> program_files;
  if (!options_.runner_program.empty()) program_files.push_back(options_.runner_program);
  for (const std::string& file : LibraryFiles()) program_files.push_back(file);
  for (const std::string& rule : ReadableKeepingOut(program_files, DataDir())) w.readable.push_back(rule);
  if (!options_.datasets_dir.empty()) w.readable.push_back(options_.datasets_dir);
  for (const std::string* sha : {&request.model_sha256, &request.dataset_sha256, &request.test_dataset_sha256}) {
    if (sha->empty()) continue;
    if (StatusOr<std::string> path = blobs_->PathOf(*sha); path.ok()) w.readable.push_back(*path);
  }
  std::error_code ec;
  fs::create_directories(own_dir, ec);  // the child cannot create it
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
  limits.writes = ChildConfinement(own, request);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return Status::Unavailable("cannot make a channel for checking the model");
  }
  const ClosedFd mine{pair[0]};
  StatusOr<std::unique_ptr<ChildProcess>> started = ChildProcess::Start(argv, limits, request.ToJson().dump(), pair[1]);
  close(pair[1]);
  ACS_RETURN_IF_ERROR(started.status());
  ChildProcess& child = **started;
  JobChannelServer server("", request, own, host_, measurements_, options_.measurement_campaign);
  std::string violation;
  const ProcessExit exit = ServeChild(child, pair[0], server, "", &violation);
  const std::string what = "model " + request.model_sha256.substr(0, 12) + " at input " +
                           FormatShape(request.input_shape);
  if (!violation.empty()) {
    return Status::InvalidArgument(what + ": the check's process sent the server a message it refused (" + violation +
                                   ")");
  }
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

ProcessExit JobScheduler::ServeChild(ChildProcess& child, int channel, JobChannelServer& server,
                                     const std::string& job_id, std::string* violation) {
  std::optional<std::chrono::steady_clock::time_point> asked_to_stop;
  bool open = true;
  while (true) {
    if (std::optional<ProcessExit> exit = child.Wait(open ? 0 : 0.25)) return *exit;
    child.ReadAvailableOutput();  // a model that prints must not block on its stdout
    if (open) {
      pollfd p{channel, POLLIN, 0};
      if (poll(&p, 1, 250) > 0) {
        std::string frame;
        Status read = ReadFrame(channel, kMaxChildMessageBytes, kChannelStallSeconds, &frame);
        if (read.code() == StatusCode::kNotFound || read.code() == StatusCode::kUnavailable) {
          open = false;  // it closed its end (or died mid-message): its exit says why
        } else {
          StatusOr<std::string> answer = read.ok() ? server.Handle(frame) : read;
          Status sent = answer.ok() ? WriteFrame(channel, *answer, kChannelStallSeconds) : answer.status();
          if (!sent.ok()) {
            *violation = sent.message();
            spdlog::warn("{} sent the server a message it refused, stopped: {}",
                         job_id.empty() ? "a model check" : "job " + job_id, sent.message());
            child.Signal(SIGKILL);
            return child.WaitForExit();
          }
          event_cv_.notify_all();  // it may have added an event
        }
      }
    }
    if (job_id.empty()) continue;
    // A runner waiting on workers writes no progress: its time run is stored meanwhile.
    if (Status persisted = server.PersistRunTime(); !persisted.ok()) {
      spdlog::warn("job {}: storing its time run: {}", job_id, persisted.message());
    }
    if (!Interrupted(job_id)) continue;
    const auto now = std::chrono::steady_clock::now();
    if (!asked_to_stop) {
      child.Signal(SIGTERM);  // it stops after its current episode, checkpointed
      asked_to_stop = now;
    } else if (std::chrono::duration<double>(now - *asked_to_stop).count() > options_.stop_grace_seconds) {
      child.Signal(SIGKILL);
    }
  }
}

void JobScheduler::RunJobHere(const std::string& id) {
  StatusOr<JobRecord> job = host_->GetJob(id);
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
      (void)host_->FailOpenTasksOfJob(id, "cancelled");
      (void)SetState(*job, kJobCancelled, "cancelled");
    } else if (!s.ok()) {
      const std::string memory = OutOfMemoryMessage(s.message(), "the job", job->state);
      job->error = memory.empty() ? s.message() : memory;
      (void)SetState(*job, kJobFailed, job->error);
    }
    // Otherwise stopped by the server's shutdown: the job stays as it is, to resume.
  }
}

void JobScheduler::FailJob(JobRecord& job, const std::string& message) {
  job.error = message;
  (void)store_->FailOpenTasksOfJob(job.id, "the job failed");
  (void)SetState(job, kJobFailed, message);
}

void JobScheduler::RunJobInChild(const std::string& id) {
  std::vector<std::string> argv = {options_.runner_program, "run-job", id};
  argv.insert(argv.end(), options_.runner_flags.begin(), options_.runner_flags.end());
  ProcessLimits limits = options_.job_limits;
  StatusOr<JobRecord> stored = store_->GetJob(id);
  StatusOr<JobRequest> request =
      stored.ok() ? JobRequest::FromJson(stored->request_json) : StatusOr<JobRequest>(stored.status());
  // Its runners share its time limit: this one gets what the earlier ones left, as the
  // server counted them (a runner's own writes of run_seconds are replaced below).
  const double ran = stored.ok() ? JobProgress::FromJson(stored->progress_json).run_seconds : 0;
  const double time_limit = JobTimeLimit(request.ok() ? *request : JobRequest(), options_.job_limits.wall_seconds);
  auto over_time = [&](const std::string& state) {
    if (request.ok() && time_limit == static_cast<double>(request->time_limit_seconds)) {
      return "the job exceeded its time limit of " + std::to_string(request->time_limit_seconds) + " s while " + state;
    }
    ProcessExit timeout;
    timeout.wall_timeout = true;
    return "the job runner " + DescribeExit(timeout, options_.job_limits) + " while " + state;
  };
  if (stored.ok() && time_limit > 0 && ran >= time_limit) {  // e.g. the server stopped as it ran out
    if (!IsTerminalJobState(stored->state)) FailJob(*stored, over_time(stored->state));
    return;
  }
  if (time_limit > 0) limits.wall_seconds = time_limit - ran;
  limits.writes = ChildConfinement(JobDir(id), request.ok() ? *request : JobRequest());
  const RemovedDir removed{JobDir(id)};  // nothing in it outlives the child
  const auto started = std::chrono::steady_clock::now();
  int pair[2] = {-1, -1};
  StatusOr<std::unique_ptr<ChildProcess>> child =
      !request.ok() ? StatusOr<std::unique_ptr<ChildProcess>>(request.status())
      : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0
          ? StatusOr<std::unique_ptr<ChildProcess>>(Status::Unavailable("cannot make the job runner's channel"))
          : ChildProcess::Start(argv, limits, "", pair[1]);
  const ClosedFd mine{pair[0]};
  if (pair[1] >= 0) close(pair[1]);
  std::optional<ProcessExit> exit;
  std::string violation;
  if (child.ok()) {
    spdlog::info("job {} runs in process {}{}", id, (*child)->pid(),
                 (*child)->writes_confined() ? " (writes confined)" : "");
    JobChannelServer server(id, *request, JobDir(id), host_, measurements_, options_.measurement_campaign);
    exit = ServeChild(**child, pair[0], server, id, &violation);
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
  if (!violation.empty()) {
    FailJob(*job, "the job runner sent the server a message it refused (" + violation +
                      "); nothing of that message was applied");
    return;
  }
  JobProgress progress = JobProgress::FromJson(job->progress_json);
  progress.run_seconds =
      ran + (child.ok() ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() : 0.0);
  if (exit && exit->wall_timeout) {  // its time limit: the job's own, never a runner death to retry
    job->progress_json = progress.ToJson().dump();
    FailJob(*job, over_time(job->state));
    return;
  }
  if (stopping_ && child.ok()) {  // the server stops: the job resumes at its next start
    job->progress_json = progress.ToJson().dump();
    (void)store_->UpdateJob(*job);
    return;
  }
  ++progress.runner_deaths;
  std::string what = !child.ok()  ? "the job runner could not be started: " + child.status().message()
                     : exit->ok() ? "the job runner exited before the job ended, while " + job->state
                                  : "the job runner " + DescribeExit(*exit, limits) + " while " + job->state;
  const bool final = !child.ok() || exit->signal == SIGXCPU || progress.runner_deaths >= options_.max_runner_deaths;
  job->progress_json = progress.ToJson().dump();
  if (final) {
    if (progress.runner_deaths > 1) what += " (its runner died " + std::to_string(progress.runner_deaths) + " times)";
    FailJob(*job, what);
    return;
  }
  (void)store_->UpdateJob(*job);
  (void)Event(id, kEventState, {{"state", job->state}, {"message", what + "; resuming from its last checkpoint"}});
  std::lock_guard<std::mutex> lock(mu_);
  resume_.push_back(id);
}

}  // namespace acs::server
