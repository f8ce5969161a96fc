// The search loop (DESIGN §4): episodes of agent <-> Env, each complete policy scored by
// a RewardFn, every episode recorded. The loop knows neither models nor devices, only
// the environment, the agent and the reward.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/env.h"
#include "agents/reward.h"

namespace acs {

struct EpisodeRecord {
  int episode = 0;
  Policy policy;
  Score score;
  double cost_ratio = 0;  // score.cost / dense cost
  double seconds = 0;     // wall time of the episode, scoring included
};

struct SearchOptions {
  int episodes = 100;      // total episodes of the search, >= 1
  int first_episode = 0;   // episodes run before (a resumed search): numbering starts here
  // Checked before every episode: true ends the search early (SearchResult::stopped).
  std::function<bool()> stop;
  // Called after every episode with the record and the best record so far.
  std::function<void(const EpisodeRecord& episode, const EpisodeRecord& best)> on_episode;
};

struct SearchResult {
  std::vector<EpisodeRecord> episodes;
  int best = -1;  // index into episodes of the highest reward (the first on ties)
  bool stopped = false;
};

// Runs the episodes. An error of the reward (e.g. a failing compression) ends the search
// with that error.
StatusOr<SearchResult> RunSearch(Env& env, Agent& agent, RewardFn& reward, const SearchOptions& options);

// Indices of the records on the Pareto front of accuracy (higher is better) vs cost
// (lower is better), one per distinct policy, ordered by cost.
std::vector<int> ParetoFront(const std::vector<EpisodeRecord>& records);

}  // namespace acs
