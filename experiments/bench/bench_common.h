// Pieces shared by the benchmark programs: the dense fp32 LibTorch baselines of one layer
// (result files: bench_output.h).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "devices/kernels/conv2d.h"
#include "experiments/bench/bench_output.h"

namespace acs::bench {

// One benchmarked layer: a square conv (groups 1, no dilation) or a linear layer.
struct BenchLayer {
  std::string name;
  bool conv = true;
  int64_t in = 0;      // conv: input channels; linear: in_features (K)
  int64_t out = 0;     // output channels / out_features (O)
  int64_t size = 1;    // conv: input height = width; linear: batch (P)
  int64_t kernel = 1;  // conv: kernel size (square)
  int64_t stride = 1;
  int64_t pad = 0;

  kernels::Conv2dGeometry Geometry() const;
  int64_t K() const { return conv ? in * kernel * kernel : in; }
  int64_t P() const;
  double Macs() const { return static_cast<double>(out) * K() * P(); }
};

// Conv and linear shapes of ResNet-18 / MobileNetV2 at 224x224 and of small 28x28 models.
std::vector<BenchLayer> BenchLayers();

struct DenseOp {
  std::string name;
  std::function<void()> run;
};

// The dense fp32 LibTorch implementations of a conv (square stride and padding, no
// dilation, groups 1) or linear layer; weights prepacked for oneDNN where the API allows
// it (what a deployed dense model would do). An implementation that fails to prepare is
// skipped with a message on stderr.
std::vector<DenseOp> DenseBaselines(bool conv, int64_t stride, int64_t pad, const torch::Tensor& input,
                                    const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace acs::bench
