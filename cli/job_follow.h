// Following several jobs to their end with one progress line per change (`acs campaign
// run`, `acs sweep`).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/remote.h"
#include "core/status.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// A job to follow and its label in the progress lines (a campaign cell's key, a budget).
struct FollowedJob {
  std::string label;
  std::string id;
};

struct FollowOptions {
  double poll_seconds = 2;  // how often the jobs are read (> 0)
  // Called with each job not yet ended as read, before its line is shown; may replace it
  // (e.g. with the job after a CancelJob). An error ends the following. Optional.
  std::function<Status(const std::string& label, acs::v1::Job* job)> on_poll;
};

// Reads the jobs every poll_seconds until all have ended; prints to stderr one line per
// change of a job's state: "HH:MM:SS [ENDED/TOTAL] LABEL: state[: error] (ID)". Returns the
// jobs as they ended, in the order given.
StatusOr<std::vector<acs::v1::Job>> FollowJobs(const Remote& r, const std::vector<FollowedJob>& jobs,
                                               const FollowOptions& options);

// The time now as strftime's `format`, local or UTC; "" when it does not fit 64 bytes.
std::string FormatNow(const char* format, bool utc = false);
// The local time as "HH:MM:SS", for progress lines.
std::string Clock();

}  // namespace acs::cli
