// The model IR: a torch-free mirror of a frozen TorchScript graph's top-level nodes,
// with recorded tensor shapes, the compressible layers and their channel groups.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace acs {

using Shape = std::vector<int64_t>;

struct ValueInfo {
  std::string name;        // debug name from TorchScript, e.g. "input.3"
  bool is_tensor = false;
  bool shape_known = false;  // false for values inside control flow or non-tensors
  Shape shape;             // recorded from a run on the given input shape
  int producer = -1;       // node index, -1 for graph inputs
  bool is_constant = false;  // produced by prim::Constant
  bool is_none = false;      // the constant None
  std::vector<int64_t> ints; // value of an int or int[] constant
};

struct Node {
  std::string kind;          // e.g. "aten::conv2d", "aten::add_", "prim::Constant"
  std::vector<int> inputs;   // value indices
  std::vector<int> outputs;  // value indices
  bool has_blocks = false;   // control flow whose inner nodes are not mirrored
};

// Channels [offset, offset + channels * stride) of a tensor's channel axis come from
// channels [0, channels) of `group`, each repeated `stride` times (stride > 1 after a
// flatten of C x H x W into features).
struct ChannelSegment {
  int group = -1;
  int64_t offset = 0;
  int64_t channels = 0;
  int64_t stride = 1;
};

// A constant tensor outside the layers' weights that is indexed by channels and must be
// sliced with them: batch-norm parameters and statistics, per-channel scale constants.
struct ChannelTensor {
  int node = -1;   // node index
  int input = -1;  // which input of the node holds the constant
  int64_t axis = 0;
  std::vector<ChannelSegment> segments;
};

enum class LayerType { kConv2d, kLinear };
const char* LayerTypeName(LayerType type);

// A weighted op. Compressible layers are what a Policy configures.
struct Layer {
  std::string name;         // parameter path without ".weight", e.g. "layer1.0.conv1"
  LayerType type = LayerType::kConv2d;
  int node = -1;            // index into Graph::nodes
  bool compressible = false;
  std::string why_not;      // set when !compressible
  int64_t in_channels = 0;  // linear: in_features
  int64_t out_channels = 0; // linear: out_features
  int64_t groups = 1;
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  Shape input_shape;
  Shape output_shape;
  int64_t flops = 0;        // 2 x multiply-accumulates for one input sample
  int64_t params = 0;       // weight + bias elements
  std::string weight_path;  // e.g. "layer1.0.conv1.weight"; empty if not a parameter
  std::string bias_path;    // empty if no bias
  bool has_bias = false;
  int out_group = -1;       // channel group of the output channels, -1 if none
  int in_group = -1;        // first channel group feeding the input channels, -1 if none
  std::vector<ChannelSegment> input_segments;  // where the input channels come from

  bool depthwise() const {
    return type == LayerType::kConv2d && groups > 1 && groups == in_channels && groups == out_channels;
  }
  // Reduction length of one output: in_channels / groups * kernel area.
  int64_t reduction_size() const { return in_channels / groups * kernel[0] * kernel[1]; }
};

// Channels that must be pruned together: every producer's output channels, every
// batch norm on them, every depthwise conv that carries them, and the input channels of
// every consumer. Derived from data flow, never from the architecture's name.
struct ChannelGroup {
  int64_t channels = 0;
  std::vector<int> producers;  // layer indices whose output channels form this group
  std::vector<int> consumers;  // layer indices whose input channels come from it
  std::vector<int> carriers;   // depthwise layers whose channels are this group's
  bool prunable = true;
  std::string why_not;         // set when !prunable
};

struct Graph {
  std::vector<ValueInfo> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;   // value indices of the model inputs (self excluded)
  std::vector<int> outputs;  // value indices of the model outputs
  std::vector<Layer> layers; // in execution order
  std::vector<ChannelGroup> groups;
  std::vector<ChannelTensor> channel_tensors;

  // Index of the layer with this name, or -1.
  int FindLayer(const std::string& name) const;
  int64_t TotalFlops() const;
  int64_t TotalParams() const;
};

}  // namespace acs
