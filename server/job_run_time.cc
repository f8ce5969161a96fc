// JobRunTime (server/job_run_time.h).
#include "server/job_run_time.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace acs::server {

JobRunTime::JobRunTime(double stored_seconds, std::string stored_progress, Clock::time_point start)
    : stored_seconds_(stored_seconds), start_(start), last_progress_(std::move(stored_progress)), last_write_(start) {}

double JobRunTime::Seconds(Clock::time_point now) const {
  return stored_seconds_ + std::chrono::duration<double>(now - start_).count();
}

void JobRunTime::Wrote(std::string progress_json, Clock::time_point now) {
  last_progress_ = std::move(progress_json);
  last_write_ = now;
}

std::optional<std::string> JobRunTime::Due(Clock::time_point now, double period_seconds) {
  if (std::chrono::duration<double>(now - last_write_).count() < period_seconds) return std::nullopt;
  nlohmann::json progress = nlohmann::json::parse(last_progress_, nullptr, /*allow_exceptions=*/false);
  last_write_ = now;
  if (!progress.is_object()) return std::nullopt;
  progress["run_seconds"] = Seconds(now);
  last_progress_ = progress.dump();
  return last_progress_;
}

}  // namespace acs::server
