// The AMC environment (DESIGN §4): an episode walks the compressible layers; at each
// layer the agent sees a state and answers with an action in [0,1]^kActionDim, which the
// environment maps to a LayerConfig and clamps so that the budget can still be met
// (the action wall). After the last step policy() is a complete policy within budget.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/cost_model.h"
#include "core/graph.h"
#include "core/policy.h"
#include "core/status.h"

namespace acs {

// The discrete choices an action is bucketed into (as HAQ maps bits).
struct SearchSpace {
  std::vector<Pattern> patterns = {Pattern::kChannel, Pattern::kBlock};  // non-empty
  std::vector<int> block_sizes = {4, 8};          // 1xN sizes for Pattern::kBlock
  // Non-empty; the first is the reference. int8 by default: its kernels give 2.2-3.2x on
  // the zoo models at about 0.1 point (docs/runtime.md), so a budget is often met by
  // quantizing before pruning (SearchSessionOptions::precision_seeds).
  std::vector<Precision> precisions = {Precision::kFp32, Precision::kInt8};
  double max_sparsity = 0.9;  // sparsity actions are clamped to [0, max_sparsity]; < 1
  int nm_n = 2;               // the N:M pattern offered when patterns holds kNM
  int nm_m = 4;
};

// Action components, each in [0, 1].
enum ActionIndex { kActSparsity = 0, kActPattern = 1, kActBlock = 2, kActPrecision = 3, kActionDim = 4 };

// What one layer may choose: the search space filtered by the layer (block sizes that
// divide its output channels; channel pattern only on a prunable group and not on a
// depthwise layer; precisions the runtime has a kernel for on it, fp32 at least). `forced_channel` >= 0: the channel decision was made by an earlier
// layer of the same group; the pattern is channel at that sparsity.
struct LayerChoices {
  std::vector<Pattern> patterns;  // empty = the layer stays dense
  std::vector<int> block_sizes;
  std::vector<Precision> precisions;
  double max_sparsity = 0.9;
  int nm_n = 2, nm_m = 4;
  double forced_channel = -1;
};

// Bucket of a value in [0,1] among n choices: min(n-1, floor(v*n)).
int Bucket(double value, int n);
// Maps an action to a config within `choices`. Values outside [0,1] are clamped.
LayerConfig ActionToConfig(const std::vector<double>& action, const LayerChoices& choices);
// The action at the centre of the buckets that map to `config` (inverse of ActionToConfig).
std::vector<double> ConfigToAction(const LayerConfig& config, const LayerChoices& choices);

struct EnvOptions {
  SearchSpace space;
  std::vector<std::string> skip;   // layer names never configured (stay dense fp32)
  bool skip_first_conv = true;     // also skip the first conv layer (its input is the image)
  bool skip_last_linear = true;    // also skip the last linear layer (the classifier)
  double budget = 0.5;             // target cost as a share of the dense cost, in (0, 1]
};

// Features of a state vector, in order. Static features are min-max normalized over the
// episode's layers; reduced, rest and previous action are shares in [0,1] already.
enum StateIndex {
  kStIndex, kStType, kStIn, kStOut, kStStride, kStKernel, kStInputSize, kStParams, kStFlops,
  kStReduced, kStRest, kStPrevAction, kStateDim
};

class Env {
 public:
  // `graph` must outlive the Env. Errors: InvalidArgument for a malformed search space
  // or budget; FailedPrecondition, naming the budget and the minimum achievable share,
  // when even maximum compression of every layer cannot meet the budget; NotFound when no
  // layer is left to configure.
  static StatusOr<std::unique_ptr<Env>> Create(const Graph* graph, std::shared_ptr<const CostModel> cost,
                                               const EnvOptions& options);

  int num_steps() const { return static_cast<int>(layers_.size()); }
  const std::vector<int>& layers() const { return layers_; }  // graph layer indices, in order
  const Graph& graph() const { return *graph_; }
  const CostModel& cost_model() const { return *cost_; }
  const EnvOptions& options() const { return options_; }

  // Starts an episode; returns the state of step 0.
  std::vector<double> Reset();
  struct StepResult {
    LayerConfig config;                 // what the layer got, after the action wall
    std::vector<double> applied_action; // ConfigToAction(config)
    std::vector<double> next_state;     // empty when done
    bool done = false;
  };
  // Precondition: Reset() was called and the episode is not done.
  StepResult Step(const std::vector<double>& action);

  const Policy& policy() const { return policy_; }  // the episode's policy so far
  double dense_cost() const { return dense_cost_; }
  double budget_cost() const { return dense_cost_ * options_.budget; }
  double min_cost() const { return min_cost_; }  // every layer at maximum compression, or dense
                                                  // when that costs less
  double Cost(const Policy& policy) const { return PolicyCost(*graph_, policy, *cost_); }
  // The choices of episode step t given the decisions of `policy` for steps < t.
  LayerChoices ChoicesAt(int t, const Policy& policy) const;

 private:
  Env() = default;
  std::vector<double> State(int t) const;
  LayerConfig MaxConfig(int t, const Policy& policy) const;
  // `policy` (steps < t decided) plus step t at `config` plus later steps at maximum
  // compression, or dense, meets the budget.
  bool Feasible(int t, const LayerConfig& config) const;

  const Graph* graph_ = nullptr;
  std::shared_ptr<const CostModel> cost_;
  EnvOptions options_;
  std::vector<int> layers_;
  std::vector<std::vector<double>> static_features_;  // per step, normalized
  std::vector<double> dense_layer_cost_;               // per step
  double dense_cost_ = 0, min_cost_ = 0;
  Policy policy_;
  int t_ = 0;
  double prev_action_ = 0;
};

}  // namespace acs
