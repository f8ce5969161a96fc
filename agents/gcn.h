// The AGMC agent's graph encoder (Yu et al., "AGMC: Auto Graph Encoder-Decoder for Model
// Compression and Network Acceleration", 2021; GCN layers as in Kipf & Welling, ICLR
// 2017): a graph convolutional network over the model's layers, connected by data flow,
// whose node embedding of the episode's current layer and mean-pooled graph embedding
// join the DDPG state.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "agents/ddpg.h"
#include "agents/state_encoder.h"
#include "core/graph.h"

namespace acs {

// Undirected adjacency [N, N] (float, 0/1, zero diagonal) of graph.layers: layers i and j
// are connected when one reads a value computed from the other's output through
// non-layer ops only (activations, batch norm, pooling, adds, concatenations, ...).
torch::Tensor LayerAdjacency(const Graph& graph);

// D^-1/2 (A + I) D^-1/2 with D the degree matrix of A + I. `adjacency` is [N, N], symmetric.
torch::Tensor NormalizedAdjacency(const torch::Tensor& adjacency);

// Per-layer node features [N, kGcnFeatures], each min-max normalized over the layers:
// conv / linear, depthwise, in and out channels, kernel, stride, input size, params, FLOPs.
inline constexpr int kGcnFeatures = 9;
torch::Tensor LayerNodeFeatures(const Graph& graph);

struct GcnOptions {
  int hidden = 64;     // units of the first GCN layer
  int embedding = 32;  // units of the second GCN layer: the node embedding
};

// Two GCN layers, H1 = relu(Â X W1) and H = Â H1 W2 (Â the normalized adjacency, X the
// node features, biases omitted here); forward(steps) returns, per step, the embedding of the
// step's layer concatenated with the mean of all node embeddings: [B, 2 * embedding].
class GcnEncoder final : public StateEncoder {
 public:
  // `features` [N, F], `normalized_adjacency` [N, N], `step_nodes`[t] the node of episode
  // step t (in [0, N)).
  GcnEncoder(torch::Tensor features, torch::Tensor normalized_adjacency, std::vector<int64_t> step_nodes,
             GcnOptions options, Rng& rng);
  int64_t dim() const override { return 2 * options_.embedding; }
  torch::Tensor forward(const torch::Tensor& steps) override;
  // Node embeddings [N, embedding].
  torch::Tensor NodeEmbeddings();

 private:
  GcnOptions options_;
  torch::Tensor features_, adjacency_, step_nodes_;
  torch::nn::Linear gc1_{nullptr}, gc2_{nullptr};
};

// Encoders over `graph` whose episode steps are the layers `step_layers` (indices into
// graph.layers, e.g. Env::layers()). `graph` is read here only.
EncoderFactory MakeGcnEncoderFactory(const Graph& graph, const std::vector<int>& step_layers, GcnOptions options = {});

}  // namespace acs
