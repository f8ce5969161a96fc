// The search agents' names, one list for everything that accepts one (MakeAgent in
// agents/make_agent.h makes each; the server and campaign specs check against it).
#pragma once

#include <string>
#include <vector>

namespace acs {

inline const std::vector<std::string>& AgentNames() {
  static const std::vector<std::string> names = {"amc", "agmc", "random", "evo", "uniform"};
  return names;
}

}  // namespace acs
