#include "server/http_jobs_list.h"

#include <zlib.h>

#include <climits>
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

// `text` gzipped at zlib's default level.
StatusOr<std::string> GzipOf(const std::string& text) {
  if (text.size() > UINT_MAX / 2) return Status::ResourceExhausted("a job list page too large to compress");
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("zlib: cannot start a gzip stream");
  }
  std::string out(deflateBound(&z, static_cast<uLong>(text.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Status::Internal("zlib: cannot gzip a job list page");
  return out;
}

}  // namespace

StatusOr<std::string> JobListWriter::Body(const JobPage& page, bool summary, bool gzip) {
  ACS_ASSIGN_OR_RETURN(std::string json, Json(page, summary));
  json.push_back('\n');
  if (!gzip) return json;
  const uint64_t hash = std::hash<std::string_view>{}(json);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = gzipped_.find(hash);
    if (it != gzipped_.end() && it->second.json == json) return it->second.gzip;
  }
  ACS_ASSIGN_OR_RETURN(std::string packed, GzipOf(json));
  const size_t bytes = json.size() + packed.size();
  if (bytes > max_gzip_bytes_) return packed;
  std::lock_guard<std::mutex> lock(mu_);
  if (gzipped_bytes_ + bytes > max_gzip_bytes_) {
    gzipped_.clear();
    gzipped_bytes_ = 0;
  }
  auto [it, added] = gzipped_.try_emplace(hash);
  if (added) {  // else another request kept this page, or a page of the same hash is kept
    it->second = Gzipped{std::move(json), packed};
    gzipped_bytes_ += bytes;
  }
  return packed;
}

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

size_t JobListWriter::kept_gzipped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gzipped_.size();
}

}  // namespace acs::server
