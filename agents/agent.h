// The Agent interface (DESIGN §4): proposes an action for each state of an episode and
// learns from the transitions and the episode's reward. Agents are seeded: the same seed
// and the same rewards give the same actions. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace acs {

struct Transition {
  std::vector<double> state;
  std::vector<double> action;      // as applied by the environment (after the action wall)
  std::vector<double> next_state;  // empty at the last step
  bool done = false;
};

class Agent {
 public:
  virtual ~Agent() = default;
  virtual std::string name() const = 0;
  // Starts an episode of `steps` steps with actions of `action_dim` components.
  virtual void BeginEpisode(int steps, int action_dim) = 0;
  // An action in [0,1]^action_dim for the state of the current step.
  virtual std::vector<double> Act(const std::vector<double>& state) = 0;
  // The outcome of the last Act; called once per step, in order.
  virtual void Observe(const Transition& transition) {}
  virtual void EndEpisode(double reward) = 0;
  // The agent's whole state as JSON; Restore(Checkpoint()) continues identically.
  // Restore returns InvalidArgument for a checkpoint of another agent or a malformed one.
  virtual std::string Checkpoint() const = 0;
  virtual Status Restore(const std::string& checkpoint) = 0;
};

// A small portable generator (splitmix64) so that seeded runs agree across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}
  uint64_t Next();
  double Uniform();                   // [0, 1)
  double Normal();                    // standard normal (Box-Muller)
  int UniformInt(int n);              // [0, n)
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace acs
