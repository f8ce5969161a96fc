// Command-line flags shared by the acs programs: positionals, "--name value",
// "--name=value" and "--switch".
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/status.h"

namespace acs {

struct Flags {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // name without dashes -> value ("" for switches)

  bool Has(const std::string& name) const { return values.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // Errors (InvalidArgument) name the flag and the text that is not a number.
  StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  StatusOr<double> GetDouble(const std::string& name, double fallback) const;
  // InvalidArgument naming the flag when it is missing.
  StatusOr<std::string> Required(const std::string& name) const;
};

// Parses argv[first..]. `valued` lists flags taking a value, `switches` those without;
// an unknown flag or a valued flag without its value is an InvalidArgument naming it.
StatusOr<Flags> ParseFlags(int argc, char** argv, int first, const std::set<std::string>& valued,
                           const std::set<std::string>& switches);

// Non-empty items of a comma-separated list.
std::vector<std::string> SplitList(const std::string& text);

// "1x3x32x32" or "1,3,32,32": positive integers; InvalidArgument otherwise.
StatusOr<Shape> ParseShape(const std::string& text);

// A cost budget: "KIND=RATIOx" with KIND latency, flops, params or bytes and RATIO in
// (0, 1], e.g. "latency=0.5x"; InvalidArgument naming the expected form otherwise.
struct BudgetSpec {
  std::string kind;
  double ratio = 1;
};
StatusOr<BudgetSpec> ParseBudget(const std::string& text);

}  // namespace acs
