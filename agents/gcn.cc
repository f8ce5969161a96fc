#include "agents/gcn.h"

#include <cmath>
#include <map>
#include <set>

namespace acs {

torch::Tensor LayerAdjacency(const Graph& graph) {
  const int64_t n = static_cast<int64_t>(graph.layers.size());
  std::map<int, int> layer_of_node;
  for (int i = 0; i < static_cast<int>(n); ++i) layer_of_node[graph.layers[i].node] = i;
  // sources[k]: the layers whose outputs reach node k's outputs through non-layer ops.
  std::vector<std::set<int>> sources(graph.nodes.size());
  torch::Tensor a = torch::zeros({n, n});
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    std::set<int> reaching;
    for (int v : graph.nodes[k].inputs) {
      const int p = v >= 0 && v < static_cast<int>(graph.values.size()) ? graph.values[v].producer : -1;
      if (p >= 0 && p < static_cast<int>(k)) reaching.insert(sources[p].begin(), sources[p].end());
    }
    auto layer = layer_of_node.find(static_cast<int>(k));
    if (layer == layer_of_node.end()) {
      sources[k] = std::move(reaching);
      continue;
    }
    const int j = layer->second;
    for (int i : reaching) {
      if (i == j) continue;
      a[i][j] = 1.0;
      a[j][i] = 1.0;
    }
    sources[k] = {j};
  }
  return a;
}

torch::Tensor NormalizedAdjacency(const torch::Tensor& adjacency) {
  torch::Tensor a = adjacency.to(torch::kFloat32) + torch::eye(adjacency.size(0));
  torch::Tensor d = a.sum(1).rsqrt();
  return d.unsqueeze(1) * a * d.unsqueeze(0);
}

torch::Tensor LayerNodeFeatures(const Graph& graph) {
  const int64_t n = static_cast<int64_t>(graph.layers.size());
  torch::Tensor x = torch::zeros({n, kGcnFeatures}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    const Layer& l = graph.layers[i];
    const double input_size = l.input_shape.size() >= 4 ? static_cast<double>(l.input_shape[2] * l.input_shape[3]) : 1.0;
    const double row[kGcnFeatures] = {l.type == LayerType::kLinear ? 1.0 : 0.0, l.depthwise() ? 1.0 : 0.0,
                                      static_cast<double>(l.in_channels), static_cast<double>(l.out_channels),
                                      static_cast<double>(l.kernel[0]), static_cast<double>(l.stride[0]),
                                      input_size, static_cast<double>(l.params), static_cast<double>(l.flops)};
    for (int f = 0; f < kGcnFeatures; ++f) x[i][f] = row[f];
  }
  if (n > 0) {
    torch::Tensor lo = std::get<0>(x.min(0)), range = std::get<0>(x.max(0)) - lo;
    x = torch::where(range > 0, (x - lo) / range.clamp_min(1e-30), torch::zeros_like(x));
  }
  return x.to(torch::kFloat32);
}

GcnEncoder::GcnEncoder(torch::Tensor features, torch::Tensor normalized_adjacency, std::vector<int64_t> step_nodes,
                       GcnOptions options, Rng& rng)
    : options_(options) {
  features_ = register_buffer("features", features.to(torch::kFloat32));
  adjacency_ = register_buffer("adjacency", normalized_adjacency.to(torch::kFloat32));
  step_nodes_ = register_buffer("step_nodes", torch::tensor(step_nodes, torch::kInt64));
  gc1_ = register_module("gc1", torch::nn::Linear(features_.size(1), options.hidden));
  gc2_ = register_module("gc2", torch::nn::Linear(options.hidden, options.embedding));
  for (torch::nn::Linear* layer : {&gc1_, &gc2_}) {
    const double bound = 1 / std::sqrt(static_cast<double>((*layer)->weight.size(1)));
    FillUniform((*layer)->weight, bound, rng);
    FillUniform((*layer)->bias, bound, rng);
  }
}

torch::Tensor GcnEncoder::NodeEmbeddings() {
  torch::Tensor h = torch::relu(adjacency_.matmul(gc1_->forward(features_)));
  return adjacency_.matmul(gc2_->forward(h));
}

torch::Tensor GcnEncoder::forward(const torch::Tensor& steps) {
  torch::Tensor h = NodeEmbeddings();
  torch::Tensor nodes = h.index_select(0, step_nodes_.index_select(0, steps));
  return torch::cat({nodes, h.mean(0, /*keepdim=*/true).expand({steps.size(0), h.size(1)})}, 1);
}

EncoderFactory MakeGcnEncoderFactory(const Graph& graph, const std::vector<int>& step_layers, GcnOptions options) {
  torch::Tensor features = LayerNodeFeatures(graph);
  torch::Tensor adjacency = NormalizedAdjacency(LayerAdjacency(graph));
  std::vector<int64_t> nodes(step_layers.begin(), step_layers.end());
  return [features, adjacency, nodes, options](Rng& rng) -> std::shared_ptr<StateEncoder> {
    return std::make_shared<GcnEncoder>(features, adjacency, nodes, options, rng);
  };
}

}  // namespace acs
