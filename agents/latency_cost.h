// Latency as a search cost (DESIGN §4): a trained predictor of a device class behind the
// CostModel role, and the model shape (layers as run plus the ops between them) that the
// predictor and the measurements of whole models share.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agents/cost_model.h"
#include "agents/env.h"
#include "predictors/predictor.h"

namespace acs {

// The layers of `graph` under `policy` as the runtime runs them (channel pruning applied,
// in-layer pattern and precision kept), each with `threads` and in the context of the
// model they make up (ContextOf); plus the count and output bytes of the other executed
// ops (batch norms fold into convolutions and are not counted).
predictors::ModelShape ModelShapeOf(const Graph& graph, const Policy& policy, int threads);

// The bytes of weights layers hold as they run (non-zeros at their precision, indices of
// sparse formats), and the context they make for each other: ContextBucket of that.
double WeightBytes(const std::vector<KernelSpec>& layers);
int64_t ContextOf(const std::vector<KernelSpec>& layers);

// The distinct kernels (by AsRun key and threads) that the layers of `graph` run under
// any of `policies` (resolved or not), as ModelShapeOf gives them: what a device class
// measures so that its predictor knows this model's layers.
std::vector<KernelSpec> LayerSpecsOf(const Graph& graph, const std::vector<Policy>& policies, int threads);

// A grid of uniform policies over the search space: dense, each other precision dense, and
// each pattern of the space at a few sparsities (block sizes where they divide a layer's
// outputs, the channel pattern where the group is prunable).
std::vector<Policy> GridPolicies(const Graph& graph, const SearchSpace& space);

// Policies measured end to end before the search to fit the scales of the layers'
// predictions on compressed runs (ModelCalibration::probes): at most two uniform policies
// whose compressible layers run the runtime's own kernels where the space and the layer
// allow it (1x8 blocks, or the space's first block size, at 70% sparsity; int8; else
// unstructured 85% or N:M), then the first of them on every other such layer only, the
// rest dense (aten ops beside own kernels, as the search's policies have them); then, with
// any of those and the channel pattern in the space, 30% channel pruning on every prunable
// group (aten layers only, in a smaller context than the dense model's).
std::vector<Policy> ProbePolicies(const Graph& graph, const SearchSpace& space);

// Whether a layer of `spec` runs one of the runtime's own kernels (sparse, int8, int4w,
// depthwise) rather than LibTorch's aten ops (dense, channel-pruned, int8-simulated).
bool RunsOwnKernel(const KernelSpec& spec);
// Whether it runs the runtime's own int8 or int4w kernels: their in-model runs may miss the
// isolated kernels by another factor than the sparse and depthwise ones do.
bool RunsOwnInt8Kernel(const KernelSpec& spec);

// A policy's layers predicted without any scale, in three parts: on aten ops, on the
// runtime's own int8 / int4w kernels, and on its other own kernels (sparse, depthwise).
struct LayerSplit {
  double aten_us = 0, own_us = 0, int8_us = 0;
};

// The cache context a policy's layers are priced in (KernelSpec::context_bytes):
// ContextBucket(factor x the weight bytes of the policy's layers, or of the dense model's
// when !of_policy: compression then does not change the context); factor 0 = warm caches.
struct ContextRule {
  double factor = 1;
  bool of_policy = true;
  bool operator==(const ContextRule& o) const { return factor == o.factor && of_policy == o.of_policy; }
  std::string Describe() const;  // "" for the default
};

// Predicted microseconds of a shrunk layer under a config in a fixed context, memoized by
// kernel key (the search asks for the same few configs of a layer again and again).
// Thread-safe.
class LatencyCostModel final : public CostModel {
 public:
  // `context_bytes`: the KernelSpec::context_bytes LayerCost predicts in (the search's
  // costs must add up layer by layer, so they cannot follow the policy's own context).
  LatencyCostModel(std::shared_ptr<const predictors::LatencyModel> kernels, int threads, int64_t context_bytes = 0);
  std::string name() const override { return "latency"; }
  // Predictor errors (a kernel kind without data) throw std::runtime_error: check a graph
  // with Check() first. Layers that RunsOwnKernel are priced x own_kernel_factor(), those
  // that RunsOwnInt8Kernel x int8_kernel_factor() instead.
  double LayerCost(const Layer& layer, const LayerConfig& config) const override;
  // The layers of a resolved policy, each in the context context_rule() gives it.
  double PolicyLayersUs(const Graph& graph, const Policy& policy) const;
  // Its terms: one per layer of graph.layers, in their order.
  std::vector<double> PolicyLayerUs(const Graph& graph, const Policy& policy) const;
  int64_t context_bytes() const { return context_bytes_; }
  // Errors of the predictor for any layer of the graph (e.g. no depthwise data).
  Status Check(const Graph& graph) const;
  int threads() const { return threads_; }
  // Not thread-safe: set before the model is shared. Default 1.
  void SetOwnKernelFactor(double factor);
  double own_kernel_factor() const { return own_kernel_factor_; }
  void SetInt8KernelFactor(double factor);  // as above
  double int8_kernel_factor() const { return int8_kernel_factor_; }
  // Not thread-safe: set before the model is shared. How a resolved policy's layers find
  // the caches; `dense_weight_bytes`: the dense model's (WeightBytes), for !rule.of_policy.
  void SetContextRule(ContextRule rule, double dense_weight_bytes);
  ContextRule context_rule() const { return context_rule_; }
  // The unfactored predictions of a resolved policy's layers (each in the policy's own
  // context), split by where they run.
  LayerSplit SplitPolicyLayersUs(const Graph& graph, const Policy& policy) const;

 private:
  std::shared_ptr<const predictors::LatencyModel> kernels_;
  int threads_;
  int64_t context_bytes_;
  double own_kernel_factor_ = 1;
  double int8_kernel_factor_ = 1;
  ContextRule context_rule_;
  double dense_weight_bytes_ = 0;
  std::vector<KernelSpec> LayersOf(const Graph& graph, const Policy& policy) const;
  double RawCost(const KernelSpec& spec) const;
  double SpecCost(const KernelSpec& spec) const;
  mutable std::mutex mu_;
  mutable std::map<std::string, double> cache_;
};

// A budget of `ratio` x the dense latency of the whole model, stated for the Env (which
// sums layer costs): the per-model overhead does not change with the policy, so the layers
// may take ratio x (dense layers + overhead) - overhead. The Env's costs are predicted in
// the context of a model at the budget: ratio x the dense model's weight bytes.
struct LatencyBudget {
  std::shared_ptr<LatencyCostModel> cost;
  double env_budget = 0;   // share of the dense layers' latency, for EnvOptions::budget
  double dense_us = 0;     // whole model, dense: predicted, or measured when calibrated
  double overhead_us = 0;  // per-model overhead: predicted (OverheadModel), profiled, or refitted
  double layer_scale = 1;  // calibrated: the layers' predictions scaled so that with the
                           // overhead they make the measured uncompressed runtime
  bool calibrated = false; // anchored to a measurement of this model
  double verified_scale = 1;      // part of layer_scale fitted on verified policies (1: none)
  double verified_own_scale = 1;  // with probes, the own-kernel layers' scale is refitted
                                  // with it: their part of the change (1: none)
  double verified_int8_scale = 1;  // and the own int8 layers' part, when they have a scale
  int verified_policies = 0;      // how many they were fitted on
  double overhead_before_refit_us = -1;  // the refit fitted overhead_us too: the one it
                                         // replaced (-1: the overhead was kept)
  double own_kernel_factor = 1;  // the own-kernel layers' scale over layer_scale, fitted on
                                 // the probes (1: none; cost->own_kernel_factor())
  double int8_kernel_factor = 1;  // the own int8 / int4w layers' (cost->int8_kernel_factor()):
                                  // own_kernel_factor unless the probes determine it apart
  int probe_policies = 0;        // how many probes it was fitted on
  ContextRule context;           // cost->context_rule(), fitted with the two scales
  // Predicted whole-model latency of a resolved policy, its layers in its own context.
  double PredictUs(const Graph& graph, const Policy& policy) const;
  // Its layers' part, one term per layer of graph.layers (PredictUs = their sum + overhead_us).
  std::vector<double> PredictLayersUs(const Graph& graph, const Policy& policy) const;
};

// The context rules (LatencyCostModel::SetContextRule) the probes choose from, the default
// first: the policy's weights, warm caches, a sixteenth, a quarter and four times its
// weights, and the dense model's weights whatever the policy keeps.
inline constexpr ContextRule kContextRules[] = {{1, true},    {0, true}, {1.0 / 16, true},
                                                {0.25, true}, {4, true}, {1, false}};

// A policy of the model measured end to end on the device class: the runtime's latency
// over the dense baseline's, timed alternately with it.
struct MeasuredPolicy {
  Policy policy;
  double ratio = 0;
};

// What a job measures of its model on the device class before the search; 0 = not measured.
// Set its fields by name: a brace list would set the switches below by position.
struct ModelCalibration {
  double dense_us = 0;         // the dense baseline end to end: the budget's 1.0x
  double uncompressed_us = 0;  // the runtime running the model uncompressed, in dense_us's
                               // units (dense_us x their median ratio, timed alternately):
                               // anchors the predictions (else the dense baseline does)
  double outside_layers_share = 0;  // of a run of the model on plain tensors (frozen, not
                                    // optimized), the share outside its conv / linear ops
                                    // (profiled): the per-model overhead, which compression
                                    // does not shrink
  std::vector<MeasuredPolicy> verified;  // policies of earlier search rounds, measured:
                                         // the layers' scale is refitted on them
  bool refit_overhead = true;            // with probes and 3+ verified policies, the refit
                                         // may fit the overhead too (false: held, to compare)
  std::vector<MeasuredPolicy> probes;    // ProbePolicies, measured with the anchor: the
                                         // own-kernel layers get their own scale
  bool int8_scale = true;                // with probes, the own int8 layers may get a scale
                                         // of their own (false: one for all own kernels)
  // The context rules the probes choose from (ties keep the earlier); the first stands
  // without probes. Default: all of kContextRules.
  std::vector<ContextRule> context_rules{std::begin(kContextRules), std::end(kContextRules)};
};

// Errors: the predictor's (a kernel kind without data); FailedPrecondition when the
// overhead alone exceeds the budget; InvalidArgument for a ratio outside (0, 1].
// `measured.dense_us` > 0 calibrates the budget: it is the dense_us the ratio is taken of,
// and the anchor (uncompressed_us, else dense_us) is split into the per-model overhead
// (outside_layers_share of it when measured, else the fitted overhead, at most half of it)
// and the layers, whose predictions are scaled to make up the rest. With `probes`, layers on
// aten ops and layers on the runtime's own kernels get one scale each, fitted to the anchor
// and the probes together (least squares of relative errors, the anchor weighted as all
// probes; each scale within [0.2, 5], else the single scale stands): the isolated kernels
// of the two kinds differ from their in-model runs by different factors. In the context
// chosen (below, by the two scales' fit), the layers on the own int8 / int4w kernels get a
// third scale when the rows determine it within [0.2, 5] and measured.int8_scale (else
// they share the own kernels' scale). The context the
// layers are priced in is fitted with them: of `context_rules`, the one whose fit leaves
// the smallest residual (ties keep the earlier): how much of a layer's working set the rest
// of the model evicts between its runs differs by model and host. With `verified` policies
// (calibrated or not), that scale is then multiplied by the median over them of the factor
// that predicts each at its measured ratio of dense_us (clamped to [0.5, 2]): the closed
// loop's correction of what isolated kernels miss about this model's compressed layers.
// With probes, both scales are instead fitted again on the anchor, the probes and the
// verified policies together (these weighing as much as the others), in the context chosen;
// with at least three verified policies the overhead may be fitted with them (a per-model
// constant the isolated kernels miss; within [0, half the anchor], kept when it leaves less
// residual per degree of freedom: RefitOnVerified in agents/latency_fit.h); the single
// median factor stands where that fit fails.
StatusOr<LatencyBudget> MakeLatencyBudget(const Graph& graph, const predictors::TrainedPredictor& predictor,
                                          int threads, double ratio, const ModelCalibration& measured = {});

}  // namespace acs
