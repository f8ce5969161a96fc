// The AMC agent (He et al., "AMC: AutoML for Model Compression and Acceleration on Mobile
// Devices", ECCV 2018): DDPG with actor and critic MLPs, a replay buffer, random warm-up
// episodes, truncated-normal exploration noise that decays per episode, and the
// episode's reward minus a moving-average baseline as the reward of each of its
// transitions. With an EncoderFactory the state is extended by a learned embedding (the
// AGMC agent, see agents/gcn.h). LibTorch stays inside ddpg.cc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agents/agent.h"

namespace acs {

class StateEncoder;  // agents/state_encoder.h
// Makes a fresh encoder whose parameters are drawn from `rng`; the DDPG agent calls it
// once for each of its four networks (actor, critic and their targets).
using EncoderFactory = std::function<std::shared_ptr<StateEncoder>(Rng& rng)>;

struct DdpgOptions {
  int hidden = 300;              // units of each of the two hidden layers of actor and critic
  double actor_lr = 1e-4;        // Adam learning rate of the actor
  double critic_lr = 1e-3;       // Adam learning rate of the critic
  double tau = 0.01;             // soft update rate of the target networks
  double discount = 1.0;         // of the next state's value in the critic's target
  int replay_capacity = 2000;    // transitions kept; the oldest are dropped first
  int batch_size = 64;           // transitions per gradient update
  int warmup_episodes = 100;     // episodes of uniformly random actions before learning starts
  int updates_per_step = 1;      // gradient updates per transition, after each episode past warm-up
  double init_sigma = 0.5;       // exploration noise of the first episode after warm-up
  double sigma_decay = 0.95;     // sigma = init_sigma * sigma_decay^k, k = episodes after warm-up
  double baseline_decay = 0.95;  // baseline <- decay * baseline + (1 - decay) * reward
};

// Checkpoint() is JSON holding the scalar state and, base64-encoded, a LibTorch archive of
// the networks, their targets, the optimizers and the replay buffer; Restore(Checkpoint())
// continues bitwise identically (same process configuration: torch threads included).
// The encoder factory must make the same encoder on both sides of a restore.
class DdpgAgent final : public Agent {
 public:
  // `name` is what name() reports and checkpoints are tagged with ("amc", "agmc").
  DdpgAgent(uint64_t seed, DdpgOptions options = {}, EncoderFactory encoder = nullptr, std::string name = "amc");
  ~DdpgAgent() override;
  std::string name() const override { return name_; }
  void BeginEpisode(int steps, int action_dim) override;
  std::vector<double> Act(const std::vector<double>& state) override;
  void Observe(const Transition& transition) override;
  void EndEpisode(double reward) override;
  std::string Checkpoint() const override;
  Status Restore(const std::string& checkpoint) override;

  int episodes() const { return episodes_; }
  double sigma() const;              // exploration noise of the current episode (0 during warm-up)
  double baseline() const { return baseline_; }
  // The actor's action for `state` at episode step `step`, without exploration noise.
  // Precondition: the networks exist (after the first Act or a Restore).
  std::vector<double> Greedy(const std::vector<double>& state, int step) const;

 private:
  struct Nets;  // LibTorch state: networks, optimizers, replay buffer
  void Build(int state_dim, int action_dim);
  void Update();

  std::string name_;
  DdpgOptions options_;
  EncoderFactory encoder_;
  uint64_t seed_;
  Rng rng_;
  std::unique_ptr<Nets> nets_;
  int state_dim_ = 0, action_dim_ = 0;
  int episodes_ = 0;      // completed episodes
  int step_ = 0;          // step of the running episode
  double baseline_ = 0;   // moving average of episode rewards
  bool has_baseline_ = false;
  std::vector<Transition> pending_;  // transitions of the running episode
};

}  // namespace acs
