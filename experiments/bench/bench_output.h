// Result files and fatal errors of the benchmark programs (torch-free).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace acs::bench {

// Writes json to path (2-space indent, its directory made if missing) and says so; false
// with a message when it cannot.
bool WriteJsonFile(const std::string& path, const nlohmann::json& json);

// Nothing when s is ok; otherwise a message "what: status" on stderr and exit code 1.
inline void OrDie(const Status& s, const std::string& what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// The value, or a message "what: status" on stderr and exit code 1.
template <class T>
T OrDie(StatusOr<T> v, const std::string& what) {
  OrDie(v.status(), what);
  return std::move(v).value();
}

// "program: problem" and the usage on stderr, exit code 2 (bad usage).
[[noreturn]] inline void ExitBadUsage(const char* program, const std::string& problem, const char* usage) {
  std::fprintf(stderr, "%s: %s\n%s", program, problem.c_str(), usage);
  std::exit(2);
}

}  // namespace acs::bench
