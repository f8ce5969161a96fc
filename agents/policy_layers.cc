#include "agents/policy_layers.h"

#include "agents/cost_model.h"

namespace acs {

nlohmann::json PolicyLayersJson(const Graph& graph, const Policy& policy, const LatencyBudget* latency) {
  const FlopsCostModel flops;
  const ParamsCostModel params;
  const std::vector<double> compressed_flops = PolicyLayerCosts(graph, policy, flops);
  const std::vector<double> compressed_params = PolicyLayerCosts(graph, policy, params);
  std::vector<double> predicted, dense_predicted;
  if (latency != nullptr) {
    predicted = latency->PredictLayersUs(graph, policy);
    dense_predicted = latency->PredictLayersUs(graph, Policy{});
  }
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    const Layer& layer = graph.layers[i];
    nlohmann::json l = {{"name", layer.name},
                        {"type", LayerTypeName(layer.type)},
                        {"compressible", layer.compressible},
                        {"flops_dense", layer.flops},
                        {"flops", compressed_flops[i]},
                        {"params_dense", layer.params},
                        {"params", compressed_params[i]}};
    if (i < predicted.size() && i < dense_predicted.size()) {
      l["predicted_us"] = predicted[i];
      l["dense_predicted_us"] = dense_predicted[i];
    }
    layers.push_back(l);
  }
  return layers;
}

}  // namespace acs
