// Small TorchScript models built in C++ for the core tests, each saved to a file, and
// helpers to inspect saved modules. Every model of TestModelNames() takes
// TestInputShape() and returns [N, 10] logits.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/graph.h"

namespace acs::test_models {

// {1, 3, 16, 16}.
Shape TestInputShape();

// The models BuildTestModel knows, parameter paths in brackets:
// - "plain": [features.conv1 (with bias), features.bn1], relu, 2x2 max pool,
//   [features.conv2, features.bn2], relu, max pool, flatten of 16x4x4 into
//   [classifier.fc1], relu, [classifier.fc2].
// - "residual": stem [conv1, bn1]; ResNet basic blocks [layer1.*] (x + y, identity) and
//   [layer2.*] (stride 2, 1x1 conv downsample [layer2.downsample.0/1], in-place +=);
//   global average pool, [fc].
// - "concat": cat([relu(branch_a(x)), relu(branch_b(x))], 1) (4 + 6 channels) into
//   [bn_cat], relu, [dw] depthwise 3x3, relu, [fuse] -> y; DenseNet-like
//   cat([y, relu(grow(y))], 1) (8 + 4) into [transition]; global pool, [fc].
// - "depthwise": MobileNetV2 inverted residual: [stem, stem_bn] hardswish; [block.expand]
//   1x1 8->16, [block.dw] 3x3 depthwise, [block.project] 1x1 16->8, each with a BN
//   ([block.*_bn]), relu6 (hardtanh 0..6), x + out; [head, head_bn] hardswish; pool; [fc].
// - "grouped": [conv1, bn1], relu, [gconv] 8->8 with groups=2, [bn2], relu, [conv3] 1x1,
//   global pool, [fc].
// - "se": [conv1, bn1] 3->16, relu; squeeze-and-excitation: adaptive_avg_pool2d,
//   [se.reduce] 1x1 16->4, relu, [se.expand] 1x1 4->16, sigmoid, x * s; [conv2] 16->8
//   3x3 with dilation 2 and padding "same", relu, global pool, [fc].
// - "channel_constants": [conv1] 3->8, x * scale ([1, 8, 1, 1]) + shift ([8, 1, 1]), both
//   parameters, relu, [conv2] 8->8, relu, global pool, [fc].
// - "unknown_ops": [conv1] 3->8, relu, channel shuffle (reshape to 5-d, transpose,
//   reshape back), [conv2], relu, torch.roll on the channel axis, [conv3], pool, [fc].
std::vector<std::string> TestModelNames();
// BuildTestModel also knows, outside TestModelNames():
// - "plain_view": "plain" flattened by x.view(x.size(0), -1);
// - "shared_weights": [conv1] 3->8, relu, then [conv2] 8->8 applied twice (one weight),
//   global pool, [fc];
// - "two_inputs": forward(x, y) returning x + y;
// - hostile models, ordinary at batch 1 ([conv1] 3->8, relu, [conv2] 8->8, relu, global
//   pool, [fc]), so they import: at a larger batch "hog_memory" allocates without bound
//   and "loop_forever" never returns.

// Builds the named model with weights drawn from `seed` and saves it under a per-process
// temporary directory; returns the path (the same path for the same name and seed within
// a process). Batch norms have random weight, bias, running mean and variance so that
// they change the output. Returns the empty string for an unknown name.
std::string BuildTestModel(const std::string& name, uint64_t seed = 1);

// A torchvision model (e.g. "resnet18", "mobilenet_v3_small", 10 classes) with random
// batch-norm statistics, scripted (trace = false) or traced at input 1x3x64x64 by
// /usr/bin/python3 and saved to a file; returns its path, or the empty string when
// python, torch or torchvision is unavailable. Cached per process.
std::string ExportTorchvisionModel(const std::string& name, bool trace);

// Runs `script` with /usr/bin/python3 and the given arguments (no shell quoting: they must
// not contain spaces). Returns false, leaving *output empty, when python is missing or the
// script fails; otherwise *output holds what it printed.
bool RunPython(const std::string& script, const std::vector<std::string>& args, std::string* output);

// A fresh path in the per-process temporary directory (removed at exit); the file does
// not exist.
std::string TempPath(const std::string& suffix);

// Inspecting saved or compressed modules.
struct StoredLayer {
  torch::Tensor weight, bias;  // bias undefined when the op has none
};
// Weight and bias constants of every conv / linear op of the module's forward graph (top
// level, in graph order).
std::vector<StoredLayer> StoredLayers(torch::jit::Module& module);
// The first top-level node of this kind (e.g. "aten::batch_norm") in forward, or null.
torch::jit::Node* FirstNodeOfKind(torch::jit::Module& module, const std::string& kind);
// The constant tensor at a node's input; undefined if it is not one.
torch::Tensor Input(torch::jit::Node* node, size_t input);
// A parameter or buffer by its path, e.g. "features.bn1.running_mean"; undefined if none.
torch::Tensor Param(const torch::jit::Module& module, const std::string& path);

}  // namespace acs::test_models
