#include "agents/cost_model.h"

#include <algorithm>
#include <cmath>

namespace acs {

double InLayerSparsity(const LayerConfig& config) {
  if (config.pattern == Pattern::kDense || config.pattern == Pattern::kChannel) return 0.0;
  return std::clamp(config.EffectiveSparsity(), 0.0, 1.0);
}

double FlopsCostModel::LayerCost(const Layer& layer, const LayerConfig& config) const {
  return static_cast<double>(layer.flops) * (1.0 - InLayerSparsity(config));
}

double ParamsCostModel::LayerCost(const Layer& layer, const LayerConfig& config) const {
  return static_cast<double>(layer.params) * (1.0 - InLayerSparsity(config));
}

double BytesCostModel::LayerCost(const Layer& layer, const LayerConfig& config) const {
  double bytes = 4.0;
  switch (config.precision) {
    case Precision::kFp32: bytes = 4.0; break;
    case Precision::kBf16: bytes = 2.0; break;
    case Precision::kInt8: bytes = 1.0; break;
    case Precision::kInt4w: bytes = 0.5; break;
  }
  return static_cast<double>(layer.params) * (1.0 - InLayerSparsity(config)) * bytes;
}

StatusOr<std::shared_ptr<CostModel>> MakeCostModel(const std::string& kind) {
  if (kind == "flops") return std::shared_ptr<CostModel>(std::make_shared<FlopsCostModel>());
  if (kind == "params") return std::shared_ptr<CostModel>(std::make_shared<ParamsCostModel>());
  if (kind == "bytes") return std::shared_ptr<CostModel>(std::make_shared<BytesCostModel>());
  return Status::InvalidArgument("unknown cost '" + kind + "' (expected flops, params or bytes)");
}

namespace {

// Positions of a tensor's channel axis (of `total`) that remain, counted per segment.
int64_t KeptPositionCount(const std::vector<ChannelSegment>& segments, const std::vector<int64_t>& kept,
                          const Graph& graph, int64_t total) {
  int64_t removed = 0;
  for (const ChannelSegment& s : segments) {
    if (s.group < 0 || s.group >= static_cast<int>(kept.size())) continue;
    int64_t gone = graph.groups[s.group].channels - kept[s.group];
    removed += std::min(gone, s.channels) * s.stride;
  }
  return std::max<int64_t>(1, total - removed);
}

}  // namespace

Layer ShrinkLayer(const Layer& layer, const Graph& graph, const std::vector<int64_t>& kept) {
  Layer out = layer;
  int64_t out_after = layer.out_channels;
  int64_t in_after = layer.in_channels;
  if (layer.depthwise()) {
    out_after = KeptPositionCount(layer.input_segments, kept, graph, layer.out_channels);
    in_after = out_after;
  } else {
    if (layer.out_group >= 0 && layer.out_group < static_cast<int>(kept.size())) out_after = kept[layer.out_group];
    in_after = KeptPositionCount(layer.input_segments, kept, graph, layer.in_channels);
  }
  if (out_after == layer.out_channels && in_after == layer.in_channels) return out;
  const double out_ratio = static_cast<double>(out_after) / std::max<int64_t>(1, layer.out_channels);
  const double in_ratio = layer.depthwise() ? 1.0 : static_cast<double>(in_after) / std::max<int64_t>(1, layer.in_channels);
  const int64_t bias = layer.has_bias ? layer.out_channels : 0;
  out.flops = std::llround(static_cast<double>(layer.flops) * out_ratio * in_ratio);
  out.params = std::llround(static_cast<double>(layer.params - bias) * out_ratio * in_ratio) + (layer.has_bias ? out_after : 0);
  out.out_channels = out_after;
  out.in_channels = in_after;
  if (layer.depthwise()) out.groups = out_after;
  return out;
}

std::vector<double> PolicyLayerCosts(const Graph& graph, const Policy& policy_in, const CostModel& model) {
  const Policy policy = ResolvePolicy(policy_in, graph);
  const std::vector<int64_t> kept = KeptChannels(graph, policy);
  std::vector<double> costs;
  costs.reserve(graph.layers.size());
  for (const Layer& layer : graph.layers) {
    LayerConfig config = layer.compressible ? policy.Get(layer.name) : LayerConfig{};
    costs.push_back(model.LayerCost(ShrinkLayer(layer, graph, kept), config));
  }
  return costs;
}

double PolicyCost(const Graph& graph, const Policy& policy, const CostModel& model) {
  double total = 0;
  for (double c : PolicyLayerCosts(graph, policy, model)) total += c;
  return total;
}

double DenseCost(const Graph& graph, const CostModel& model) {
  double total = 0;
  for (const Layer& layer : graph.layers) total += model.LayerCost(layer, LayerConfig{});
  return total;
}

}  // namespace acs
