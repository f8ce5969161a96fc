// The JSON of a job list page as GET /api/v1/jobs answers it: ListJobsReply's value as
// AppendProtoJson writes it, whole jobs or (summary) the dashboard's jobs-table fields
// only. A summary job's JSON is kept by job id with a hash of its stored record, so a job
// unchanged since an earlier list (most of a long list: the ended jobs, asked again at
// each refresh of the jobs page) is copied, not parsed and written again. A page's answer
// gzipped is kept by its JSON, so the same page asked again is not compressed again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "server/job_service.h"

namespace acs::server {

class JobListWriter {
 public:
  // Keeps at most `max_kept` jobs' JSON (all forgotten when full; about 0.8 KB a job).
  // Keeps gzipped pages of at most `max_gzip_bytes` (their JSON and its gzip; all forgotten
  // when full).
  explicit JobListWriter(size_t max_kept = 50000, size_t max_gzip_bytes = size_t{64} << 20)
      : max_kept_(max_kept), max_gzip_bytes_(max_gzip_bytes) {}

  // The page as JSON (no trailing newline). Thread-safe.
  StatusOr<std::string> Json(const JobPage& page, bool summary);
  // The answer's body: Json and a newline, gzipped (RFC 1952, for Content-Encoding: gzip)
  // when `gzip`. Thread-safe.
  StatusOr<std::string> Body(const JobPage& page, bool summary, bool gzip);
  // How many jobs' JSON is kept.
  size_t kept() const;
  // How many gzipped pages are kept.
  size_t kept_gzipped() const;

 private:
  struct Kept {
    uint64_t record_hash = 0;
    std::string json;
  };
  struct Gzipped {
    std::string json;
    std::string gzip;
  };
  StatusOr<std::string> SummaryOf(const JobRecord& job);

  const size_t max_kept_;
  const size_t max_gzip_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Kept> kept_;     // by job id
  std::unordered_map<uint64_t, Gzipped> gzipped_;  // by a hash of the JSON
  size_t gzipped_bytes_ = 0;                       // of gzipped_'s strings
};

}  // namespace acs::server
