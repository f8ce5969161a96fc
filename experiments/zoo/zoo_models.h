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

// Names accepted by BuildZooModel: "vgg", "resnet20", "mobilenetv2".
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
