// Small TorchScript models built in C++ for the core tests, each saved to a file. Every
// model takes TestInputShape() and returns [1, 10] logits.
#pragma once

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
//   [bn_cat], relu, [fuse]; DenseNet-like cat([y, relu(grow(y))], 1) (8 + 4) into
//   [transition]; global pool, [fc].
// - "depthwise": MobileNetV2 inverted residual: [stem, stem_bn] hardswish; [block.expand]
//   1x1 8->16, [block.dw] 3x3 depthwise, [block.project] 1x1 16->8, each with a BN
//   ([block.*_bn]), relu6 (hardtanh 0..6), x + out; [head, head_bn] hardswish; pool; [fc].
// - "grouped": [conv1, bn1], relu, [gconv] 8->8 with groups=2, [bn2], relu, [conv3] 1x1,
//   global pool, [fc].
// - "se": [conv1, bn1] 3->16, relu; squeeze-and-excitation: adaptive_avg_pool2d,
//   [se.reduce] 1x1 16->4, relu, [se.expand] 1x1 4->16, sigmoid, x * s; [conv2] 16->8,
//   relu, global pool, [fc].
// - "unknown_ops": [conv1] 3->8, relu, channel shuffle (reshape to 5-d, transpose,
//   reshape back), [conv2], relu, torch.roll on the channel axis, [conv3], pool, [fc].
std::vector<std::string> TestModelNames();

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

// A fresh path in the per-process temporary directory (removed at exit); the file does
// not exist.
std::string TempPath(const std::string& suffix);

}  // namespace acs::test_models
