// The server's side of the job channel (server/job_channel.h): each call of a child
// checked against the job the server started it for, then applied.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "core/kernel_spec.h"
#include "core/policy.h"
#include "server/job_channel.h"
#include "server/job_channel_codec.h"

namespace acs::server {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace channel;  // NOLINT(build/namespaces): the channel's encoding, internal to its sources

namespace {

// An answer frame's map: the operation's status, and its value when it succeeded.
json Answer(const Status& s, json value = json()) {
  json a = {{"code", static_cast<int>(s.code())}, {"message", s.message()}};
  if (s.ok()) a["value"] = std::move(value);
  return a;
}

bool IsKnownState(const std::string& s) {
  for (const char* k : {kJobQueued, kJobPreparing, kJobSearching, kJobVerifying, kJobSucceeded, kJobBudgetNotMet,
                        kJobFailed, kJobCancelled}) {
    if (s == k) return true;
  }
  return false;
}

// A regular file of one link under `dir` (no symbolic link in any component, nothing
// outside dir by its resolved path): its descriptor, to be closed by the caller, and size.
struct OwnFile {
  int fd = -1;
  int64_t size = 0;
};
OwnFile OpenOwnFile(const std::string& dir, const std::string& path) {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(dir, ec);
  const fs::path parent = fs::weakly_canonical(fs::path(path).parent_path(), ec);
  const std::string r = root.string() + "/", p = parent.string() + "/";
  if (ec || fs::path(path).is_relative() || p.compare(0, r.size(), r) != 0) {
    throw Violation("the file '" + path + "' is not in the job's own directory");
  }
  // Opened beneath the job's directory with no symlink in any component, so a directory
  // swapped for a link after the check above leads nowhere (openat2, Linux 5.6).
  const int root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) throw Violation("cannot open the job's directory: " + std::string(std::strerror(errno)));
  const std::string rel = (parent / fs::path(path).filename()).lexically_relative(root).string();
  struct open_how how {};
  how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const int fd = static_cast<int>(syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
  const int open_errno = errno;
  close(root_fd);
  if (fd < 0) throw Violation("cannot open '" + path + "' beneath the job's directory: " + std::strerror(open_errno));
  struct stat st {};
  // One link only: not another file of the server's hard-linked into the job's directory.
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    close(fd);
    throw Violation("'" + path + "' is not a regular file with one link");
  }
  return {fd, static_cast<int64_t>(st.st_size)};
}

// Blobs a child may read back over the channel (its report) at most.
constexpr int64_t kMaxReadBlobBytes = 256 << 20;

}  // namespace

JobChannelServer::JobChannelServer(std::string job_id, JobRequest request, std::string job_dir, JobHost* host,
                                   predictors::MeasurementStore* measurements, MeasurementCampaignOptions campaign)
    : job_id_(std::move(job_id)),
      request_(std::move(request)),
      job_dir_(std::move(job_dir)),
      host_(host),
      measurements_(measurements),
      campaign_(std::move(campaign)) {
  for (const std::string* sha : {&request_.model_sha256, &request_.dataset_sha256, &request_.test_dataset_sha256}) {
    if (!sha->empty()) readable_blobs_.insert(*sha);
  }
  // The job as its runner starts: the server changes the death count only while no runner
  // runs, the time run only then and here (GuardProgress), the artifacts only through this
  // channel.
  if (job_id_.empty()) return;
  if (StatusOr<JobRecord> job = host_->GetJob(job_id_); job.ok()) {
    const JobProgress stored = JobProgress::FromJson(job->progress_json);
    runner_deaths_ = stored.runner_deaths;
    run_time_ = JobRunTime(stored.run_seconds, job->progress_json);
    for (const ArtifactRef& a : stored.artifacts) readable_blobs_.insert(a.sha256);
  }
}

std::string JobChannelServer::GuardProgress(const std::string& progress_json) {
  json progress = json::parse(progress_json, nullptr, false);
  if (!progress.is_object()) throw Violation("the progress is not a JSON object");
  progress["runner_deaths"] = runner_deaths_;
  progress["run_seconds"] = run_time_.Seconds();
  if (progress.contains("artifacts")) {
    if (!progress["artifacts"].is_array()) throw Violation("the progress's artifacts are not a list");
    for (const json& a : progress["artifacts"]) {
      const std::string sha = a.is_object() ? a.value("sha256", std::string()) : std::string();
      if (!readable_blobs_.count(sha)) throw Violation("an artifact of blob '" + sha.substr(0, 12) + "' not its job's");
    }
  }
  std::string guarded = progress.dump();
  run_time_.Wrote(guarded);
  return guarded;
}

Status JobChannelServer::PersistRunTime() {
  if (job_id_.empty()) return Status::Ok();
  std::optional<std::string> progress = run_time_.Due();
  return progress ? host_->UpdateJobProgress(job_id_, *progress) : Status::Ok();
}

void JobChannelServer::CheckOwnJob(const std::string& id) const {
  if (job_id_.empty()) throw Violation("a model check has no job");
  if (id != job_id_) throw Violation("it asked about job '" + id.substr(0, 64) + "', not its own " + job_id_);
}

StatusOr<std::string> JobChannelServer::Handle(const std::string& frame) {
  if (frame.size() > kMaxChildMessageBytes) {
    return Status::InvalidArgument("a message of " + std::to_string(frame.size()) + " bytes, past the limit of " +
                                   std::to_string(kMaxChildMessageBytes));
  }
  const json message = ParseFrame(frame);
  if (message.is_discarded() || !message.is_object() || !message.contains("op") || !message["op"].is_string() ||
      !message.contains("args") || !message["args"].is_object()) {
    return Status::InvalidArgument("a message that is not a call (" + std::to_string(frame.size()) + " bytes)");
  }
  const std::string op = message["op"].get<std::string>();
  json answer;
  try {
    answer = Apply(op, message["args"]);
  } catch (const Violation& v) {
    return Status::PermissionDenied(op.substr(0, 40) + ": " + v.what());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(op.substr(0, 40) + ": malformed arguments (" + e.what() + ")");
  }
  ++calls_;
  const std::vector<uint8_t> packed = json::to_msgpack(answer);
  return std::string(packed.begin(), packed.end());
}

json JobChannelServer::Apply(const std::string& op, const json& args) {
  // Calls a check-job child may make: reading the farm's devices and predictors.
  if (std::optional<json> a = ApplyFarmRead(op, args)) return *a;
  if (job_id_.empty()) throw Violation("a model check may not call '" + op.substr(0, 40) + "'");
  // A job runner's calls, each about its own job.
  for (auto apply : {&JobChannelServer::ApplyJobRecord, &JobChannelServer::ApplyTask, &JobChannelServer::ApplyCampaign,
                     &JobChannelServer::ApplyModels, &JobChannelServer::ApplyBlob}) {
    if (std::optional<json> a = (this->*apply)(op, args)) return *a;
  }
  throw Violation("unknown operation '" + op.substr(0, 40) + "'");
}

std::optional<json> JobChannelServer::ApplyFarmRead(const std::string& op, const json& args) {
  if (op == "devices") {
    StatusOr<std::vector<DeviceView>> devices = host_->Devices();
    if (!devices.ok()) return Answer(devices.status());
    json out = json::array();
    for (const DeviceView& d : *devices) {
      out.push_back({{"id", d.worker.id},
                     {"name", d.worker.name},
                     {"machine_id", d.worker.machine_id},
                     {"device_json", d.worker.device_json},
                     {"version", d.worker.version},
                     {"last_seen_ms", d.worker.last_seen_ms},
                     {"online", d.online}});
    }
    return Answer(Status::Ok(), out);
  }
  if (op == "latest_predictor") {
    StatusOr<std::optional<predictors::PredictorRecord>> p =
        measurements_->LatestPredictor(Str(args, "device_class"), Str(args, "name"));
    if (!p.ok()) return Answer(p.status());
    return Answer(Status::Ok(), *p ? PredictorToJson(**p) : json());
  }
  if (op == "device") {
    StatusOr<std::optional<std::string>> d = measurements_->Device(Str(args, "device_class"));
    if (!d.ok()) return Answer(d.status());
    return Answer(Status::Ok(), *d ? json(**d) : json());
  }
  return std::nullopt;
}

std::optional<json> JobChannelServer::ApplyJobRecord(const std::string& op, const json& args) {
  if (op == "get_job") {
    CheckOwnJob(Str(args, "id"));
    StatusOr<JobRecord> job = host_->GetJob(job_id_);
    return job.ok() ? Answer(Status::Ok(), JobToJson(*job)) : Answer(job.status());
  }
  if (op == "update_job") {
    JobRecord job = JobFromJson(Arg(args, "job"));
    CheckOwnJob(job.id);
    if (!IsKnownState(job.state)) throw Violation("unknown job state '" + job.state.substr(0, 40) + "'");
    CheckJsonText(job.progress_json, "the progress");
    job.progress_json = GuardProgress(job.progress_json);
    return Answer(host_->UpdateJob(job));
  }
  if (op == "update_progress") {
    CheckOwnJob(Str(args, "id"));
    const std::string progress = Str(args, "progress_json");
    CheckJsonText(progress, "the progress");
    return Answer(host_->UpdateJobProgress(job_id_, GuardProgress(progress)));
  }
  if (op == "add_event") {
    CheckOwnJob(Str(args, "id"));
    const std::string kind = Str(args, "kind"), text = Str(args, "json");
    if (kind != "state" && kind != "episode" && kind != "verified") {
      throw Violation("unknown event kind '" + kind.substr(0, 40) + "'");
    }
    CheckJsonText(text, "the event");
    StatusOr<int64_t> seq = host_->AddEvent(job_id_, kind, text);
    return seq.ok() ? Answer(Status::Ok(), *seq) : Answer(seq.status());
  }
  if (op == "put_episodes") {
    CheckOwnJob(Str(args, "id"));
    const int64_t first = Int(args, "first_seq", 0, 100000000);
    const json& rows = Arg(args, "rows");
    if (!rows.is_array()) throw Violation("argument 'rows' is not a list");
    std::vector<std::string> texts;
    for (const json& r : rows) {
      if (!r.is_string()) throw Violation("an episode row is not a string");
      CheckJsonText(r.get<std::string>(), "an episode row");
      texts.push_back(r.get<std::string>());
    }
    return Answer(host_->PutJobEpisodes(job_id_, first, texts));
  }
  if (op == "episodes") {
    CheckOwnJob(Str(args, "id"));
    StatusOr<std::vector<std::string>> rows = host_->JobEpisodes(job_id_, Int(args, "limit", 0, INT64_MAX));
    return rows.ok() ? Answer(Status::Ok(), *rows) : Answer(rows.status());
  }
  if (op == "truncate_episodes") {
    CheckOwnJob(Str(args, "id"));
    StatusOr<int64_t> n = host_->TruncateJobEpisodes(job_id_, Int(args, "first_seq", 0, INT64_MAX));
    return n.ok() ? Answer(Status::Ok(), *n) : Answer(n.status());
  }
  return std::nullopt;
}

std::optional<json> JobChannelServer::ApplyTask(const std::string& op, const json& args) {
  if (op == "enqueue_task") {
    TaskRecord task = TaskFromJson(Arg(args, "task"));
    CheckOwnJob(task.job_id);
    if (task.kind != kTaskMeasureModel) throw Violation("a job enqueues only measure-model tasks");
    if (task.machine_id != request_.device_class) {
      throw Violation("a task for device class '" + task.machine_id.substr(0, 64) + "', not the job's '" +
                      request_.device_class + "'");
    }
    const json spec = json::parse(task.spec_json, nullptr, false);
    if (!spec.is_object() || spec.value("model_sha256", std::string()) != request_.model_sha256) {
      throw Violation("a task that does not measure the job's own model");
    }
    TaskRecord t;  // only what a job chooses; the store sets the rest
    t.job_id = job_id_;
    t.kind = task.kind;
    t.machine_id = task.machine_id;
    t.spec_json = task.spec_json;
    StatusOr<TaskRecord> stored = host_->EnqueueTask(t);
    return stored.ok() ? Answer(Status::Ok(), TaskToJson(*stored)) : Answer(stored.status());
  }
  if (op == "get_task") {
    StatusOr<TaskRecord> task = host_->GetTask(Str(args, "id"));
    if (!task.ok()) return Answer(task.status());
    if (task->job_id != job_id_) throw Violation("it asked for task " + task->id + " of another job");
    return Answer(Status::Ok(), TaskToJson(*task));
  }
  if (op == "tasks_of_job") {
    CheckOwnJob(Str(args, "id"));
    StatusOr<std::vector<TaskRecord>> tasks = host_->TasksOfJob(job_id_);
    if (!tasks.ok()) return Answer(tasks.status());
    json out = json::array();
    for (const TaskRecord& t : *tasks) out.push_back(TaskToJson(t));
    return Answer(Status::Ok(), out);
  }
  if (op == "fail_open_tasks") {
    CheckOwnJob(Str(args, "id"));
    StatusOr<int> n = host_->FailOpenTasksOfJob(job_id_, Str(args, "error"));
    return n.ok() ? Answer(Status::Ok(), *n) : Answer(n.status());
  }
  return std::nullopt;
}

std::optional<json> JobChannelServer::ApplyCampaign(const std::string& op, const json& args) {
  if (op == "poll_campaign" || op == "start_campaign") {
    const std::string machine = Str(args, "machine_id");
    if (machine != request_.device_class) {
      throw Violation("a measurement campaign of device class '" + machine.substr(0, 64) + "', not the job's '" +
                      request_.device_class + "'");
    }
    if (op == "poll_campaign") {
      StatusOr<PredictorState> s = host_->PollCampaign(machine);
      return s.ok() ? Answer(Status::Ok(), StateToJson(*s)) : Answer(s.status());
    }
    MeasurementCampaignOptions o = campaign_;
    const int64_t samples = Int(args, "samples", 0, INT32_MAX), heldout = Int(args, "heldout", 0, INT32_MAX);
    if ((samples != 0 && samples != campaign_.samples) || (heldout != 0 && heldout != campaign_.heldout)) {
      throw Violation("a campaign of other sizes than the server's");
    }
    o.samples = static_cast<int>(samples);
    o.heldout = static_cast<int>(heldout);
    o.specs_source = Str(args, "specs_source");
    if (o.specs_source != "job" && o.specs_source != "verified") throw Violation("an unknown specs source");
    const json& specs = Arg(args, "specs");
    if (!specs.is_array() || specs.size() > 100000) throw Violation("argument 'specs' is not a list of kernels");
    o.specs.clear();
    for (const json& j : specs) {
      StatusOr<KernelSpec> s = ParseKernelSpec(j);
      if (!s.ok()) throw Violation("a kernel spec: " + s.status().message());
      o.specs.push_back(*s);
    }
    StatusOr<PredictorState> s = host_->StartCampaign(machine, o);
    return s.ok() ? Answer(Status::Ok(), StateToJson(*s)) : Answer(s.status());
  }
  return std::nullopt;
}

std::optional<json> JobChannelServer::ApplyModels(const std::string& op, const json& args) {
  if (op == "models" || op == "add_model") {
    if (op == "models") {
      // Only the measurements of this job's model (EarlierMeasuredPolicies), looked up by it.
      if (Str(args, "device_class") != request_.device_class) throw Violation("models of another device class");
      if (args.contains("model_sha256") && Str(args, "model_sha256") != request_.model_sha256) {
        throw Violation("measurements of another model");
      }
      StatusOr<std::vector<predictors::ModelRecord>> records =
          measurements_->ModelsOfModel(request_.device_class, request_.model_sha256);
      if (!records.ok()) return Answer(records.status());
      json out = json::array();
      for (const predictors::ModelRecord& r : *records) out.push_back(ModelToJson(r));
      return Answer(Status::Ok(), out);
    }
    return AddTaskMeasurement(ModelFromJson(Arg(args, "record")));
  }
  return std::nullopt;
}

json JobChannelServer::AddTaskMeasurement(const predictors::ModelRecord& sent) {
  const json sent_json = json::parse(sent.record_json, nullptr, false);
  if (sent.device_class != request_.device_class || !sent_json.is_object() || !sent_json.contains("job")) {
    throw Violation("a model measurement that is not of this job's model and device class");
  }
  json sent_result = sent_json;
  sent_result.erase("job");
  StatusOr<std::vector<TaskRecord>> tasks = host_->TasksOfJob(job_id_);
  if (!tasks.ok()) return Answer(tasks.status());
  // The measurement of a finished task of this job, as the server stored its result: of
  // what the predictor trains on, only the layers are the child's (it imports the model).
  for (const TaskRecord& t : *tasks) {
    if (t.state != kTaskDone || t.kind != kTaskMeasureModel) continue;
    const json result = json::parse(t.result_json, nullptr, false), spec = json::parse(t.spec_json, nullptr, false);
    if (result != sent_result || !spec.is_object() || !result.contains("runtime") || !result["runtime"].is_object() ||
        spec.value("policy_hash", std::string()) != sent.policy_hash ||
        spec.value("model_sha256", std::string()) != request_.model_sha256 ||
        spec.value("threads", -1) != sent.shape.threads || !spec.contains("policy")) {
      continue;
    }
    predictors::ModelRecord r = sent;
    r.model = "model-" + request_.model_sha256.substr(0, 12);
    StatusOr<Policy> policy = Policy::FromJson(spec["policy"].dump()), claimed = Policy::FromJson(sent.policy_json);
    if (!policy.ok() || !claimed.ok() || policy->ToJson(-1) != claimed->ToJson(-1)) continue;
    r.policy_json = policy->ToJson(-1);
    r.median_us = result["runtime"].value("median_us", 0.0);
    r.iqr_us = result["runtime"].value("iqr_us", 0.0);
    r.min_us = result["runtime"].value("min_us", 0.0);
    if (r.median_us != sent.median_us || r.iqr_us != sent.iqr_us || r.min_us != sent.min_us) continue;
    json record = result;
    record["job"] = {{"model_sha256", request_.model_sha256}, {"input_shape", request_.input_shape}, {"task", t.id}};
    r.record_json = record.dump();
    // Once per task: a runner resumed after recording it gets the stored record's id.
    StatusOr<std::optional<predictors::ModelRecord>> stored = measurements_->ModelOfTask(request_.device_class, t.id);
    if (!stored.ok()) return Answer(stored.status());
    if (*stored) return Answer(Status::Ok(), (*stored)->id);
    Status s = measurements_->AddModel(r);
    return s.ok() ? Answer(s, r.id) : Answer(s);
  }
  throw Violation("a model measurement that matches no finished measure-model task of this job (policy " +
                  sent.policy_hash.substr(0, 16) + ", " + std::to_string(sent.median_us) + " us)");
}

std::optional<json> JobChannelServer::ApplyBlob(const std::string& op, const json& args) {
  if (op == "put_blob_file") {
    CheckOwnJob(Str(args, "id"));
    const std::string path = Str(args, "path");
    const OwnFile file = OpenOwnFile(job_dir_, path);
    // Streamed from the descriptor in bounded chunks: the file may be sparse or still
    // growing, so its size is checked before and while it is read.
    StatusOr<BlobWriter::Committed> put = file.size > max_export_bytes_
                                              ? StatusOr<BlobWriter::Committed>(Status::ResourceExhausted(""))
                                              : host_->PutBlobFromFd(job_id_, file.fd, max_export_bytes_);
    close(file.fd);
    if (!put.ok() && put.status().code() == StatusCode::kResourceExhausted) {
      return Answer(Status::ResourceExhausted("the export '" + path + "' is larger than a job's artifact may be (" +
                                              std::to_string(max_export_bytes_) + " bytes); nothing was stored"));
    }
    if (!put.ok()) return Answer(put.status());
    readable_blobs_.insert(put->sha256);
    return Answer(Status::Ok(), CommittedToJson(*put));
  }
  if (op == "read_blob") {
    const std::string sha = Str(args, "sha256");
    if (!readable_blobs_.count(sha)) {
      throw Violation("it asked for blob " + sha.substr(0, 12) + ", not one of its job's");
    }
    StatusOr<std::string> bytes = host_->ReadBlob(sha);
    if (bytes.ok() && static_cast<int64_t>(bytes->size()) > kMaxReadBlobBytes) {
      return Answer(Status::ResourceExhausted("blob " + sha.substr(0, 12) + " is too large to send to a job runner"));
    }
    return bytes.ok() ? Answer(Status::Ok(), *bytes) : Answer(bytes.status());
  }
  return std::nullopt;
}

}  // namespace acs::server
