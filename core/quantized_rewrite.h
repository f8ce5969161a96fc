// Internal to the quantized export (core/quantized_export.cc): reading a compressed model's
// int8 layers, and rewriting its graph with PyTorch's quantized ops.
#pragma once

#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "core/quantized_export.h"
#include "core/status.h"
#include "core/weight_transforms.h"

namespace acs::quantized_rewrite {

bool Is(const torch::jit::Node* n, const char* kind);
bool IsTensor(torch::jit::Value* v);
// aten::add / add_ of two tensors.
bool IsTensorAdd(torch::jit::Node* n);

struct Quant {
  double scale = 1.0;
  int64_t zero_point = 0;
  bool operator==(const Quant& o) const { return scale == o.scale && zero_point == o.zero_point; }
  double lowest() const { return scale * static_cast<double>(ActivationQuant::kMin - zero_point); }
  double highest() const { return scale * static_cast<double>(ActivationQuant::kMax - zero_point); }
};

// The quantization of a compressor's fake-quant node (per tensor, uint8 range).
std::optional<Quant> FakeQuantOf(torch::jit::Node* n);

// An int8 layer the rewrite runs as a quantized op.
struct Int8Layer {
  int index = 0;  // among the graph's weighted nodes
  torch::jit::Node* node = nullptr;
  torch::jit::Node* fake_quant = nullptr;  // its input quantization
  Quant input;
  bool linear = false;
  torch::Tensor weight, bias;  // fp32, a following batch norm folded in
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  torch::jit::Node* batch_norm = nullptr;  // folded, or null
};

// An int8 conv2d / linear the rewrite can run as a quantized op (its input a fake-quant, its
// weights constant; for a conv, an eval-mode batch norm reading its output folded in), or
// nullopt.
std::optional<Int8Layer> ReadInt8Layer(torch::jit::Node* node);

// The end of the chain of single-use relu / hardtanh after `v` (`v` without one).
torch::jit::Value* ChainEnd(torch::jit::Value* v);

// Rewrites one graph in place, node by node in order; then Dequantize(), then dead-code
// elimination removes what it replaced.
class Rewriter {
 public:
  // `ranges`: of every region output (ChainEnd of an int8 layer's or an add's output), by
  // position in EnumerateValues(*graph) before any rewrite; `stats` counts what is rewritten.
  Rewriter(torch::jit::Graph* graph, const std::map<size_t, std::pair<double, double>>* ranges, QuantizedExport* stats);

  // The quantization an int8 layer reading `v` takes, if one does, directly or through a
  // single-use op that selects or reshapes values (quantizing commutes with those).
  std::optional<Quant> NextLayerQuant(torch::jit::Value* v) const;
  bool Replaced(torch::jit::Node* n) const;

  Status RewriteLayer(const Int8Layer& layer);
  // An add of two quantized values, one of them quantized only; false if not.
  bool RewriteAdd(torch::jit::Node* add);
  // An op that keeps its input's quantization, run on the quantized input; false if not.
  bool RewriteKeeping(torch::jit::Node* n);
  // Gives every remaining consumer of a value that now exists only quantized its fp32 form.
  void Dequantize();

  std::set<torch::jit::Node*> int8_fake_quants_;                    // the input fake-quants of the layers to rewrite
  std::set<torch::jit::Node*> emitted_;                             // nodes with a quint8 output, and dequantize
  std::map<torch::jit::Node*, std::pair<int, int64_t>> layer_ops_;  // layer op -> layer index, MACs per output

 private:
  // The quantization of a region's output `v` (the end of a clamp chain).
  Quant OutputQuant(torch::jit::Value* v);
  // Emits `op` (a quantized op whose output quantization is its last two arguments) for the
  // region starting at `producer`'s output `y` and its clamp chain; fuses a leading relu.
  torch::jit::Node* EmitRegion(torch::jit::Node* producer, torch::jit::Value* y, const char* op, const char* op_relu,
                               std::vector<torch::jit::Value*> args);
  void SetQuantized(torch::jit::Value* original, torch::jit::Value* q, Quant quant);
  // `v` as fp32: itself, or a dequantize of its quantized form.
  torch::jit::Value* FloatForm(torch::jit::Value* v);
  // `x` quantized with `quant`, inserted before `before` unless it exists.
  torch::jit::Value* QuantizedInput(torch::jit::Value* x, Quant quant, torch::jit::Node* before);

  torch::jit::Graph* graph_;
  const std::map<size_t, std::pair<double, double>>* ranges_;
  std::map<torch::jit::Value*, size_t> index_;
  QuantizedExport* stats_;
  // A value of the original graph -> its quint8 form.
  std::map<torch::jit::Value*, std::pair<torch::jit::Value*, Quant>> quantized_;
  std::set<torch::jit::Value*> q_only_;   // values whose fp32 producer is replaced
  std::set<torch::jit::Node*> replaced_;  // original nodes left to dead-code elimination
  std::map<torch::jit::Value*, torch::jit::Value*> dequantized_;  // quint8 value -> its dequantize
  std::map<std::tuple<torch::jit::Value*, double, int64_t>, torch::jit::Value*> borders_;
};

}  // namespace acs::quantized_rewrite
