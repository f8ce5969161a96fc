// Dense convolutions as the runtime runs them (one rule for how a dense layer runs, shared
// by CompileForRuntime and the kernel measurements): oneDNN with the weights reordered once
// for the layer's input size (LibTorch's mkldnn_prepacked::conv2d_prepack / conv2d_run), on
// plain NCHW tensors, a relu after it fused. Each call reorders its input and output
// between NCHW and oneDNN's blocked layout, as a lone convolution optimized for inference
// does; between two such layers nothing else changes layout.
#pragma once

#include <torch/script.h>

#include <array>
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace acs::runtime {

struct DenseConv {
  torch::Tensor weight;  // [O, I / groups, kh, kw], float32
  torch::Tensor bias;    // [O] or undefined
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  std::vector<int64_t> input_shape;  // NCHW the weights are reordered for; any batch runs
  bool fuse_relu = false;            // relu(conv(x)) in one call
};

// The prepacked convolution (a __torch__.torch.classes.mkldnn.ConvOpContext).
// Errors (Internal): LibTorch without oneDNN, or the prepack failed.
StatusOr<c10::IValue> PrepackDenseConv(const DenseConv& conv);

// Inserts mkldnn_prepacked::conv2d_run(x, packed) at the graph's insert point; its output.
torch::jit::Value* InsertDenseConvRun(torch::jit::Graph& graph, torch::jit::Value* x, const c10::IValue& packed);

// A module whose forward(x) is the one layer as the runtime runs it: the prepacked
// convolution, or aten::linear on constant weights (what a dense linear layer stays).
// Errors: PrepackDenseConv's.
StatusOr<torch::jit::Module> DenseConvModule(const DenseConv& conv);
torch::jit::Module DenseLinearModule(const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace acs::runtime
