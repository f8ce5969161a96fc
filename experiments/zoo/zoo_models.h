// The model zoo: small Fashion-MNIST classifiers shaped like VGG, ResNet-20 and
// MobileNetV2, built directly as TorchScript modules so that `module.save(path)` writes a
// file Python's torch.jit.load reads.
//
// Every model takes grey images [B, 1, 28, 28] with pixels in [0, 1] and returns logits
// [B, 10]. The dataset normalization (kZooMean, kZooStd) is the first step of forward, so
// callers feed raw [0, 1] pixels. Parameter and buffer names are hierarchical as in
// PyTorch ("layer1.0.conv1.weight", "layer1.0.bn1.running_mean"). Every convolution,
// batch norm and linear layer is a submodule of its own with a forward method, and each
// module has a `training` attribute, so Module::train()/eval() switch batch norm between
// batch statistics (updating the running statistics) and the running statistics.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace acs {

inline constexpr int64_t kZooClasses = 10;
inline constexpr double kZooMean = 0.2860;  // Fashion-MNIST training-set pixel mean
inline constexpr double kZooStd = 0.3530;   // Fashion-MNIST training-set pixel std

// {1, 1, 28, 28}: the input shape of every zoo model.
std::vector<int64_t> ZooInputShape();

// Names accepted by BuildZooModel:
// - "vgg": features.{conv1..conv6, bn1..bn6} (16,16 | 32,32 | 64,64 channels, 2x2 max
//   pool after each pair), flatten of 64x3x3 without global pooling, classifier.fc1
//   (576 -> 256), ReLU, classifier.fc2.
// - "resnet20": conv1 (stride 2), bn1, layer{1,2,3}.{0,1,2}.{conv1,bn1,conv2,bn2} with
//   widths 16/32/64, layer{2,3}.0.downsample.{0 (1x1 conv, stride 2), 1 (BN)}, residual
//   adds, global average pool, fc.
// - "mobilenetv2": conv_stem (stride 2), bn1, blocks.{0..6}.{conv_pw, bn1, conv_dw
//   (depthwise), bn2, conv_pwl, bn3} with ReLU6 (block 0 has expansion 1 and no
//   conv_pw/bn1; the others expand 6x), output channels 16, 24, 24, 32, 32, 64, 64,
//   residual adds in blocks 2, 4 and 6, conv_head (1x1 to 256), bn2, global average
//   pool, classifier.
std::vector<std::string> ZooModelNames();

// Builds the named model with freshly initialized weights: Kaiming-normal (fan-out)
// convolutions, batch norm weight 1 and bias 0, linear weights Kaiming-uniform as in
// PyTorch. The same seed gives the same weights; the global torch generator is not used.
// The module is in training mode and its parameters require grad.
// Returns NotFound for an unknown name.
StatusOr<torch::jit::Module> BuildZooModel(const std::string& name, uint64_t seed);

// Number of elements in all parameters of `module` (buffers excluded).
int64_t CountParameters(const torch::jit::Module& module);

}  // namespace acs
