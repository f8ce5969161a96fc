// Agents by name, for the search command and the benchmarks.
#pragma once

#include <memory>
#include <string>

#include "agents/agent.h"
#include "agents/ddpg.h"
#include "agents/env.h"

namespace acs {

struct AgentOptions {
  int episodes = 0;     // episodes of the search: spreads the uniform grid; caps the warm-up
  DdpgOptions ddpg;     // for amc and agmc; warmup_episodes is capped at episodes / 4
};

// "random", "uniform", "evo" (agents/baselines.h), "amc" or "agmc" (agents/ddpg.h,
// agents/gcn.h) seeded with `seed`, for episodes of `env` (which must outlive the agent);
// InvalidArgument for another name.
StatusOr<std::unique_ptr<Agent>> MakeAgent(const std::string& name, uint64_t seed, const Env& env,
                                           const AgentOptions& options = {});

}  // namespace acs
