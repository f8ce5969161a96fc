// Helpers over TorchScript graphs shared by the importer, compressor and exporter.
#pragma once

#include <torch/script.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/status.h"

namespace acs {

// A model imported for compression: the IR and the frozen TorchScript graph it mirrors.
struct ImportedModel {
  std::string path;
  Graph graph;
  // Forward graph of the frozen module; never mutated. Its values, enumerated by
  // EnumerateValues(), are graph.values in order; its top-level nodes are graph.nodes.
  std::shared_ptr<torch::jit::Graph> frozen;
  torch::jit::Module module;  // the frozen module; supplies `self` when running copies
  Shape input_shape;
};

// Graph inputs (self first) followed by every top-level node's outputs, in order.
// Two copies of one graph enumerate to the same positions.
std::vector<torch::jit::Value*> EnumerateValues(torch::jit::Graph& graph);
std::vector<torch::jit::Node*> TopLevelNodes(torch::jit::Graph& graph);
// Each value's position in EnumerateValues(graph), the same in every copy of the graph.
std::map<torch::jit::Value*, size_t> ValuePositions(torch::jit::Graph& graph);

// A fresh module whose forward is a copy of `graph` (whose first input is `self` and which
// reads no attributes). Saved with save(), it loads in Python with torch.jit.load.
torch::jit::Module ModuleFromGraph(const torch::jit::Graph& graph);

// Runs `graph` (a copy of a frozen forward) with `self` and one input, returning the
// output tensor (the first tensor of a tuple output). Errors from TorchScript become a Status.
StatusOr<torch::Tensor> RunGraph(const std::shared_ptr<torch::jit::Graph>& graph, const torch::jit::Module& self,
                                 const torch::Tensor& input);

// Runs `graph` (a copy of a frozen forward, changed: its outputs become `values`, which
// belong to it) with `self` and one input, returning `values` as computed. A failure is
// InvalidArgument "`failure`: <TorchScript's message>".
StatusOr<std::vector<c10::IValue>> RunForValues(const std::shared_ptr<torch::jit::Graph>& graph,
                                                const torch::jit::Module& self, const torch::Tensor& input,
                                                const std::vector<torch::jit::Value*>& values,
                                                const std::string& failure = "running the model failed");

// Runs a copy of `graph` on `input` and returns, for each index in `layers` (positions
// among the graph's weighted ops, see IsWeightedOpKind), a copy of that op's input tensor
// as the op sees it.
StatusOr<std::vector<torch::Tensor>> CaptureLayerInputs(torch::jit::Graph& graph, const torch::jit::Module& self,
                                                        const torch::Tensor& input, const std::vector<int>& layers);

// The graph's weighted ops (see IsWeightedOpKind) in order.
std::vector<torch::jit::Node*> WeightedNodes(torch::jit::Graph& graph);

// Input `input` of `node` when it is a constant tensor; else undefined.
torch::Tensor ConstantTensor(torch::jit::Node* node, size_t input);

// Makes input `input` of `node` a new constant `value`, inserted before the node.
void ReplaceInput(torch::jit::Graph& graph, torch::jit::Node* node, size_t input, const c10::IValue& value);

// Runs the module's forward on one input under no-grad, returning the output tensor (the
// first tensor of a tuple output). Errors become a Status.
StatusOr<torch::Tensor> RunModule(torch::jit::Module& module, const torch::Tensor& input);

// The first line of an exception message from TorchScript, without its backtrace.
std::string ShortError(const std::exception& e);

}  // namespace acs

namespace acs {

// Ops that the importer turns into Layers (conv of any kind, linear), in graph order.
bool IsWeightedOpKind(const std::string& kind);

}  // namespace acs
