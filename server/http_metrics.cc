#include "server/http_metrics.h"

#include <cstdio>

#include "proto/acs.pb.h"
#include "server/acs_messages.h"

namespace acs::server {
namespace {

// A sample value as Prometheus reads it.
std::string Number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

// Label values escape backslash, quote and newline.
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

}  // namespace

void HttpMetrics::Record(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.counts[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void HttpMetrics::AppendText(std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  *out += "# HELP acs_http_requests_total HTTP requests answered, by route and status.\n";
  *out += "# TYPE acs_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    *out += "acs_http_requests_total{route=\"" + Label(key.first) + "\",code=\"" + std::to_string(key.second) + "\"} " +
            std::to_string(n) + "\n";
  }
  *out += "# HELP acs_http_request_duration_seconds Time to answer (streams: to their head), by route.\n";
  *out += "# TYPE acs_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    const std::string name = "acs_http_request_duration_seconds";
    const std::string label = "route=\"" + Label(route) + "\"";
    int64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.counts[i];
      *out += name + "_bucket{" + label + ",le=\"" + Number(kBuckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    *out += name + "_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    *out += name + "_sum{" + label + "} " + Number(h.sum) + "\n";
    *out += name + "_count{" + label + "} " + std::to_string(h.count) + "\n";
  }
}

void AppendCountsText(const ServiceCounts& counts, std::string* out) {
  *out += "# HELP acs_jobs Jobs of clients by state.\n# TYPE acs_jobs gauge\n";
  const google::protobuf::EnumDescriptor* states = acs::v1::JobState_descriptor();
  for (int i = 0; i < states->value_count(); ++i) {
    const std::string state = StoredJobState(static_cast<acs::v1::JobState>(states->value(i)->number()));
    if (state.empty()) continue;
    auto it = counts.jobs_by_state.find(state);
    const int64_t n = it == counts.jobs_by_state.end() ? 0 : it->second;
    *out += "acs_jobs{state=\"" + Label(state) + "\"} " + std::to_string(n) + "\n";
  }
  *out += "# HELP acs_workers Registered device workers.\n# TYPE acs_workers gauge\n";
  *out += "acs_workers " + std::to_string(counts.workers) + "\n";
  *out += "# HELP acs_workers_online Workers heard from recently.\n# TYPE acs_workers_online gauge\n";
  *out += "acs_workers_online " + std::to_string(counts.workers_online) + "\n";
}

}  // namespace acs::server
