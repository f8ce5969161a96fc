// The JSON of a job list page as GET /api/v1/jobs answers it: ListJobsReply's value as
// AppendProtoJson writes it, whole jobs or (summary) the dashboard's jobs-table fields
// only. A summary job's JSON is kept by job id with a hash of its stored record, so a job
// unchanged since an earlier list (most of a long list: the ended jobs, asked again at
// each refresh of the jobs page) is copied, not parsed and written again.
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
  explicit JobListWriter(size_t max_kept = 50000) : max_kept_(max_kept) {}

  // The page as JSON (no trailing newline). Thread-safe.
  StatusOr<std::string> Json(const JobPage& page, bool summary);
  // How many jobs' JSON is kept.
  size_t kept() const;

 private:
  struct Kept {
    uint64_t record_hash = 0;
    std::string json;
  };
  StatusOr<std::string> SummaryOf(const JobRecord& job);

  const size_t max_kept_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Kept> kept_;  // by job id
};

}  // namespace acs::server
