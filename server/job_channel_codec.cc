#include "server/job_channel_codec.h"

#include "core/kernel_spec.h"

namespace acs::server::channel {

namespace {

// Counts nesting and stops the reader past `max` levels; accepts every value otherwise.
class DepthLimit final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit DepthLimit(int max) : max_(max) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth_ <= max_; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return --depth_ >= 0; }
  bool start_array(std::size_t) override { return ++depth_ <= max_; }
  bool end_array() override { return --depth_ >= 0; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  int max_;
  int depth_ = 0;
};

}  // namespace

nlohmann::json ParseFrame(const std::string& frame, int max_depth) {
  try {
    DepthLimit limit(max_depth);
    if (!nlohmann::json::sax_parse(frame, &limit, nlohmann::json::input_format_t::msgpack, true, false)) {
      return nlohmann::json(nlohmann::json::value_t::discarded);
    }
    return nlohmann::json::from_msgpack(frame, true, false);
  } catch (const std::exception&) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}
using nlohmann::json;

const json& Arg(const json& args, const char* key) {
  if (!args.is_object() || !args.contains(key)) throw Violation(std::string("argument '") + key + "' is missing");
  return args[key];
}
std::string Str(const json& args, const char* key) {
  const json& v = Arg(args, key);
  if (!v.is_string()) throw Violation(std::string("argument '") + key + "' is not a string");
  return v.get<std::string>();
}
int64_t Int(const json& args, const char* key, int64_t lo, int64_t hi) {
  const json& v = Arg(args, key);
  if (!v.is_number_integer()) throw Violation(std::string("argument '") + key + "' is not an integer");
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) throw Violation(std::string("argument '") + key + "' is out of range");
  return i;
}
// A string field that must hold JSON text.
void CheckJsonText(const std::string& text, const char* what) {
  if (json::parse(text, nullptr, false).is_discarded()) throw Violation(std::string(what) + " is not JSON");
}

json JobToJson(const JobRecord& j) {
  return {{"id", j.id},
          {"owner", j.owner},
          {"state", j.state},
          {"request_json", j.request_json},
          {"progress_json", j.progress_json},
          {"checkpoint", j.checkpoint},
          {"error", j.error},
          {"created", j.created},
          {"updated", j.updated}};
}
JobRecord JobFromJson(const json& j) {
  JobRecord r;
  r.id = Str(j, "id");
  r.owner = Str(j, "owner");
  r.state = Str(j, "state");
  r.request_json = Str(j, "request_json");
  r.progress_json = Str(j, "progress_json");
  r.checkpoint = Str(j, "checkpoint");
  r.error = Str(j, "error");
  r.created = Str(j, "created");
  r.updated = Str(j, "updated");
  return r;
}

json TaskToJson(const TaskRecord& t) {
  return {{"id", t.id},
          {"job_id", t.job_id},
          {"kind", t.kind},
          {"machine_id", t.machine_id},
          {"spec_json", t.spec_json},
          {"state", t.state},
          {"worker_id", t.worker_id},
          {"lease_expires_ms", t.lease_expires_ms},
          {"attempts", t.attempts},
          {"result_json", t.result_json},
          {"error", t.error}};
}
TaskRecord TaskFromJson(const json& j) {
  TaskRecord t;
  t.id = Str(j, "id");
  t.job_id = Str(j, "job_id");
  t.kind = Str(j, "kind");
  t.machine_id = Str(j, "machine_id");
  t.spec_json = Str(j, "spec_json");
  t.state = Str(j, "state");
  t.worker_id = Str(j, "worker_id");
  t.lease_expires_ms = Int(j, "lease_expires_ms", INT64_MIN, INT64_MAX);
  t.attempts = static_cast<int>(Int(j, "attempts", 0, INT32_MAX));
  t.result_json = Str(j, "result_json");
  t.error = Str(j, "error");
  return t;
}

json StateToJson(const PredictorState& s) {
  return {{"machine_id", s.machine_id},
          {"state", s.state},
          {"version", s.version},
          {"tasks_total", s.tasks_total},
          {"tasks_done", s.tasks_done},
          {"tasks_failed", s.tasks_failed},
          {"kernel_measurements", s.kernel_measurements},
          {"heldout_within10", s.heldout_within10},
          {"repeated_kernels", s.repeated_kernels},
          {"repeat_within10", s.repeat_within10},
          {"error", s.error}};
}
PredictorState StateFromJson(const json& j) {
  PredictorState s;
  s.machine_id = Str(j, "machine_id");
  s.state = Str(j, "state");
  s.version = Int(j, "version", 0, INT64_MAX);
  s.tasks_total = static_cast<int>(Int(j, "tasks_total", 0, INT32_MAX));
  s.tasks_done = static_cast<int>(Int(j, "tasks_done", 0, INT32_MAX));
  s.tasks_failed = static_cast<int>(Int(j, "tasks_failed", 0, INT32_MAX));
  s.kernel_measurements = Int(j, "kernel_measurements", 0, INT64_MAX);
  s.heldout_within10 = j.at("heldout_within10").get<double>();
  s.repeated_kernels = Int(j, "repeated_kernels", 0, INT64_MAX);
  s.repeat_within10 = j.at("repeat_within10").get<double>();
  s.error = Str(j, "error");
  return s;
}

json ModelToJson(const predictors::ModelRecord& r) {
  json layers = json::array();
  for (const KernelSpec& s : r.shape.layers) layers.push_back(s.ToJson());
  return {{"id", r.id},
          {"device_class", r.device_class},
          {"model", r.model},
          {"policy_hash", r.policy_hash},
          {"policy_json", r.policy_json},
          {"layers", layers},
          {"other_ops", r.shape.other_ops},
          {"other_bytes", r.shape.other_bytes},
          {"threads", r.shape.threads},
          {"median_us", r.median_us},
          {"iqr_us", r.iqr_us},
          {"min_us", r.min_us},
          {"record_json", r.record_json}};
}
predictors::ModelRecord ModelFromJson(const json& j) {
  predictors::ModelRecord r;
  r.id = Int(j, "id", INT64_MIN, INT64_MAX);
  r.device_class = Str(j, "device_class");
  r.model = Str(j, "model");
  r.policy_hash = Str(j, "policy_hash");
  r.policy_json = Str(j, "policy_json");
  const json& layers = Arg(j, "layers");
  if (!layers.is_array() || layers.size() > 100000) throw Violation("argument 'layers' is not a list of kernels");
  for (const json& l : layers) {
    StatusOr<KernelSpec> s = ParseKernelSpec(l);
    if (!s.ok()) throw Violation("a layer: " + s.status().message());
    r.shape.layers.push_back(*s);
  }
  r.shape.other_ops = j.at("other_ops").get<double>();
  r.shape.other_bytes = j.at("other_bytes").get<double>();
  r.shape.threads = static_cast<int>(Int(j, "threads", 1, 4096));
  r.median_us = j.at("median_us").get<double>();
  r.iqr_us = j.at("iqr_us").get<double>();
  r.min_us = j.at("min_us").get<double>();
  r.record_json = Str(j, "record_json");
  return r;
}

json PredictorToJson(const predictors::PredictorRecord& r) {
  return {{"version", r.version},           {"device_class", r.device_class}, {"name", r.name},      {"blob", r.blob},
          {"metrics_json", r.metrics_json}, {"measurements", r.measurements}, {"created", r.created}};
}
predictors::PredictorRecord PredictorFromJson(const json& j) {
  predictors::PredictorRecord r;
  r.version = Int(j, "version", 0, INT64_MAX);
  r.device_class = Str(j, "device_class");
  r.name = Str(j, "name");
  r.blob = Str(j, "blob");
  r.metrics_json = Str(j, "metrics_json");
  r.measurements = Int(j, "measurements", 0, INT64_MAX);
  r.created = Str(j, "created");
  return r;
}

json CommittedToJson(const BlobWriter::Committed& c) {
  return {{"sha256", c.sha256}, {"bytes", c.bytes}, {"deduplicated", c.deduplicated}};
}
BlobWriter::Committed CommittedFromJson(const json& j) {
  BlobWriter::Committed c;
  c.sha256 = Str(j, "sha256");
  c.bytes = Int(j, "bytes", 0, INT64_MAX);
  c.deduplicated = j.at("deduplicated").get<bool>();
  return c;
}

}  // namespace acs::server::channel
