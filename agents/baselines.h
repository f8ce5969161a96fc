// Baseline agents that every search result is compared against (DESIGN §4): uniform
// (the same action on every layer, over a 1-D sparsity grid), random search and
// evolutionary search. All seeded and reproducible.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/agent.h"

namespace acs {

// Uniformly random actions.
class RandomAgent final : public Agent {
 public:
  explicit RandomAgent(uint64_t seed) : rng_(seed) {}
  std::string name() const override { return "random"; }
  void BeginEpisode(int steps, int action_dim) override { action_dim_ = action_dim; }
  std::vector<double> Act(const std::vector<double>& state) override;
  void EndEpisode(double reward) override { ++episodes_; }
  std::string Checkpoint() const override;
  Status Restore(const std::string& checkpoint) override;

 private:
  Rng rng_;
  int action_dim_ = 0;
  int episodes_ = 0;
};

struct UniformAgentOptions {
  int grid_points = 10;        // sparsity actions i / (grid_points - 1), i = 0.., repeated
  double other_action = 0.0;   // value of every non-sparsity action component (first choice)
};

// The same action on every layer; episode i takes the i-th point of the sparsity grid.
// (The action wall may still raise late layers to meet the budget.)
class UniformAgent final : public Agent {
 public:
  explicit UniformAgent(UniformAgentOptions options = {}) : options_(options) {}
  std::string name() const override { return "uniform"; }
  void BeginEpisode(int steps, int action_dim) override { action_dim_ = action_dim; }
  std::vector<double> Act(const std::vector<double>& state) override;
  void EndEpisode(double reward) override { ++episodes_; }
  std::string Checkpoint() const override;
  Status Restore(const std::string& checkpoint) override;

 private:
  UniformAgentOptions options_;
  int action_dim_ = 0;
  int episodes_ = 0;
};

struct EvolutionaryAgentOptions {
  int population = 16;          // genomes per generation; the first generation is random
  int tournament = 3;           // candidates drawn per parent selection
  int elite = 1;                // best genomes copied unchanged into the next generation
  double mutation_rate = 0.2;   // chance that a gene is perturbed
  double mutation_sigma = 0.15; // standard deviation of the gaussian perturbation
  double crossover_rate = 0.5;  // chance of uniform crossover (else a copy of one parent)
};

// A genome is one episode's actions (steps x action_dim). Genomes store the applied
// actions (after the action wall), so offspring start from feasible policies.
class EvolutionaryAgent final : public Agent {
 public:
  // Checkpoint() and Restore() are meant for between episodes.
  EvolutionaryAgent(uint64_t seed, EvolutionaryAgentOptions options = {}) : options_(options), rng_(seed) {}
  std::string name() const override { return "evo"; }
  void BeginEpisode(int steps, int action_dim) override;
  std::vector<double> Act(const std::vector<double>& state) override;
  void Observe(const Transition& transition) override;
  void EndEpisode(double reward) override;
  std::string Checkpoint() const override;
  Status Restore(const std::string& checkpoint) override;
  int generation() const { return generation_; }

 private:
  void Breed();
  int Tournament();

  EvolutionaryAgentOptions options_;
  Rng rng_;
  int steps_ = 0, action_dim_ = 0;
  int generation_ = 0;
  int current_ = 0;  // genome of the running episode
  int step_ = 0;
  std::vector<std::vector<double>> population_;  // genomes of this generation
  std::vector<double> fitness_;                  // of evaluated genomes of this generation
};

// "random", "uniform" or "evo" seeded with `seed`; InvalidArgument otherwise. The uniform
// agent spreads its grid over `episodes` points when that is > 1.
StatusOr<std::unique_ptr<Agent>> MakeBaselineAgent(const std::string& name, uint64_t seed, int episodes = 0);

}  // namespace acs
