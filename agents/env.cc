#include "agents/env.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/kernel_spec.h"

namespace acs {
namespace {

bool HasSparsity(Pattern p) { return p == Pattern::kUnstructured || p == Pattern::kBlock || p == Pattern::kChannel; }

double Clamp01(double v) { return std::isfinite(v) ? std::clamp(v, 0.0, 1.0) : 0.0; }

template <typename T>
int IndexOf(const std::vector<T>& list, const T& value) {
  auto it = std::find(list.begin(), list.end(), value);
  return it == list.end() ? 0 : static_cast<int>(it - list.begin());
}

Precision CheapestPrecision(const Layer& layer, const std::vector<Precision>& precisions, const CostModel& cost) {
  Precision best = precisions.front();
  double best_cost = 0;
  for (size_t i = 0; i < precisions.size(); ++i) {
    LayerConfig c;
    c.precision = precisions[i];
    double v = cost.LayerCost(layer, c);
    if (i == 0 || v < best_cost) best = precisions[i], best_cost = v;
  }
  return best;
}

}  // namespace

int Bucket(double value, int n) {
  if (n <= 1) return 0;
  return std::min(n - 1, static_cast<int>(std::floor(Clamp01(value) * n)));
}

LayerConfig ActionToConfig(const std::vector<double>& action, const LayerChoices& choices) {
  auto at = [&](int i) { return i < static_cast<int>(action.size()) ? Clamp01(action[i]) : 0.0; };
  LayerConfig c;
  if (!choices.precisions.empty()) {
    c.precision = choices.precisions[Bucket(at(kActPrecision), static_cast<int>(choices.precisions.size()))];
  }
  if (choices.forced_channel >= 0) {
    c.pattern = Pattern::kChannel;
    c.sparsity = choices.forced_channel;
    return c;
  }
  if (choices.patterns.empty()) return c;
  c.pattern = choices.patterns[Bucket(at(kActPattern), static_cast<int>(choices.patterns.size()))];
  if (HasSparsity(c.pattern)) c.sparsity = std::min(at(kActSparsity), choices.max_sparsity);
  if (c.pattern == Pattern::kBlock) {
    c.block = choices.block_sizes[Bucket(at(kActBlock), static_cast<int>(choices.block_sizes.size()))];
  }
  if (c.pattern == Pattern::kNM) c.nm_n = choices.nm_n, c.nm_m = choices.nm_m;
  return c;
}

std::vector<double> ConfigToAction(const LayerConfig& config, const LayerChoices& choices) {
  auto centre = [](int i, size_t n) { return n == 0 ? 0.5 : (i + 0.5) / static_cast<double>(n); };
  std::vector<double> a(kActionDim, 0.5);
  a[kActSparsity] = HasSparsity(config.pattern) ? config.sparsity : 0.0;
  a[kActPattern] = centre(IndexOf(choices.patterns, config.pattern), choices.patterns.size());
  if (config.pattern == Pattern::kBlock) a[kActBlock] = centre(IndexOf(choices.block_sizes, config.block), choices.block_sizes.size());
  a[kActPrecision] = centre(IndexOf(choices.precisions, config.precision), choices.precisions.size());
  return a;
}

StatusOr<std::unique_ptr<Env>> Env::Create(const Graph* graph, std::shared_ptr<const CostModel> cost,
                                           const EnvOptions& options) {
  const SearchSpace& s = options.space;
  if (s.patterns.empty()) return Status::InvalidArgument("the search space has no pattern");
  if (s.precisions.empty()) return Status::InvalidArgument("the search space has no precision");
  if (!(s.max_sparsity >= 0 && s.max_sparsity < 1)) return Status::InvalidArgument("max_sparsity must be in [0, 1)");
  for (int b : s.block_sizes) {
    if (b < 1) return Status::InvalidArgument("block sizes must be >= 1");
  }
  if (!(options.budget > 0 && options.budget <= 1)) {
    return Status::InvalidArgument("the budget must be a share of the dense cost in (0, 1], got " + std::to_string(options.budget));
  }
  std::unique_ptr<Env> env(new Env());
  env->graph_ = graph;
  env->cost_ = std::move(cost);
  env->options_ = options;
  const std::set<std::string> skip(options.skip.begin(), options.skip.end());
  int first_conv = -1, last_linear = -1;
  for (size_t i = 0; i < graph->layers.size(); ++i) {
    const Layer& l = graph->layers[i];
    if (!l.compressible) continue;
    if (l.type == LayerType::kConv2d && first_conv < 0) first_conv = static_cast<int>(i);
    if (l.type == LayerType::kLinear) last_linear = static_cast<int>(i);
  }
  for (size_t i = 0; i < graph->layers.size(); ++i) {
    const Layer& l = graph->layers[i];
    if (!l.compressible || skip.count(l.name)) continue;
    if (options.skip_first_conv && static_cast<int>(i) == first_conv) continue;
    if (options.skip_last_linear && static_cast<int>(i) == last_linear) continue;
    env->layers_.push_back(static_cast<int>(i));
  }
  if (env->layers_.empty()) return Status::NotFound("no compressible layer is left to search after the skip list");

  // Static features, min-max normalized over the episode's layers.
  const int n = env->num_steps();
  std::vector<std::vector<double>> raw(n, std::vector<double>(kStReduced, 0.0));
  for (int t = 0; t < n; ++t) {
    const Layer& l = graph->layers[env->layers_[t]];
    int64_t input_size = l.input_shape.size() >= 4 ? l.input_shape[2] * l.input_shape[3] : 1;
    raw[t] = {static_cast<double>(t), l.type == LayerType::kLinear ? 1.0 : 0.0, static_cast<double>(l.in_channels),
              static_cast<double>(l.out_channels), static_cast<double>(l.stride[0]), static_cast<double>(l.kernel[0]),
              static_cast<double>(input_size), static_cast<double>(l.params), static_cast<double>(l.flops)};
    env->dense_layer_cost_.push_back(env->cost_->LayerCost(l, LayerConfig{}));
  }
  env->static_features_ = raw;
  for (int f = 0; f < kStReduced; ++f) {
    double lo = raw[0][f], hi = raw[0][f];
    for (int t = 0; t < n; ++t) lo = std::min(lo, raw[t][f]), hi = std::max(hi, raw[t][f]);
    for (int t = 0; t < n; ++t) env->static_features_[t][f] = hi > lo ? (raw[t][f] - lo) / (hi - lo) : 0.0;
  }
  env->dense_cost_ = DenseCost(*graph, *env->cost_);
  Policy all_max;
  for (int t = 0; t < n; ++t) all_max.layers[graph->layers[env->layers_[t]].name] = env->MaxConfig(t, all_max);
  // The dense policy is a policy too: a cost model may find a layer's maximum compression
  // slower than its dense form (a latency predictor on small layers).
  env->min_cost_ = std::min(env->Cost(all_max), env->dense_cost_);
  if (env->min_cost_ > env->budget_cost() * (1 + 1e-9)) {
    std::ostringstream m;
    m.precision(3);
    m << "the budget " << env->cost_->name() << "=" << options.budget << "x cannot be met: at maximum compression ("
      << "max sparsity " << s.max_sparsity << ") the model keeps " << env->min_cost_ / env->dense_cost_
      << "x of its dense " << env->cost_->name() << "; use a budget of at least that";
    return Status::FailedPrecondition(m.str());
  }
  env->Reset();
  return StatusOr<std::unique_ptr<Env>>(std::move(env));
}

LayerChoices Env::ChoicesAt(int t, const Policy& policy) const {
  const SearchSpace& s = options_.space;
  const Layer& layer = graph_->layers[layers_[t]];
  LayerChoices c;
  // A precision the runtime has no kernel for on this layer (int8 on a grouped convolution
  // runs as a fake-quant graph: slower than fp32 and less accurate) is not offered.
  for (Precision q : s.precisions) {
    LayerConfig config;
    config.precision = q;
    if (KernelOf(SpecOfLayer(layer, config)).kind != KernelKind::kInt8Simulated) c.precisions.push_back(q);
  }
  if (c.precisions.empty()) c.precisions.push_back(Precision::kFp32);
  c.max_sparsity = s.max_sparsity;
  c.nm_n = s.nm_n;
  c.nm_m = s.nm_m;
  for (int b : s.block_sizes) {
    if (layer.out_channels % b == 0) c.block_sizes.push_back(b);
  }
  const int g = layer.out_group;
  const bool channel_ok = !layer.depthwise() && g >= 0 && g < static_cast<int>(graph_->groups.size()) &&
                          graph_->groups[g].prunable;
  bool channel_taken = false;  // an earlier layer of the group decided against channel pruning
  if (channel_ok) {
    for (int u = 0; u < t; ++u) {
      const Layer& other = graph_->layers[layers_[u]];
      if (other.depthwise() || other.out_group != g) continue;
      LayerConfig decided = policy.Get(other.name);
      if (decided.pattern == Pattern::kChannel) c.forced_channel = decided.sparsity;
      else channel_taken = true;
      break;
    }
  }
  for (Pattern p : s.patterns) {
    if (p == Pattern::kChannel && (!channel_ok || channel_taken)) continue;
    if (p == Pattern::kBlock && c.block_sizes.empty()) continue;
    c.patterns.push_back(p);
  }
  return c;
}

LayerConfig Env::MaxConfig(int t, const Policy& policy) const {
  const Layer& layer = graph_->layers[layers_[t]];
  LayerChoices choices = ChoicesAt(t, policy);
  LayerConfig best;
  best.precision = CheapestPrecision(layer, choices.precisions, *cost_);
  if (choices.forced_channel >= 0) {
    best.pattern = Pattern::kChannel;
    best.sparsity = choices.forced_channel;
    return best;
  }
  double best_cost = cost_->LayerCost(layer, best);
  // Every pattern at every precision: a precision that is cheaper dense may not run a
  // pattern's sparse kernel (an int8 layer runs the int8 kernel whatever its pattern).
  for (Pattern p : choices.patterns) {
    for (Precision q : choices.precisions) {
      LayerConfig c = best;
      c.precision = q;
      c.pattern = p;
      c.sparsity = HasSparsity(p) ? choices.max_sparsity : 0.0;
      if (p == Pattern::kBlock) c.block = choices.block_sizes.front();
      if (p == Pattern::kNM) c.nm_n = choices.nm_n, c.nm_m = choices.nm_m;
      // Channel pruning also shrinks the consumers: preferred whenever offered (at the
      // precision cheapest dense).
      if (p == Pattern::kChannel) {
        c.precision = best.precision;
        return c;
      }
      double v = cost_->LayerCost(layer, c);
      if (v < best_cost) best = c, best_cost = v;
    }
  }
  return best;
}

bool Env::Feasible(int t, const LayerConfig& config) const {
  Policy p = policy_;
  p.layers[graph_->layers[layers_[t]].name] = config;
  const Policy rest_dense = p;  // completed by dense layers, or by maximum compression
  for (int u = t + 1; u < num_steps(); ++u) p.layers[graph_->layers[layers_[u]].name] = MaxConfig(u, p);
  const double budget = budget_cost() * (1 + 1e-9);
  return Cost(p) <= budget || Cost(rest_dense) <= budget;
}

std::vector<double> Env::State(int t) const {
  std::vector<double> s = static_features_[t];
  double rest = 0;
  for (int u = t + 1; u < num_steps(); ++u) rest += dense_layer_cost_[u];
  s.push_back(Clamp01((dense_cost_ - Cost(policy_)) / dense_cost_));
  s.push_back(Clamp01(rest / dense_cost_));
  s.push_back(prev_action_);
  return s;
}

std::vector<double> Env::Reset() {
  policy_ = Policy();
  t_ = 0;
  prev_action_ = 0;
  return State(0);
}

Env::StepResult Env::Step(const std::vector<double>& action) {
  const int t = t_;
  const LayerChoices choices = ChoicesAt(t, policy_);
  LayerConfig config = ActionToConfig(action, choices);
  if (!Feasible(t, config)) {
    // The action wall: the least extra compression that keeps the budget reachable.
    const double wanted = config.sparsity;
    LayerConfig fallback = MaxConfig(t, policy_);
    bool searched = false;
    for (LayerConfig candidate : {config, fallback}) {
      if (choices.forced_channel >= 0 || !HasSparsity(candidate.pattern)) continue;
      candidate.sparsity = choices.max_sparsity;
      if (!Feasible(t, candidate)) continue;
      double lo = std::min(wanted, choices.max_sparsity), hi = choices.max_sparsity;
      for (int i = 0; i < 30 && hi - lo > 1e-6; ++i) {
        candidate.sparsity = 0.5 * (lo + hi);
        (Feasible(t, candidate) ? hi : lo) = candidate.sparsity;
      }
      candidate.sparsity = hi;
      config = candidate;
      searched = true;
      break;
    }
    if (!searched) config = fallback;
  }
  policy_.layers[graph_->layers[layers_[t]].name] = config;
  StepResult r;
  r.config = config;
  r.applied_action = ConfigToAction(config, choices);
  prev_action_ = r.applied_action[kActSparsity];
  ++t_;
  r.done = t_ >= num_steps();
  if (!r.done) r.next_state = State(t_);
  return r;
}

}  // namespace acs
