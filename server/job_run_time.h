// The time a job's runners have run it (JobProgress::run_seconds) as the server counts it
// while one runner runs: the time stored when the runner started plus this runner's own
// so far. Every progress write of the runner carries it (JobChannelServer::GuardProgress);
// while the runner writes none (it waits on workers: a verification, a measurement
// campaign) the server writes the last progress again with the time, every period. So a
// server killed at any point loses at most a period of the job's time, and the runner a
// restarted server starts gets only what is left of the job's time limit.
// Not thread-safe: the thread serving the runner's channel owns it.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace acs::server {

// How often a runner that writes no progress has its time run stored, at most.
inline constexpr double kRunTimePersistSeconds = 5;

class JobRunTime {
 public:
  using Clock = std::chrono::steady_clock;

  // `stored_seconds` and `stored_progress`: the job's run_seconds and progress JSON as
  // stored when its runner starts (now, or at `start`).
  JobRunTime(double stored_seconds, std::string stored_progress, Clock::time_point start = Clock::now());

  // The time run so far, at `now`.
  double Seconds(Clock::time_point now = Clock::now()) const;
  // Records that `progress_json` (carrying Seconds() at `now`) was stored.
  void Wrote(std::string progress_json, Clock::time_point now = Clock::now());
  // When the last write is `period_seconds` old or older: the last progress written with
  // run_seconds set to Seconds(now), to be stored (it counts as written); nullopt before
  // then, and when that progress is not a JSON object (nothing to write it into).
  std::optional<std::string> Due(Clock::time_point now = Clock::now(), double period_seconds = kRunTimePersistSeconds);

 private:
  double stored_seconds_;
  Clock::time_point start_;
  std::string last_progress_;
  Clock::time_point last_write_;
};

}  // namespace acs::server
