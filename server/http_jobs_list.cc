#include "server/http_jobs_list.h"

#include <functional>
#include <sstream>
#include <string_view>

#include "proto/acs.pb.h"
#include "server/acs_messages.h"
#include "server/proto_json_writer.h"

namespace acs::server {
namespace {

// The fields of a job in a list's summary view (the dashboard's jobs table): paths of Job
// for AppendProtoJson.
const JsonFieldPaths& JobSummaryFields() {
  static const JsonFieldPaths paths = [] {
    JsonFieldPaths p;
    std::istringstream fields(
        "id owner state request.model_sha256 request.input_shape request.dataset_name request.device_class "
        "request.budget request.agent request.episodes episodes_done best_accuracy exported_accuracy test_accuracy "
        "test_samples best_predicted_latency_us dense_predicted_latency_us best_measured_latency_us "
        "dense_measured_latency_us created artifacts.name");
    for (std::string f; fields >> f;) p.insert(f);
    return p;
  }();
  return paths;
}

// A hash of everything FillJob reads from the record (not the checkpoint: lists leave it out).
uint64_t RecordHash(const JobRecord& j) {
  uint64_t h = 0;
  for (const std::string* s :
       {&j.id, &j.owner, &j.state, &j.request_json, &j.progress_json, &j.error, &j.created, &j.updated}) {
    h = h * 1000003u ^ std::hash<std::string_view>{}(*s);
    h = h * 1000003u ^ s->size();
  }
  return h;
}

}  // namespace

StatusOr<std::string> JobListWriter::Json(const JobPage& page, bool summary) {
  std::string json;
  if (!summary) {
    acs::v1::ListJobsReply reply;
    for (const JobRecord& j : page.jobs) FillJob(j, reply.add_jobs());
    reply.set_next_page_token(page.next_page_token);
    json.reserve(page.jobs.size() * 1400 + 64);
    ACS_RETURN_IF_ERROR(AppendProtoJson(reply, nullptr, &json));
    return json;
  }
  // As AppendProtoJson writes a ListJobsReply: its fields in their order, every one present.
  json.reserve(page.jobs.size() * 700 + 64);
  json.append("{\"jobs\":[");
  for (size_t i = 0; i < page.jobs.size(); ++i) {
    if (i > 0) json.push_back(',');
    ACS_ASSIGN_OR_RETURN(std::string job, SummaryOf(page.jobs[i]));
    json.append(job);
  }
  json.append("],\"next_page_token\":");
  proto_json_internal::AppendQuoted(page.next_page_token, &json);
  json.push_back('}');
  return json;
}

StatusOr<std::string> JobListWriter::SummaryOf(const JobRecord& job) {
  const uint64_t hash = RecordHash(job);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = kept_.find(job.id);
    if (it != kept_.end() && it->second.record_hash == hash) return it->second.json;
  }
  acs::v1::Job message;
  FillJob(job, &message);
  std::string json;
  ACS_RETURN_IF_ERROR(AppendProtoJson(message, &JobSummaryFields(), &json));
  std::lock_guard<std::mutex> lock(mu_);
  if (kept_.size() >= max_kept_ && !kept_.count(job.id)) kept_.clear();
  kept_[job.id] = Kept{hash, json};
  return json;
}

size_t JobListWriter::kept() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kept_.size();
}

}  // namespace acs::server
