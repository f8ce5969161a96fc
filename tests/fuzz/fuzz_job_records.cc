// Fuzz target: the job records the server reads back from its store and from child
// processes (JobRequest::FromJson, JobProgress::FromJson, a child's status line).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/child_process.h"
#include "server/job_records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  acs::StatusOr<acs::server::JobRequest> request = acs::server::JobRequest::FromJson(text);
  if (request.ok()) {
    acs::StatusOr<acs::server::JobRequest> again = acs::server::JobRequest::FromJson(request->ToJson().dump());
    if (!again.ok() || again->ToJson() != request->ToJson()) std::abort();
  }
  const acs::server::JobProgress progress = acs::server::JobProgress::FromJson(text);
  if (acs::server::JobProgress::FromJson(progress.ToJson().dump()).ToJson() != progress.ToJson()) std::abort();
  (void)acs::StatusFromJsonLine(text);
  return 0;
}
