// bench_time_policies: the measuring process of the benchmarks (policy_timing.h). Reads a
// PolicyTimingRequest as JSON on stdin, times it (TimePolicies) and writes the timings as
// one line of JSON on stdout; exit status 1 with the error on stderr when it cannot.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "experiments/bench/policy_timing.h"

int main() {
  const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const nlohmann::json j = nlohmann::json::parse(input, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "bench_time_policies: the request on stdin is not JSON\n");
    return 1;
  }
  acs::StatusOr<acs::bench::PolicyTimingRequest> request = acs::bench::PolicyTimingRequestFromJson(j);
  if (!request.ok()) {
    std::fprintf(stderr, "bench_time_policies: %s\n", request.status().ToString().c_str());
    return 1;
  }
  acs::StatusOr<std::vector<acs::bench::PolicyTiming>> timings = acs::bench::TimePolicies(*request);
  if (!timings.ok()) {
    std::fprintf(stderr, "bench_time_policies: %s\n", timings.status().ToString().c_str());
    return 1;
  }
  std::printf("\n%s\n", acs::bench::ToJson(*timings).dump().c_str());
  return 0;
}
