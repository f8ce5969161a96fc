#include "agents/baselines.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace acs {

using nlohmann::json;

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Rng::Normal() {
  double u1 = std::max(Uniform(), 1e-300), u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

int Rng::UniformInt(int n) { return n <= 1 ? 0 : static_cast<int>(Next() % static_cast<uint64_t>(n)); }

namespace {

StatusOr<json> ParseCheckpoint(const std::string& text, const std::string& agent) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("agent checkpoint is not a JSON object");
  if (j.value("agent", "") != agent) {
    return Status::InvalidArgument("checkpoint is of agent '" + j.value("agent", "") + "', not '" + agent + "'");
  }
  return j;
}

}  // namespace

std::vector<double> RandomAgent::Act(const std::vector<double>& state) {
  std::vector<double> a(action_dim_);
  for (double& v : a) v = rng_.Uniform();
  return a;
}

std::string RandomAgent::Checkpoint() const {
  return json{{"agent", name()}, {"rng", rng_.state()}, {"episodes", episodes_}}.dump();
}

Status RandomAgent::Restore(const std::string& checkpoint) {
  ACS_ASSIGN_OR_RETURN(json j, ParseCheckpoint(checkpoint, name()));
  try {
    rng_.set_state(j.at("rng").get<uint64_t>());
    episodes_ = j.at("episodes").get<int>();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("random agent checkpoint: ") + e.what());
  }
  return Status::Ok();
}

std::vector<double> UniformAgent::Act(const std::vector<double>& state) {
  std::vector<double> a(action_dim_, options_.other_action);
  const int g = std::max(1, options_.grid_points);
  if (!a.empty()) a[0] = g == 1 ? 0.0 : static_cast<double>(episodes_ % g) / (g - 1);
  return a;
}

std::string UniformAgent::Checkpoint() const { return json{{"agent", name()}, {"episodes", episodes_}}.dump(); }

Status UniformAgent::Restore(const std::string& checkpoint) {
  ACS_ASSIGN_OR_RETURN(json j, ParseCheckpoint(checkpoint, name()));
  if (!j.contains("episodes") || !j["episodes"].is_number_integer()) {
    return Status::InvalidArgument("uniform agent checkpoint lacks 'episodes'");
  }
  episodes_ = j["episodes"].get<int>();
  return Status::Ok();
}

void EvolutionaryAgent::BeginEpisode(int steps, int action_dim) {
  if (steps != steps_ || action_dim != action_dim_) {  // a new problem: start over
    steps_ = steps;
    action_dim_ = action_dim;
    population_.clear();
    fitness_.clear();
    current_ = 0;
    generation_ = 0;
  }
  if (population_.empty()) {
    for (int i = 0; i < std::max(2, options_.population); ++i) {
      std::vector<double> genome(static_cast<size_t>(steps_) * action_dim_);
      for (double& v : genome) v = rng_.Uniform();
      population_.push_back(std::move(genome));
    }
  }
  step_ = 0;
}

std::vector<double> EvolutionaryAgent::Act(const std::vector<double>& state) {
  const std::vector<double>& g = population_[current_];
  return std::vector<double>(g.begin() + static_cast<long>(step_) * action_dim_,
                             g.begin() + static_cast<long>(step_ + 1) * action_dim_);
}

void EvolutionaryAgent::Observe(const Transition& transition) {
  std::vector<double>& g = population_[current_];
  for (int k = 0; k < action_dim_ && k < static_cast<int>(transition.action.size()); ++k) {
    g[static_cast<size_t>(step_) * action_dim_ + k] = transition.action[k];
  }
  ++step_;
}

void EvolutionaryAgent::EndEpisode(double reward) {
  fitness_.push_back(reward);
  ++current_;
  if (current_ >= static_cast<int>(population_.size())) Breed();
}

int EvolutionaryAgent::Tournament() {
  int best = rng_.UniformInt(static_cast<int>(population_.size()));
  for (int i = 1; i < options_.tournament; ++i) {
    int c = rng_.UniformInt(static_cast<int>(population_.size()));
    if (fitness_[c] > fitness_[best]) best = c;
  }
  return best;
}

void EvolutionaryAgent::Breed() {
  const int n = static_cast<int>(population_.size());
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return fitness_[a] > fitness_[b]; });
  std::vector<std::vector<double>> next;
  for (int i = 0; i < std::min(options_.elite, n); ++i) next.push_back(population_[order[i]]);
  while (static_cast<int>(next.size()) < n) {
    std::vector<double> child = population_[Tournament()];
    if (rng_.Uniform() < options_.crossover_rate) {
      const std::vector<double>& other = population_[Tournament()];
      for (size_t k = 0; k < child.size(); ++k) {
        if (rng_.Uniform() < 0.5) child[k] = other[k];
      }
    }
    for (double& v : child) {
      if (rng_.Uniform() < options_.mutation_rate) v = std::clamp(v + options_.mutation_sigma * rng_.Normal(), 0.0, 1.0);
    }
    next.push_back(std::move(child));
  }
  population_ = std::move(next);
  fitness_.clear();
  current_ = 0;
  ++generation_;
}

std::string EvolutionaryAgent::Checkpoint() const {
  return json{{"agent", name()}, {"rng", rng_.state()}, {"steps", steps_}, {"action_dim", action_dim_},
              {"generation", generation_}, {"current", current_}, {"population", population_}, {"fitness", fitness_}}
      .dump();
}

Status EvolutionaryAgent::Restore(const std::string& checkpoint) {
  ACS_ASSIGN_OR_RETURN(json j, ParseCheckpoint(checkpoint, name()));
  try {
    rng_.set_state(j.at("rng").get<uint64_t>());
    steps_ = j.at("steps").get<int>();
    action_dim_ = j.at("action_dim").get<int>();
    generation_ = j.at("generation").get<int>();
    current_ = j.at("current").get<int>();
    population_ = j.at("population").get<std::vector<std::vector<double>>>();
    fitness_ = j.at("fitness").get<std::vector<double>>();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("evolutionary agent checkpoint: ") + e.what());
  }
  if (current_ < 0 || current_ > static_cast<int>(population_.size()) || fitness_.size() != static_cast<size_t>(current_)) {
    return Status::InvalidArgument("evolutionary agent checkpoint is inconsistent");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Agent>> MakeBaselineAgent(const std::string& name, uint64_t seed, int episodes) {
  if (name == "random") return std::unique_ptr<Agent>(std::make_unique<RandomAgent>(seed));
  if (name == "uniform") {
    UniformAgentOptions options;
    if (episodes > 1) options.grid_points = episodes;
    return std::unique_ptr<Agent>(std::make_unique<UniformAgent>(options));
  }
  if (name == "evo") return std::unique_ptr<Agent>(std::make_unique<EvolutionaryAgent>(seed));
  return Status::InvalidArgument("unknown agent '" + name + "' (expected random, uniform or evo)");
}

}  // namespace acs
