#include "agents/latency_cost.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "agents/latency_fit.h"
#include "predictors/features.h"

namespace acs {
namespace {

// Ops that do not execute any work of their own in the runtime.
bool IsFreeOp(const std::string& kind) {
  return kind.rfind("prim::", 0) == 0 || kind == "aten::batch_norm" || kind == "aten::size" ||
         kind == "aten::dropout" || kind == "aten::view" || kind == "aten::reshape" || kind == "aten::flatten" ||
         kind == "aten::contiguous" || kind == "aten::detach";
}

// In-layer config of a shrunk layer: channel pruning is already in its shape.
LayerConfig InLayer(const LayerConfig& config) {
  if (config.pattern != Pattern::kChannel) return config;
  LayerConfig c;
  c.precision = config.precision;
  return c;
}

}  // namespace

predictors::ModelShape ModelShapeOf(const Graph& graph, const Policy& policy, int threads) {
  predictors::ModelShape shape;
  shape.threads = threads;
  const std::vector<int64_t> kept = KeptChannels(graph, policy);
  for (const Layer& layer : graph.layers) {
    const LayerConfig config = layer.compressible ? policy.Get(layer.name) : LayerConfig{};
    shape.layers.push_back(SpecOfLayer(ShrinkLayer(layer, graph, kept), InLayer(config), threads));
  }
  const int64_t context = ContextOf(shape.layers);
  for (KernelSpec& spec : shape.layers) spec.context_bytes = context;
  std::vector<bool> is_layer(graph.nodes.size(), false);
  for (const Layer& layer : graph.layers) {
    if (layer.node >= 0) is_layer[layer.node] = true;
  }
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    if (is_layer[n] || IsFreeOp(node.kind)) continue;
    bool counted = false;
    for (int v : node.outputs) {
      const ValueInfo& info = graph.values[v];
      if (!info.is_tensor || !info.shape_known) continue;
      double elems = 1;
      for (int64_t d : info.shape) elems *= static_cast<double>(d);
      shape.other_bytes += 4.0 * elems;
      counted = true;
    }
    if (counted) shape.other_ops += 1;
  }
  return shape;
}

double WeightBytes(const std::vector<KernelSpec>& layers) {
  double bytes = 0;
  for (const KernelSpec& spec : layers) bytes += predictors::ShapeStats(spec).weight_bytes;
  return bytes;
}

int64_t ContextOf(const std::vector<KernelSpec>& layers) {
  return ContextBucket(static_cast<int64_t>(std::min(WeightBytes(layers), 0x1.0p40)));
}

std::vector<KernelSpec> LayerSpecsOf(const Graph& graph, const std::vector<Policy>& policies, int threads) {
  std::vector<KernelSpec> out;
  std::set<std::string> seen;
  for (const Policy& p : policies) {
    for (const KernelSpec& spec : ModelShapeOf(graph, ResolvePolicy(p, graph), threads).layers) {
      if (seen.insert(AsRun(spec).Key() + " t" + std::to_string(spec.threads)).second) out.push_back(spec);
    }
  }
  return out;
}

std::vector<Policy> GridPolicies(const Graph& graph, const SearchSpace& space) {
  std::vector<Policy> out(1);  // dense fp32
  for (Precision precision : space.precisions) {
    if (precision == Precision::kFp32) continue;
    Policy p;
    p.default_config = LayerConfig{};
    p.default_config->precision = precision;
    out.push_back(p);
  }
  auto uniform = [&](LayerConfig config) {
    Policy p;
    for (const Layer& layer : graph.layers) {
      if (!layer.compressible) continue;
      if (config.pattern == Pattern::kBlock && layer.out_channels % config.block != 0) continue;
      p.layers[layer.name] = config;
    }
    out.push_back(p);
  };
  for (Pattern pattern : space.patterns) {
    for (double sparsity : {0.3, 0.5, 0.7, 0.85}) {
      LayerConfig c;
      c.pattern = pattern;
      c.sparsity = std::min(sparsity, space.max_sparsity);
      switch (pattern) {
        case Pattern::kChannel: {
          Policy p;  // onto the prunable groups only
          p.default_config = c;
          out.push_back(p);
          break;
        }
        case Pattern::kBlock:
          for (int n : space.block_sizes) {
            c.block = n;
            uniform(c);
          }
          break;
        case Pattern::kNM:
          if (sparsity == 0.3) {
            c.sparsity = 0;
            c.nm_n = space.nm_n;
            c.nm_m = space.nm_m;
            uniform(c);
          }
          break;
        case Pattern::kUnstructured:
          uniform(c);
          break;
        case Pattern::kDense:
          break;
      }
    }
  }
  return out;
}

std::vector<Policy> ProbePolicies(const Graph& graph, const SearchSpace& space) {
  auto has = [&](Pattern p) {
    return std::find(space.patterns.begin(), space.patterns.end(), p) != space.patterns.end();
  };
  std::vector<LayerConfig> configs;
  if (has(Pattern::kBlock) && !space.block_sizes.empty()) {
    LayerConfig c;
    c.pattern = Pattern::kBlock;
    const bool eight = std::find(space.block_sizes.begin(), space.block_sizes.end(), 8) != space.block_sizes.end();
    c.block = eight ? 8 : space.block_sizes.front();
    c.sparsity = std::min(0.7, space.max_sparsity);
    configs.push_back(c);
  }
  if (std::find(space.precisions.begin(), space.precisions.end(), Precision::kInt8) != space.precisions.end()) {
    LayerConfig c;
    c.precision = Precision::kInt8;
    configs.push_back(c);
  }
  if (has(Pattern::kUnstructured)) {
    configs.push_back(LayerConfig{std::min(0.85, space.max_sparsity), Pattern::kUnstructured});
  }
  if (has(Pattern::kNM)) {
    LayerConfig c;
    c.pattern = Pattern::kNM;
    c.nm_n = space.nm_n;
    c.nm_m = space.nm_m;
    configs.push_back(c);
  }
  std::vector<Policy> out;
  for (const LayerConfig& config : configs) {
    Policy p;
    for (const Layer& layer : graph.layers) {
      if (!layer.compressible || (config.pattern == Pattern::kBlock && layer.out_channels % config.block != 0)) {
        continue;
      }
      const KernelSpec spec = SpecOfLayer(layer, config);
      if (RunsOwnKernel(spec) && KernelOf(spec).kind != KernelOf(SpecOfLayer(layer, LayerConfig{})).kind) {
        p.layers[layer.name] = config;
      }
    }
    if (!p.layers.empty()) out.push_back(p);
    if (out.size() == 2) break;
  }
  if (!out.empty() && out.front().layers.size() >= 2) {
    Policy half;
    bool take = true;
    for (const auto& [name, config] : out.front().layers) {
      if (take) half.layers[name] = config;
      take = !take;
    }
    out.push_back(half);
  }
  if (!out.empty() && has(Pattern::kChannel)) {
    Policy channels;
    channels.default_config = LayerConfig{std::min(0.3, space.max_sparsity), Pattern::kChannel};
    channels = ResolvePolicy(channels, graph);
    if (!channels.layers.empty()) out.push_back(channels);
  }
  return out;
}

bool RunsOwnKernel(const KernelSpec& spec) {
  const KernelKind kind = KernelOf(spec).kind;
  return kind != KernelKind::kDense && kind != KernelKind::kInt8Simulated;
}

bool RunsOwnInt8Kernel(const KernelSpec& spec) {
  const KernelKind kind = KernelOf(spec).kind;
  return kind == KernelKind::kInt8 || kind == KernelKind::kInt4w;
}

LatencyCostModel::LatencyCostModel(std::shared_ptr<const predictors::LatencyModel> kernels, int threads,
                                   int64_t context_bytes)
    : kernels_(std::move(kernels)), threads_(threads), context_bytes_(context_bytes) {}

double LatencyCostModel::LayerCost(const Layer& layer, const LayerConfig& config) const {
  KernelSpec spec = SpecOfLayer(layer, InLayer(config), threads_);
  spec.context_bytes = context_bytes_;
  return SpecCost(spec);
}

std::vector<double> LatencyCostModel::PolicyLayerUs(const Graph& graph, const Policy& policy) const {
  std::vector<double> us;
  for (const KernelSpec& spec : LayersOf(graph, policy)) us.push_back(SpecCost(spec));
  return us;
}

double LatencyCostModel::PolicyLayersUs(const Graph& graph, const Policy& policy) const {
  double us = 0;
  for (double layer_us : PolicyLayerUs(graph, policy)) us += layer_us;
  return us;
}

void LatencyCostModel::SetOwnKernelFactor(double factor) { own_kernel_factor_ = factor; }

void LatencyCostModel::SetInt8KernelFactor(double factor) { int8_kernel_factor_ = factor; }

std::string ContextRule::Describe() const {
  if (*this == ContextRule{}) return "";
  if (factor == 0) return "the layers priced with warm caches";
  char text[160];
  std::snprintf(text, sizeof text, "the layers priced with %g x %s weights passing through the caches", factor,
                of_policy ? "their" : "the dense model's");
  return text;
}

void LatencyCostModel::SetContextRule(ContextRule rule, double dense_weight_bytes) {
  context_rule_ = rule;
  dense_weight_bytes_ = dense_weight_bytes;
}

std::vector<KernelSpec> LatencyCostModel::LayersOf(const Graph& graph, const Policy& policy) const {
  std::vector<KernelSpec> layers = ModelShapeOf(graph, policy, threads_).layers;
  if (!(context_rule_ == ContextRule{})) {
    const double bytes = context_rule_.of_policy ? WeightBytes(layers) : dense_weight_bytes_;
    const int64_t context = ContextBucket(static_cast<int64_t>(std::min(context_rule_.factor * bytes, 0x1.0p40)));
    for (KernelSpec& spec : layers) spec.context_bytes = context;
  }
  return layers;
}

LayerSplit LatencyCostModel::SplitPolicyLayersUs(const Graph& graph, const Policy& policy) const {
  LayerSplit split;
  for (const KernelSpec& spec : LayersOf(graph, policy)) {
    (RunsOwnInt8Kernel(spec) ? split.int8_us : RunsOwnKernel(spec) ? split.own_us : split.aten_us) += RawCost(spec);
  }
  return split;
}

double LatencyCostModel::SpecCost(const KernelSpec& spec) const {
  const double us = RawCost(spec);
  if (!RunsOwnKernel(spec)) return us;
  return (RunsOwnInt8Kernel(spec) ? int8_kernel_factor_ : own_kernel_factor_) * us;
}

double LatencyCostModel::RawCost(const KernelSpec& spec) const {
  const std::string key = spec.Key();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  StatusOr<std::vector<double>> v = kernels_->Predict({spec});
  if (!v.ok()) throw std::runtime_error(v.status().ToString());
  std::lock_guard<std::mutex> lock(mu_);
  cache_[key] = (*v)[0];
  return (*v)[0];
}

Status LatencyCostModel::Check(const Graph& graph) const {
  std::vector<KernelSpec> specs;
  for (const Layer& layer : graph.layers) {
    specs.push_back(SpecOfLayer(layer, LayerConfig{}, threads_));
    specs.back().context_bytes = context_bytes_;
  }
  return kernels_->Predict(specs).status();
}

double LatencyBudget::PredictUs(const Graph& graph, const Policy& policy) const {
  return layer_scale * cost->PolicyLayersUs(graph, policy) + overhead_us;
}

std::vector<double> LatencyBudget::PredictLayersUs(const Graph& graph, const Policy& policy) const {
  std::vector<double> us = cost->PolicyLayerUs(graph, policy);
  for (double& layer_us : us) layer_us *= layer_scale;
  return us;
}

namespace {

// The cost model of a budget of `ratio` whose layers find the caches by `rule`: the Env's
// costs in the context of a model at the budget (or of the dense model).
std::shared_ptr<LatencyCostModel> BudgetCost(const predictors::TrainedPredictor& predictor, int threads,
                                             double dense_weight_bytes, double ratio, ContextRule rule) {
  const double bytes = rule.factor * (rule.of_policy ? ratio : 1.0) * dense_weight_bytes;
  auto cost = std::make_shared<LatencyCostModel>(predictor.kernels, threads,
                                                 ContextBucket(static_cast<int64_t>(std::min(bytes, 0x1.0p40))));
  cost->SetContextRule(rule, dense_weight_bytes);
  return cost;
}

}  // namespace

StatusOr<LatencyBudget> MakeLatencyBudget(const Graph& graph, const predictors::TrainedPredictor& predictor,
                                          int threads, double ratio, const ModelCalibration& measured) {
  if (!(ratio > 0 && ratio <= 1)) return Status::InvalidArgument("a latency budget must be in (0, 1] x dense");
  if (!predictor.kernels) return Status::FailedPrecondition("the predictor has no kernel model");
  LatencyBudget b;
  const predictors::ModelShape dense = ModelShapeOf(graph, Policy{}, threads);
  const double dense_weight_bytes = WeightBytes(dense.layers);
  const ContextRule first = measured.context_rules.empty() ? ContextRule{} : measured.context_rules.front();
  b.cost = BudgetCost(predictor, threads, dense_weight_bytes, ratio, first);
  b.context = first;
  ACS_RETURN_IF_ERROR(b.cost->Check(graph));
  const LayerSplit dense_split = b.cost->SplitPolicyLayersUs(graph, Policy{});  // in the dense model's context
  const double layers_us = dense_split.aten_us + dense_split.own_us + dense_split.int8_us;
  const double fitted_overhead_us = std::max(0.0, predictor.overhead.Predict(dense));
  std::vector<SplitRow> best_rows;  // the anchor's and the probes' rows of the context chosen
  if (measured.dense_us > 0) {
    // The overhead stays constant; the layers take the rest of the runtime's measurement
    // (what is left of in-model effects the kernels' context does not capture scales with
    // the layers, not by a constant).
    const double anchor_us = measured.uncompressed_us > 0 ? measured.uncompressed_us : measured.dense_us;
    const double share = std::clamp(measured.outside_layers_share, 0.0, 0.5);
    b.calibrated = true;
    b.overhead_us = share > 0 ? share * anchor_us : std::min(fitted_overhead_us, 0.5 * anchor_us);
    b.layer_scale = (anchor_us - b.overhead_us) / layers_us;
    b.dense_us = measured.dense_us;
    double best_residual = 0;
    for (const ContextRule& rule : measured.context_rules) {
      std::shared_ptr<LatencyCostModel> cost =
          rule == first ? b.cost : BudgetCost(predictor, threads, dense_weight_bytes, ratio, rule);
      auto row_of = [&](const Policy& policy, double measured_us) {
        const LayerSplit split = cost->SplitPolicyLayersUs(graph, policy);
        return SplitRow{split.aten_us, split.own_us, split.int8_us, measured_us};
      };
      std::vector<SplitRow> rows = {row_of(Policy{}, anchor_us - b.overhead_us)};
      for (const MeasuredPolicy& probe : measured.probes) {
        SplitRow row;
        try {
          row = row_of(ResolvePolicy(probe.policy, graph), probe.ratio * measured.dense_us - b.overhead_us);
        } catch (const std::runtime_error&) {
          continue;  // a kernel kind the predictor cannot price
        }
        if (row.measured_us > 0) rows.push_back(row);
      }
      if (rows.size() < 2) break;
      rows.front().weight = static_cast<double>(rows.size() - 1);
      // The context is chosen by the two scales' fit: a third parameter on these few rows
      // would let every rule fit them.
      ScalesAndOverhead fit;
      if (!FitScales(rows, false, &fit)) continue;
      if (b.probe_policies > 0 && !(fit.residual < best_residual)) continue;
      best_residual = fit.residual;
      best_rows = rows;
      b.probe_policies = static_cast<int>(rows.size() - 1);
      b.layer_scale = fit.aten_scale;
      b.own_kernel_factor = b.int8_kernel_factor = fit.own_scale / fit.aten_scale;
      b.context = rule;
      b.cost = cost;
    }
    ScalesAndOverhead apart;
    if (measured.int8_scale && !best_rows.empty() && FitScales(best_rows, true, &apart) && apart.int8_apart) {
      b.layer_scale = apart.aten_scale;
      b.own_kernel_factor = apart.own_scale / apart.aten_scale;
      b.int8_kernel_factor = apart.int8_scale / apart.aten_scale;
    }
    b.cost->SetOwnKernelFactor(b.own_kernel_factor);
    b.cost->SetInt8KernelFactor(b.int8_kernel_factor);
  } else {
    b.overhead_us = fitted_overhead_us;
    b.dense_us = layers_us + b.overhead_us;
  }
  if (b.probe_policies > 0 && RefitOnVerified(graph, best_rows, measured, &b)) {
    // both scales refitted with the verified policies
  } else {
    b.verified_scale = VerifiedScale(graph, b, measured.verified, &b.verified_policies);
    b.layer_scale *= b.verified_scale;
  }
  b.env_budget = (ratio * b.dense_us - b.overhead_us) / (b.layer_scale * DenseCost(graph, *b.cost));
  if (!(b.env_budget > 0)) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "a latency budget of %.2fx (%.1f us) is below the model's predicted overhead outside its layers "
                  "(%.1f us)",
                  ratio, ratio * b.dense_us, b.overhead_us);
    return Status::FailedPrecondition(msg);
  }
  b.env_budget = std::min(1.0, b.env_budget);
  return b;
}

}  // namespace acs
