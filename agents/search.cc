#include "agents/search.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace acs {

StatusOr<SearchResult> RunSearch(Env& env, Agent& agent, RewardFn& reward, const SearchOptions& options) {
  if (options.episodes < 1) return Status::InvalidArgument("the search needs at least one episode");
  SearchResult result;
  for (int e = options.first_episode; e < options.episodes; ++e) {
    if (options.stop && options.stop()) {
      result.stopped = true;
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<double> state = env.Reset();
    agent.BeginEpisode(env.num_steps(), kActionDim);
    for (bool done = false; !done;) {
      Env::StepResult step = env.Step(agent.Act(state));
      done = step.done;
      agent.Observe({state, step.applied_action, step.next_state, step.done});
      state = std::move(step.next_state);
    }
    EpisodeRecord record;
    record.episode = e;
    record.policy = env.policy();
    const double cost = env.Cost(record.policy);
    ACS_ASSIGN_OR_RETURN(record.score, reward.Evaluate(record.policy, cost));
    record.cost_ratio = cost / env.dense_cost();
    agent.EndEpisode(record.score.reward);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.episodes.push_back(std::move(record));
    const int i = static_cast<int>(result.episodes.size()) - 1;
    if (result.best < 0 || result.episodes[i].score.reward > result.episodes[result.best].score.reward) result.best = i;
    if (options.on_episode) options.on_episode(result.episodes.back(), result.episodes[result.best]);
  }
  return result;
}

std::vector<int> ParetoFront(const std::vector<EpisodeRecord>& records) {
  std::vector<int> order(records.size());
  for (size_t i = 0; i < records.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (records[a].score.cost != records[b].score.cost) return records[a].score.cost < records[b].score.cost;
    return records[a].score.accuracy > records[b].score.accuracy;
  });
  std::vector<int> front;
  std::set<std::string> seen;
  double best_accuracy = -1;
  for (int i : order) {
    if (records[i].score.accuracy <= best_accuracy) continue;
    if (!seen.insert(records[i].policy.Hash()).second) continue;
    best_accuracy = records[i].score.accuracy;
    front.push_back(i);
  }
  return front;
}

}  // namespace acs
