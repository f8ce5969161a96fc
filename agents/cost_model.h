// Cost of a compressed layer and of a whole policy (DESIGN §4 budget). The search only
// sees costs through CostModel, so a latency predictor plugs in beside FLOPs / params /
// bytes without the environment changing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/policy.h"
#include "core/status.h"

namespace acs {

// One role: the cost of one layer under one config. `layer` is the layer as it is after
// channel pruning (see ShrinkLayer): its channels, flops and params are already reduced,
// so the config only adds in-layer sparsity and precision. Implementations are
// stateless or internally synchronized; costs are >= 0 and do not increase when
// sparsity increases or precision narrows.
class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual std::string name() const = 0;  // "flops", "params", "bytes", ...
  virtual double LayerCost(const Layer& layer, const LayerConfig& config) const = 0;
};

// Effective FLOPs: layer.flops x (1 - in-layer sparsity); precision does not count.
class FlopsCostModel final : public CostModel {
 public:
  std::string name() const override { return "flops"; }
  double LayerCost(const Layer& layer, const LayerConfig& config) const override;
};

// Non-zero parameters: layer.params x (1 - in-layer sparsity).
class ParamsCostModel final : public CostModel {
 public:
  std::string name() const override { return "params"; }
  double LayerCost(const Layer& layer, const LayerConfig& config) const override;
};

// Bytes of the non-zero weights at their precision (fp32 4, bf16 2, int8 1, int4w 0.5);
// sparse index overhead is not counted.
class BytesCostModel final : public CostModel {
 public:
  std::string name() const override { return "bytes"; }
  double LayerCost(const Layer& layer, const LayerConfig& config) const override;
};

// "flops", "params" or "bytes"; InvalidArgument otherwise.
StatusOr<std::shared_ptr<CostModel>> MakeCostModel(const std::string& kind);

// Share of a layer's weights removed by its in-layer pattern (0 for dense and channel:
// channel pruning is counted in the shrunk shape instead).
double InLayerSparsity(const LayerConfig& config);

// `layer` with in/out channels, flops and params reduced to the kept channels.
Layer ShrinkLayer(const Layer& layer, const Graph& graph, const std::vector<int64_t>& kept);

// Exact cost of the resolved policy on the graph: the sum over every layer (also those
// not compressible, which count dense fp32) of LayerCost of the shrunk layer.
double PolicyCost(const Graph& graph, const Policy& policy, const CostModel& model);
// The terms of PolicyCost: one per layer of graph.layers, in their order.
std::vector<double> PolicyLayerCosts(const Graph& graph, const Policy& policy, const CostModel& model);
// The cost of the dense model.
double DenseCost(const Graph& graph, const CostModel& model);

}  // namespace acs
