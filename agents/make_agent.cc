#include "agents/make_agent.h"

#include <algorithm>

#include "agents/baselines.h"
#include "agents/gcn.h"

namespace acs {

StatusOr<std::unique_ptr<Agent>> MakeAgent(const std::string& name, uint64_t seed, const Env& env,
                                           const AgentOptions& options) {
  if (name == "amc" || name == "agmc") {
    DdpgOptions ddpg = options.ddpg;
    if (options.episodes > 0) ddpg.warmup_episodes = std::min(ddpg.warmup_episodes, options.episodes / 4);
    EncoderFactory encoder = name == "agmc" ? MakeGcnEncoderFactory(env.graph(), env.layers()) : nullptr;
    return std::unique_ptr<Agent>(std::make_unique<DdpgAgent>(seed, ddpg, std::move(encoder), name));
  }
  auto baseline = MakeBaselineAgent(name, seed, options.episodes);
  if (!baseline.ok()) {
    return Status::InvalidArgument("unknown agent '" + name + "' (expected amc, agmc, random, evo or uniform)");
  }
  return baseline;
}

}  // namespace acs
