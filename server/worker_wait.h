// A job's wait on the workers of its device class (preparing, verifying).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "server/job_host.h"

namespace acs::server {

// A job's wait on the workers of its device class: an error naming what it waited for
// once no worker of the class has been online for `limit_seconds` (the only one died
// mid-measurement and none took its tasks over), so the job fails instead of waiting out
// its time limit.
class WorkerWait {
 public:
  using Clock = std::chrono::steady_clock;

  // The wait starts at `start` (tests pass their own times, here and to Check).
  WorkerWait(JobHost* host, std::string device_class, double limit_seconds, Clock::time_point start = Clock::now())
      : host_(host), device_class_(std::move(device_class)), limit_seconds_(limit_seconds), last_online_(start) {}

  // OK while a worker of the class was online (host->Devices) at most limit_seconds before
  // `now`; the host's error; else Unavailable "no worker of device class C was online for
  // S s while WAITING_FOR".
  Status Check(const std::string& waiting_for, Clock::time_point now = Clock::now()) {
    ACS_ASSIGN_OR_RETURN(std::vector<DeviceView> devices, host_->Devices());
    for (const DeviceView& d : devices) {
      if (d.online && d.worker.machine_id == device_class_) last_online_ = now;
    }
    if (std::chrono::duration<double>(now - last_online_).count() <= limit_seconds_) return Status::Ok();
    char line[160];
    std::snprintf(line, sizeof line, " was online for %g s while ", limit_seconds_);
    return Status::Unavailable("no worker of device class " + device_class_ + line + waiting_for);
  }

 private:
  JobHost* host_;
  std::string device_class_;
  double limit_seconds_;
  Clock::time_point last_online_;
};

}  // namespace acs::server
