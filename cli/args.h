// Minimal flag parsing for the acs command line: positionals and --name value / --flag.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace acs::cli {

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--name" without dashes -> value ("" for switches)

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
};

// Parses argv[first..]. `valued` lists flags that take a value, `switches` those that do
// not; any other flag is an error naming it.
StatusOr<Args> ParseArgs(int argc, char** argv, int first, const std::set<std::string>& valued,
                         const std::set<std::string>& switches);

}  // namespace acs::cli
