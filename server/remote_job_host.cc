// The child's side of the job channel (server/job_channel.h): each JobHost and
// MeasurementStore call as one message to the server.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/kernel_spec.h"
#include "server/job_channel.h"
#include "server/job_channel_codec.h"

namespace acs::server {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace channel;  // NOLINT(build/namespaces): the channel's encoding, internal to its sources

namespace {

// Runs `decode` on a call's value; a malformed answer is Internal.
template <typename T, typename F>
StatusOr<T> Decoded(const StatusOr<json>& value, F decode) {
  if (!value.ok()) return value.status();
  try {
    return decode(*value);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("the server's answer on the job channel is malformed: ") + e.what());
  }
}

// The records of a models answer.
std::vector<predictors::ModelRecord> ModelsFromJson(const json& v) {
  std::vector<predictors::ModelRecord> out;
  for (const json& r : v) out.push_back(ModelFromJson(r));
  return out;
}

}  // namespace

RemoteJobHost::~RemoteJobHost() {
  if (fd_ >= 0) close(fd_);
}

StatusOr<json> RemoteJobHost::Call(const std::string& op, json args) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return Status::Unavailable("this job runner has no channel to the server");
  std::vector<uint8_t> packed = json::to_msgpack(json{{"op", op}, {"args", std::move(args)}});
  const std::string request(packed.begin(), packed.end());
  if (request.size() > kMaxChildMessageBytes) {
    return Status::ResourceExhausted("a " + op + " call of " + std::to_string(request.size()) +
                                     " bytes is past the job channel's limit of " +
                                     std::to_string(kMaxChildMessageBytes));
  }
  Status s = WriteFrame(fd_, request, -1);
  std::string answer;
  if (s.ok()) s = ReadFrame(fd_, kMaxServerMessageBytes, -1, &answer);
  if (!s.ok()) return Status::Unavailable("the job channel to the server broke during " + op + ": " + s.message());
  const json reply = json::from_msgpack(answer, true, false);
  if (!reply.is_object() || !reply.contains("code") || !reply["code"].is_number_integer()) {
    return Status::Internal("the server's answer to " + op + " is malformed");
  }
  const int code = reply["code"].get<int>();
  if (code != 0) {
    return Status(code > 0 && code < kNumStatusCodes ? static_cast<StatusCode>(code) : StatusCode::kInternal,
                  reply.value("message", std::string("(no message)")));
  }
  return reply.contains("value") ? reply["value"] : json();
}

StatusOr<JobRecord> RemoteJobHost::GetJob(const std::string& id) {
  return Decoded<JobRecord>(Call("get_job", {{"id", id}}), JobFromJson);
}
Status RemoteJobHost::UpdateJob(const JobRecord& job) { return Call("update_job", {{"job", JobToJson(job)}}).status(); }
Status RemoteJobHost::UpdateJobProgress(const std::string& id, const std::string& progress_json) {
  return Call("update_progress", {{"id", id}, {"progress_json", progress_json}}).status();
}
StatusOr<int64_t> RemoteJobHost::AddEvent(const std::string& job_id, const std::string& kind, const std::string& text) {
  return Decoded<int64_t>(Call("add_event", {{"id", job_id}, {"kind", kind}, {"json", text}}),
                          [](const json& v) { return v.get<int64_t>(); });
}
Status RemoteJobHost::PutJobEpisodes(const std::string& job_id, int64_t first_seq,
                                     const std::vector<std::string>& rows) {
  return Call("put_episodes", {{"id", job_id}, {"first_seq", first_seq}, {"rows", rows}}).status();
}
StatusOr<std::vector<std::string>> RemoteJobHost::JobEpisodes(const std::string& job_id, int64_t limit) {
  return Decoded<std::vector<std::string>>(Call("episodes", {{"id", job_id}, {"limit", limit}}),
                                           [](const json& v) { return v.get<std::vector<std::string>>(); });
}
StatusOr<int64_t> RemoteJobHost::TruncateJobEpisodes(const std::string& job_id, int64_t first_seq) {
  return Decoded<int64_t>(Call("truncate_episodes", {{"id", job_id}, {"first_seq", first_seq}}),
                          [](const json& v) { return v.get<int64_t>(); });
}
StatusOr<TaskRecord> RemoteJobHost::EnqueueTask(TaskRecord task) {
  return Decoded<TaskRecord>(Call("enqueue_task", {{"task", TaskToJson(task)}}), TaskFromJson);
}
StatusOr<TaskRecord> RemoteJobHost::GetTask(const std::string& id) {
  return Decoded<TaskRecord>(Call("get_task", {{"id", id}}), TaskFromJson);
}
StatusOr<std::vector<TaskRecord>> RemoteJobHost::TasksOfJob(const std::string& job_id) {
  return Decoded<std::vector<TaskRecord>>(Call("tasks_of_job", {{"id", job_id}}), [](const json& v) {
    std::vector<TaskRecord> out;
    for (const json& t : v) out.push_back(TaskFromJson(t));
    return out;
  });
}
StatusOr<int> RemoteJobHost::FailOpenTasksOfJob(const std::string& job_id, const std::string& error) {
  return Decoded<int>(Call("fail_open_tasks", {{"id", job_id}, {"error", error}}),
                      [](const json& v) { return v.get<int>(); });
}
StatusOr<std::vector<DeviceView>> RemoteJobHost::Devices() {
  return Decoded<std::vector<DeviceView>>(Call("devices", json::object()), [](const json& v) {
    std::vector<DeviceView> out;
    for (const json& d : v) {
      DeviceView view;
      view.worker.id = Str(d, "id");
      view.worker.name = Str(d, "name");
      view.worker.machine_id = Str(d, "machine_id");
      view.worker.device_json = Str(d, "device_json");
      view.worker.version = Str(d, "version");
      view.worker.last_seen_ms = Int(d, "last_seen_ms", INT64_MIN, INT64_MAX);
      view.online = d.at("online").get<bool>();
      out.push_back(std::move(view));
    }
    return out;
  });
}
StatusOr<PredictorState> RemoteJobHost::PollCampaign(const std::string& machine_id) {
  return Decoded<PredictorState>(Call("poll_campaign", {{"machine_id", machine_id}}), StateFromJson);
}
StatusOr<PredictorState> RemoteJobHost::StartCampaign(const std::string& machine_id,
                                                      const MeasurementCampaignOptions& o) {
  json specs = json::array();
  for (const KernelSpec& s : o.specs) specs.push_back(s.ToJson());
  return Decoded<PredictorState>(Call("start_campaign", {{"machine_id", machine_id},
                                                         {"samples", o.samples},
                                                         {"heldout", o.heldout},
                                                         {"specs", specs},
                                                         {"specs_source", o.specs_source}}),
                                 StateFromJson);
}
StatusOr<BlobWriter::Committed> RemoteJobHost::PutBlobFile(const std::string& job_id, const std::string& path) {
  std::error_code ec;
  const std::string absolute = fs::absolute(path, ec).string();
  return Decoded<BlobWriter::Committed>(Call("put_blob_file", {{"id", job_id}, {"path", absolute}}), CommittedFromJson);
}
StatusOr<BlobWriter::Committed> RemoteJobHost::PutBlobFromFd(const std::string&, int, int64_t) {
  return Status::FailedPrecondition("a job runner sends its exports by path (PutBlobFile)");
}
StatusOr<BlobWriter::Committed> RemoteJobHost::PutBlob(const std::string& job_id, const std::string& bytes) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    path = (fs::path(job_dir_) / ("blob-" + std::to_string(++blob_files_))).string();
  }
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) return Status::Unavailable("cannot write '" + path + "' for the blob store");
  }
  StatusOr<BlobWriter::Committed> put = PutBlobFile(job_id, path);
  std::error_code ec;
  fs::remove(path, ec);
  return put;
}
StatusOr<std::string> RemoteJobHost::ReadBlob(const std::string& sha256) {
  return Decoded<std::string>(Call("read_blob", {{"sha256", sha256}}),
                              [](const json& v) { return v.get<std::string>(); });
}

Status RemoteJobHost::AddKernels(std::vector<predictors::KernelRecord>&) {
  return Status::PermissionDenied("a job runner does not add kernel measurements");
}
StatusOr<std::vector<predictors::KernelRecord>> RemoteJobHost::Kernels(const std::string&) {
  return Status::PermissionDenied("a job runner does not read kernel measurements");
}
Status RemoteJobHost::AddModel(predictors::ModelRecord& record) {
  StatusOr<int64_t> id = Decoded<int64_t>(Call("add_model", {{"record", ModelToJson(record)}}),
                                          [](const json& v) { return v.get<int64_t>(); });
  if (!id.ok()) return id.status();
  record.id = *id;
  return Status::Ok();
}
StatusOr<std::vector<predictors::ModelRecord>> RemoteJobHost::Models(const std::string& device_class) {
  return Decoded<std::vector<predictors::ModelRecord>>(Call("models", {{"device_class", device_class}}),
                                                       ModelsFromJson);
}
StatusOr<std::optional<predictors::ModelRecord>> RemoteJobHost::ModelOfTask(const std::string&, const std::string&) {
  return Status::PermissionDenied("a job runner does not look model measurements up by task");
}
StatusOr<std::vector<predictors::ModelRecord>> RemoteJobHost::ModelsOfModel(const std::string& device_class,
                                                                            const std::string& model_sha256) {
  return Decoded<std::vector<predictors::ModelRecord>>(
      Call("models", {{"device_class", device_class}, {"model_sha256", model_sha256}}), ModelsFromJson);
}
StatusOr<int64_t> RemoteJobHost::AddPredictor(const predictors::PredictorRecord&) {
  return Status::PermissionDenied("a job runner does not add predictors");
}
StatusOr<std::optional<predictors::PredictorRecord>> RemoteJobHost::LatestPredictor(const std::string& device_class,
                                                                                    const std::string& name) {
  return Decoded<std::optional<predictors::PredictorRecord>>(
      Call("latest_predictor", {{"device_class", device_class}, {"name", name}}), [](const json& v) {
        return v.is_null() ? std::optional<predictors::PredictorRecord>()
                           : std::optional<predictors::PredictorRecord>(PredictorFromJson(v));
      });
}
Status RemoteJobHost::PutDevice(const std::string&, const std::string&) {
  return Status::PermissionDenied("a job runner does not describe devices");
}
StatusOr<std::optional<std::string>> RemoteJobHost::Device(const std::string& device_class) {
  return Decoded<std::optional<std::string>>(Call("device", {{"device_class", device_class}}), [](const json& v) {
    return v.is_null() ? std::optional<std::string>() : std::optional<std::string>(v.get<std::string>());
  });
}
StatusOr<std::vector<std::string>> RemoteJobHost::DeviceClasses() {
  return Status::PermissionDenied("a job runner does not list device classes");
}

}  // namespace acs::server
