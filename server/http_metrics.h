// What the HTTP gateway serves at /metrics, in Prometheus' text format (version 0.0.4):
// requests and their latency per route, open event streams, jobs by state, workers.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "server/job_service.h"

namespace acs::server {

// Request counts and latency histograms per route. Thread-safe.
class HttpMetrics {
 public:
  // One answered request: `route` its pattern's name, `status` the HTTP status, `seconds`
  // from its arrival until its handler returned (for streams: until the head was ready).
  void Record(const std::string& route, int status, double seconds);
  // Appends acs_http_requests_total{route,code} and acs_http_request_duration_seconds{route}.
  void AppendText(std::string* out) const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   10};
  struct Histogram {
    std::array<int64_t, kBuckets.size()> counts{};  // requests at most kBuckets[i] (not cumulative)
    int64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (route, status) -> count; guarded by mu_
  std::map<std::string, Histogram> latency_;                 // per route; guarded by mu_
};

// Appends acs_jobs{state} (every state of the API, 0 when none), acs_workers and
// acs_workers_online.
void AppendCountsText(const ServiceCounts& counts, std::string* out);

}  // namespace acs::server
