#include "server/job_service.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "agents/agent_names.h"
#include "core/policy.h"
#include "server/auth.h"
#include "server/blob_gc.h"

namespace acs::server {
namespace {

// Admins and users: everything but the farm protocol and measurement campaigns.
Status RequireClient(const Principal& who, const std::string& what) {
  return Authenticator::Require(who, {Role::kAdmin, Role::kUser}, what);
}

// The server flag that sets JobServiceOptions::max_user_stored_bytes, named in refusals.
constexpr const char* kQuotaFlag = "--max-user-storage-mb";

// "alice stores 614400 bytes (uploads and job artifacts) of a quota of 1048576".
std::string StoredText(const std::string& owner, int64_t used, int64_t quota) {
  return owner + " stores " + std::to_string(used) + " bytes (uploads and job artifacts) of a quota of " +
         std::to_string(quota);
}

// "policy #2 (run 2) <hash>: measured 80 us (dense 200 us), predicted 90 us; ...", or why
// the policy could not be measured.
std::string VerifiedMessage(const nlohmann::json& j) {
  const int run = j.value("run", 0);
  const std::string which =
      "policy #" + std::to_string(j.value("rank", 0) + 1) + (run > 0 ? " (run " + std::to_string(run + 1) + ")" : "");
  if (!j.value("error", "").empty()) return which + " could not be measured: " + j.value("error", "");
  char line[240];
  std::snprintf(line, sizeof line, "%s %s: measured %.0f us (dense %.0f us), predicted %.0f us", which.c_str(),
                j.value("policy_hash", "").c_str(), j.value("measured_us", 0.0), j.value("dense_measured_us", 0.0),
                j.value("predicted_us", 0.0));
  std::string message = line;
  if (j.value("stock_us", 0.0) > 0) {
    std::snprintf(line, sizeof line, "; compressed.pt in stock PyTorch %.0f us", j.value("stock_us", 0.0));
    message += line;
  }
  if (j.value("acs_file_us", 0.0) > 0) {
    std::snprintf(line, sizeof line, "; compressed.acs.pt %.0f us", j.value("acs_file_us", 0.0));
    message += line;
  }
  return message;
}

// A VERIFIED event's stored JSON (Verify in server/job_verification.cc) as a view.
VerificationView VerificationOf(const nlohmann::json& j) {
  VerificationView v;
  v.rank = j.value("rank", 0);
  v.run = j.value("run", 0);
  v.policy_hash = j.value("policy_hash", "");
  v.accuracy = j.value("accuracy", 0.0);
  v.predicted_us = j.value("predicted_us", 0.0);
  v.dense_predicted_us = j.value("dense_predicted_us", 0.0);
  v.measured_us = j.value("measured_us", 0.0);
  v.dense_measured_us = j.value("dense_measured_us", 0.0);
  v.stock_us = j.value("stock_us", 0.0);
  v.acs_file_us = j.value("acs_file_us", 0.0);
  v.error = j.value("error", "");
  if (v.measured_us > 0 && v.dense_measured_us > 0) v.measured_speedup = v.dense_measured_us / v.measured_us;
  if (v.predicted_us > 0 && v.dense_predicted_us > 0) v.predicted_speedup = v.dense_predicted_us / v.predicted_us;
  if (v.predicted_us > 0 && v.measured_us > 0) v.prediction_error = v.predicted_us / v.measured_us - 1;
  return v;
}

// Whether the stored event is the job's entry into a terminal state.
bool EndsJob(const JobEventRecord& e) {
  if (e.kind != kEventState) return false;
  const nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
  return j.is_object() && IsTerminalJobState(j.value("state", ""));
}

}  // namespace

JobEventView EventView(const JobEventRecord& e) {
  JobEventView out;
  out.seq = e.seq;
  out.time_ms = e.time_ms;
  out.kind = e.kind;
  const nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
  if (!j.is_object()) return out;
  if (e.kind == kEventState) out.state = j.value("state", "");
  out.episode = j.value("episode", 0);
  out.reward = j.value("reward", 0.0);
  out.accuracy = j.value("accuracy", 0.0);
  out.cost_ratio = j.value("cost_ratio", 0.0);
  out.message = e.kind == kEventVerified ? VerifiedMessage(j) : j.value("message", "");
  if (e.kind == kEventVerified) out.verification = VerificationOf(j);
  return out;
}

StatusOr<SubmitChoices> JobService::Choices(const Principal& who) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "reading the search space"));
  SubmitChoices out;
  out.agents = AgentNames();
  out.default_agent = JobRequest{}.agent;
  out.budget_kinds = BudgetKinds();
  out.patterns = PatternNames();
  out.precisions = PrecisionNames();
  ACS_ASSIGN_OR_RETURN(out.defaults, SearchSpaceOf(JobRequest{}));
  return out;
}

std::string PredictorStateText(const PredictorState& s) {
  std::string state = s.state;
  if (s.state == "collecting") {
    state += " " + std::to_string(s.tasks_done + s.tasks_failed) + "/" + std::to_string(s.tasks_total);
  }
  if (!s.error.empty()) state += ": " + s.error;
  return state;
}

StatusOr<BlobWriter::Committed> JobService::Upload(const Principal& who, const std::string& what,
                                                   const NextUploadPiece& next, const CallerGone& gone) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "uploading a " + what));
  const std::string& owner = who.name;
  const int64_t max_upload = options_.max_upload_bytes, quota = options_.max_user_stored_bytes;
  // The quota bounds what this upload may bring (a blob the owner has already counts again
  // here, and is not counted twice once stored).
  ACS_ASSIGN_OR_RETURN(int64_t used, p_.store->StoredBytes(owner));
  const int64_t left = quota > 0 ? std::max<int64_t>(0, quota - used) : max_upload;
  auto over_quota = [&](int64_t bytes) {
    return Status::ResourceExhausted(StoredText(owner, used, quota) + "; this upload of " + std::to_string(bytes) +
                                     " bytes would pass it (ask an admin to raise " + kQuotaFlag + ")");
  };
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, p_.blobs->NewWriter(std::min(max_upload, left)));
  UploadPiece piece;
  bool first = true;
  int64_t announced = 0, received = 0;
  while (next(&piece)) {
    const int64_t size = static_cast<int64_t>(piece.data.size());
    if (first) {
      announced = piece.total_bytes;
      if (announced > max_upload) {
        return Status::ResourceExhausted("upload of " + std::to_string(announced) + " bytes exceeds the limit of " +
                                         std::to_string(max_upload) + " bytes");
      }
      if (announced > left) return over_quota(announced);
    }
    if (received + size > left && left < max_upload) return over_quota(received + size);
    first = false;
    ACS_RETURN_IF_ERROR(writer->Append(piece.data));
    received += size;
  }
  if (gone && gone()) return Status::Cancelled("the upload was interrupted; nothing was stored");
  if (first) return Status::InvalidArgument("an upload needs at least one chunk");
  if (announced > 0 && received != announced) {
    return Status::InvalidArgument("the upload announced " + std::to_string(announced) + " bytes and sent " +
                                   std::to_string(received) + "; nothing was stored");
  }
  ACS_ASSIGN_OR_RETURN(BlobWriter::Committed committed, writer->Commit());
  ACS_RETURN_IF_ERROR(p_.store->RecordStoredBlob(owner, committed.sha256, committed.bytes));
  return committed;
}

StatusOr<JobRecord> JobService::Submit(const Principal& who, const JobRequest& request) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "submitting a job"));
  if (const int64_t quota = options_.max_user_stored_bytes; quota > 0) {
    ACS_ASSIGN_OR_RETURN(int64_t used, p_.store->StoredBytes(who.name));
    if (used > quota) {
      return Status::ResourceExhausted(StoredText(who.name, used, quota) +
                                       ", over it: no new job until an admin raises " + kQuotaFlag);
    }
  }
  // A user's job reads only the blobs that user stored: another user's model or data, even
  // by its hash, is as unknown as a blob that does not exist; an admin's may name any. Each
  // is held from here until the job that names it is stored, which may be minutes of model
  // check later: no blob collection takes it meanwhile, however old.
  const std::string holder = who.role == Role::kAdmin ? "" : who.name;
  std::vector<BlobHold> held;
  for (const auto& [what, sha] : {std::pair<const char*, const std::string*>{"model", &request.model_sha256},
                                  {"dataset", &request.dataset_sha256},
                                  {"test dataset", &request.test_dataset_sha256}}) {
    if (sha->empty()) continue;
    StatusOr<BlobHold> hold = HoldSubmittedBlob(*p_.store, *p_.blobs, holder, *sha);
    if (hold.status().code() == StatusCode::kNotFound) {
      return Status::InvalidArgument(std::string(what) + " " + *sha + " was not uploaded to this server by " +
                                     who.name);
    }
    ACS_RETURN_IF_ERROR(hold.status());
    held.push_back(std::move(*hold));
  }
  return p_.jobs->Submit(who.name, request);
}

StatusOr<JobRecord> JobService::VisibleJob(const Principal& who, const std::string& id) {
  if (id.empty()) return Status::InvalidArgument("a job id is required");
  StatusOr<JobRecord> job = p_.store->GetJob(id);
  if (job.ok() && who.role != Role::kAdmin && job->owner != who.name) return Status::NotFound("no job '" + id + "'");
  return job;
}

StatusOr<JobRecord> JobService::Get(const Principal& who, const std::string& id) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "reading a job"));
  return VisibleJob(who, id);
}

StatusOr<JobPage> JobService::List(const Principal& who, const JobListQuery& query) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "listing jobs"));
  JobFilter filter;
  if (who.role != Role::kAdmin) filter.owner = who.name;
  filter.state = query.state;
  filter.page_size = query.page_size;
  filter.page_token = query.page_token;
  JobPage page;
  if (query.offset > 0) {
    if (!query.page_token.empty()) return Status::InvalidArgument("give a page token or an offset, not both");
    StatusOr<std::string> token = p_.store->JobPageTokenAt(filter, query.offset);
    if (token.status().code() == StatusCode::kNotFound) return page;  // past the list's end: no jobs
    ACS_ASSIGN_OR_RETURN(filter.page_token, std::move(token));
  }
  ACS_ASSIGN_OR_RETURN(page.jobs, p_.store->ListJobs(filter, &page.next_page_token));
  return page;
}

StatusOr<JobRecord> JobService::Cancel(const Principal& who, const std::string& id) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "cancelling a job"));
  ACS_RETURN_IF_ERROR(VisibleJob(who, id).status());
  return p_.jobs->Cancel(id);
}

class JobService::WatchSlot {
 public:
  WatchSlot(JobService* service, const std::string& user) : service_(service), user_(user) {
    std::lock_guard<std::mutex> lock(service_->watch_mu_);
    held_ = service_->watchers_[user_] < service_->options_.max_watchers_per_user;
    if (held_) ++service_->watchers_[user_];
  }
  ~WatchSlot() {
    if (!held_) return;
    std::lock_guard<std::mutex> lock(service_->watch_mu_);
    if (--service_->watchers_[user_] == 0) service_->watchers_.erase(user_);
  }
  WatchSlot(const WatchSlot&) = delete;
  WatchSlot& operator=(const WatchSlot&) = delete;
  // ResourceExhausted naming the limit when the user had no watch left.
  Status status() const {
    if (held_) return Status::Ok();
    return Status::ResourceExhausted(user_ + " is watching " +
                                     std::to_string(service_->options_.max_watchers_per_user) +
                                     " jobs already, this server's limit per user");
  }

 private:
  JobService* service_;
  std::string user_;
  bool held_ = false;
};

Status JobService::Watch(const Principal& who, const std::string& id, int64_t after_seq, const SendJobEvent& send,
                         const CallerGone& gone) {
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<OpenedWatch> watch, OpenWatch(who, id, after_seq));
  return watch->Run(send, gone);
}

StatusOr<std::unique_ptr<JobService::OpenedWatch>> JobService::OpenWatch(const Principal& who, const std::string& id,
                                                                         int64_t after_seq) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "watching a job"));
  auto slot = std::make_unique<WatchSlot>(this, who.name);
  ACS_RETURN_IF_ERROR(slot->status());
  ACS_RETURN_IF_ERROR(VisibleJob(who, id).status());
  if (after_seq < 0) return Status::InvalidArgument("after_seq must be >= 0, not " + std::to_string(after_seq));
  return std::unique_ptr<OpenedWatch>(new OpenedWatch(this, std::move(slot), id, after_seq));
}

JobService::OpenedWatch::OpenedWatch(JobService* service, std::unique_ptr<WatchSlot> slot, std::string id,
                                     int64_t after_seq)
    : service_(service), slot_(std::move(slot)), id_(std::move(id)), after_seq_(after_seq) {}

JobService::OpenedWatch::~OpenedWatch() = default;

Status JobService::OpenedWatch::Run(const SendJobEvent& send, const CallerGone& gone) {
  return service_->SendEvents(id_, after_seq_, send, gone);
}

Status JobService::SendEvents(const std::string& id, int64_t seq, const SendJobEvent& send, const CallerGone& gone) {
  while (!(gone && gone())) {
    ACS_ASSIGN_OR_RETURN(std::vector<JobEventRecord> events, p_.store->EventsAfter(id, seq));
    ACS_ASSIGN_OR_RETURN(JobRecord job, p_.store->GetJob(id));  // read after the events: as new as they
    for (const JobEventRecord& e : events) {
      JobEventView view = EventView(e);
      view.job = job;
      if (!send(view)) return Status::Ok();  // the watcher went away
      seq = e.seq;
      if (EndsJob(e)) return Status::Ok();
    }
    if (!events.empty()) continue;
    // A watch resumed past the event that ended the job: nothing more will come.
    if (IsTerminalJobState(job.state)) {
      ACS_ASSIGN_OR_RETURN(std::optional<JobEventRecord> last, p_.store->LastEvent(id));
      if (last && last->seq <= seq && EndsJob(*last)) return Status::Ok();
    }
    p_.jobs->WaitForEvents(1.0);
  }
  return Status::Ok();
}

Status JobService::DownloadArtifact(const Principal& who, const std::string& job_id, const std::string& name,
                                    const SendArtifactPiece& send) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "downloading an artifact"));
  ACS_ASSIGN_OR_RETURN(JobRecord job, VisibleJob(who, job_id));
  const JobProgress progress = JobProgress::FromJson(job.progress_json);
  std::string names;
  for (const ArtifactRef& a : progress.artifacts) {
    names += (names.empty() ? "" : ", ") + a.name;
    if (a.name != name) continue;
    const std::string what = "artifact " + a.name + " of job " + job.id;
    ACS_ASSIGN_OR_RETURN(std::string path, p_.blobs->PathOf(a.sha256));
    // A blob damaged on the server's disk is refused, never sent as the artifact.
    if (Status verified = p_.blobs->Verify(a.sha256); !verified.ok()) {
      return Status::DataLoss(what + " is damaged on the server: " + verified.message());
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::DataLoss(what + " cannot be opened");
    std::string buffer(kArtifactPieceBytes, '\0');
    bool first = true;
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      ArtifactPiece piece;
      piece.first = first;
      piece.data.assign(buffer.data(), static_cast<size_t>(in.gcount()));
      if (first) {
        piece.total_bytes = a.bytes;
        piece.sha256 = a.sha256;
      }
      if ((in.gcount() > 0 || first) && !send(piece)) return Status::Ok();  // the receiver went away
      first = false;
    }
    if (in.bad()) return Status::DataLoss(what + " cannot be read");
    return Status::Ok();
  }
  return Status::NotFound(
      "job " + job_id + " has no artifact '" + name + "'" +
      (names.empty() ? std::string(" (it has none yet: state ") + job.state + ")" : " (it has " + names + ")"));
}

StatusOr<std::vector<DeviceView>> JobService::Devices(const Principal& who) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "listing devices"));
  return p_.farm->Devices();
}

StatusOr<PredictorState> JobService::TrainPredictor(const Principal& who, const std::string& device_class,
                                                    int samples) {
  ACS_RETURN_IF_ERROR(Authenticator::Require(who, {Role::kAdmin}, "starting a measurement campaign"));
  MeasurementCampaignOptions options;
  if (samples > 0) {
    options.samples = samples;
    options.heldout = std::max(1, samples / 6);
  }
  return p_.measurement_campaigns->Start(device_class, options);
}

StatusOr<PredictorState> JobService::PredictorStatus(const Principal& who, const std::string& device_class) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "reading predictor status"));
  if (device_class.empty()) return Status::InvalidArgument("device_class is required");
  return p_.measurement_campaigns->Poll(device_class);
}

StatusOr<predictors::EvalReport> JobService::EvaluatePredictor(const Principal& who, const std::string& device_class) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "evaluating a predictor"));
  StatusOr<std::vector<predictors::KernelRecord>> kernels = p_.measurements->Kernels(device_class);
  StatusOr<std::vector<predictors::ModelRecord>> models = p_.measurements->Models(device_class);
  ACS_RETURN_IF_ERROR(kernels.status());
  ACS_RETURN_IF_ERROR(models.status());
  if (kernels->empty()) {
    return Status::FailedPrecondition("no kernel measurements of device class '" + device_class + "'");
  }
  return predictors::EvaluatePredictors(*kernels, *models, {});
}

StatusOr<ServiceCounts> JobService::Counts() {
  ServiceCounts counts;
  ACS_ASSIGN_OR_RETURN(counts.jobs_by_state, p_.store->CountJobsByState());
  ACS_ASSIGN_OR_RETURN(std::vector<DeviceView> devices, p_.farm->Devices());
  counts.workers = static_cast<int64_t>(devices.size());
  for (const DeviceView& d : devices) counts.workers_online += d.online ? 1 : 0;
  return counts;
}

}  // namespace acs::server

namespace acs::server {

StatusOr<JobService::RemeasureResult> JobService::Remeasure(const Principal& who, const std::string& id, int runs,
                                                            const std::vector<std::string>& task_ids, bool cancel) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "measuring a job again"));
  ACS_ASSIGN_OR_RETURN(JobRecord job, VisibleJob(who, id));
  if (job.state != kJobSucceeded && job.state != kJobBudgetNotMet) {
    return Status::FailedPrecondition("job " + id + " is " + job.state +
                                      ": only a job that ended with a result is measured again");
  }
  if (runs < 0 || runs > 10) return Status::InvalidArgument("runs: expected 0 to 10, got " + std::to_string(runs));
  RemeasureResult out;
  out.device_class = JobProgress::FromJson(job.progress_json).device_class;
  std::vector<std::string> ids = task_ids;
  if (ids.empty()) {
    if (cancel) return Status::InvalidArgument("cancel: needs the task_ids to cancel");
    // An ended job's open tasks are its re-measurements: their number bounds what one job
    // may ask of the farm at once. Counting and enqueueing are one step, so concurrent
    // requests cannot together pass the limit.
    std::lock_guard<std::mutex> lock(remeasure_mu_);
    ACS_ASSIGN_OR_RETURN(std::vector<TaskRecord> of_job, p_.store->TasksOfJob(id));
    int open = 0;
    for (const TaskRecord& t : of_job) open += t.state == kTaskQueued || t.state == kTaskLeased;
    const int wanted = runs == 0 ? 3 : runs, cap = options_.max_open_remeasure_runs;
    if (open + wanted > cap) {
      return Status::ResourceExhausted("job " + id + " has " + std::to_string(open) +
                                       " re-measurements queued or running; " + std::to_string(wanted) +
                                       " more would pass this server's limit of " + std::to_string(cap) +
                                       " per job: wait for them or cancel them");
    }
    ACS_ASSIGN_OR_RETURN(ids, p_.jobs->EnqueueRemeasure(job, wanted, &out.device_class));
  }
  std::vector<TaskRecord> tasks;
  for (const std::string& t : ids) {
    StatusOr<TaskRecord> task = p_.store->GetTask(t);
    if (!task.ok() || task->job_id != id || task->kind != kTaskMeasureModel) {
      return Status::InvalidArgument("task_ids: '" + t + "' is not a measurement of job " + id);
    }
    tasks.push_back(*task);
  }
  if (cancel) {
    ACS_RETURN_IF_ERROR(p_.store->FailOpenTasks(id, ids, "the re-measurement was given up").status());
    for (TaskRecord& t : tasks) {
      ACS_ASSIGN_OR_RETURN(t, p_.store->GetTask(t.id));
    }
  }
  out.done = true;
  for (const TaskRecord& t : tasks) {
    RemeasureRun r;
    r.task_id = t.id;
    r.state = t.state;
    r.worker_id = t.worker_id;
    r.error = t.error;
    if (t.state == kTaskDone) {
      const nlohmann::json j = nlohmann::json::parse(t.result_json, nullptr, false);
      if (j.is_object() && j.contains("runtime") && j.contains("dense") && j["runtime"].is_object() &&
          j["dense"].is_object()) {
        r.measured_us = j["runtime"].value("median_us", 0.0);
        r.dense_measured_us = j["dense"].value("median_us", 0.0);
      }
      if (r.measured_us <= 0 || r.dense_measured_us <= 0) r.error = "the worker's result has no runtime measurement";
    }
    out.done &= t.state == kTaskDone || t.state == kTaskFailed;
    out.runs.push_back(r);
  }
  return out;
}

nlohmann::json JobService::Environment() {
  nlohmann::json env = {{"acs_version", ServerAcsVersion()},
                        {"runtime", ServerRuntimeVersion()},
                        {"predictors", nlohmann::json::object()},
                        {"workers", nlohmann::json::array()}};
  StatusOr<std::vector<DeviceView>> devices = p_.farm->Devices();
  if (!devices.ok()) return env;
  for (const DeviceView& d : *devices) {
    const nlohmann::json dc = nlohmann::json::parse(d.worker.device_json, nullptr, false);
    auto text = [&](const char* k) {
      return dc.is_object() && dc.contains(k) && dc[k].is_string() ? dc[k].get<std::string>() : std::string();
    };
    env["workers"].push_back({{"id", d.worker.id},
                              {"name", d.worker.name},
                              {"device_class", d.worker.machine_id},
                              {"version", d.worker.version},
                              {"cpu_model", text("cpu_model")},
                              {"isa", text("isa")},
                              {"runtime", text("runtime_version")},
                              {"online", d.online}});
    if (!env["predictors"].contains(d.worker.machine_id)) {
      StatusOr<PredictorState> p = p_.measurement_campaigns->Poll(d.worker.machine_id);
      env["predictors"][d.worker.machine_id] = p.ok() ? p->version : 0;
    }
  }
  return env;
}

}  // namespace acs::server
