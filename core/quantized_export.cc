#include "core/quantized_export.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "core/quantized_rewrite.h"
#include "core/torchscript_model.h"

namespace acs {
namespace {

using quantized_rewrite::ChainEnd;
using quantized_rewrite::FakeQuantOf;
using quantized_rewrite::Int8Layer;
using quantized_rewrite::Is;
using quantized_rewrite::IsTensorAdd;
using quantized_rewrite::ReadInt8Layer;
using quantized_rewrite::Rewriter;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Runs a copy of `graph` on `input` and returns, for each of `values` (node outputs of
// `graph`) and each op kind in `probes` (e.g. aten::min), that op applied to the value.
StatusOr<std::vector<c10::IValue>> Probe(Graph& graph, const torch::jit::Module& self, const torch::Tensor& input,
                                         const std::vector<Value*>& values, const std::vector<const char*>& probes) {
  const std::map<Value*, size_t> position = ValuePositions(graph);
  std::shared_ptr<Graph> copy = graph.copy();
  std::vector<Value*> copied = EnumerateValues(*copy);
  std::vector<Value*> results;
  for (Value* v : values) {
    Value* c = copied[position.at(v)];
    torch::jit::WithInsertPoint guard(c->node()->next());
    for (const char* kind : probes) results.push_back(copy->insert(c10::Symbol::fromQualString(kind), {c}));
  }
  return RunForValues(copy, self, input, results);
}

// The min and max of each of `values` over the data, keyed by position in EnumerateValues.
StatusOr<std::map<size_t, std::pair<double, double>>> MeasureRanges(Graph& graph, const torch::jit::Module& self,
                                                                    const torch::Tensor& data, int64_t batch,
                                                                    const std::vector<Value*>& values) {
  const std::map<Value*, size_t> position = ValuePositions(graph);
  std::map<size_t, std::pair<double, double>> ranges;
  const int64_t step = std::max<int64_t>(1, batch);
  for (int64_t start = 0; start < data.size(0); start += step) {
    ACS_ASSIGN_OR_RETURN(std::vector<c10::IValue> out,
                         Probe(graph, self, data.narrow(0, start, std::min(step, data.size(0) - start)), values,
                               {"aten::min", "aten::max"}));
    for (size_t k = 0; k < values.size(); ++k) {
      auto [it, added] = ranges.try_emplace(position.at(values[k]), INFINITY, -INFINITY);
      it->second.first = std::min(it->second.first, out[2 * k].toTensor().item<double>());
      it->second.second = std::max(it->second.second, out[2 * k + 1].toTensor().item<double>());
    }
  }
  return ranges;
}

int CountKind(Graph& graph, const char* kind) {
  int n = 0;
  for (Node* node : graph.nodes()) n += Is(node, kind);
  return n;
}

int CountFakeQuants(torch::jit::Block* block) {
  int n = 0;
  for (Node* node : block->nodes()) {
    n += Is(node, "aten::fake_quantize_per_tensor_affine");
    for (torch::jit::Block* b : node->blocks()) n += CountFakeQuants(b);
  }
  return n;
}

// Costs in this LibTorch build (Debian 1.13, oneDNN engine, 1 thread;
// experiments/bench/quantized_op_costs.py, docs/export.md), fitted to 1x1 and 3x3 convs of
// 16-320 channels inside chains and to tensors of 256-65536 elements: quantize_per_tensor
// and dequantize per call and per element; the oneDNN layout conversion (to_dense /
// to_mkldnn) a border adds next to an fp32 conv, which optimize_for_inference runs in
// oneDNN's layout; and what an int8 conv saves over its fp32 form per conv and per
// multiply-accumulate (a linear layer is credited the per-MAC part only).
constexpr double kQuantizeNs = 2200, kQuantizeNsPerElement = 3.4;
constexpr double kDequantizeNs = 1100, kDequantizeNsPerElement = 1.9;
constexpr double kLayoutConversionNs = 4300;
constexpr double kInt8ConvSavingNs = 9800, kInt8SavingNsPerMac = 0.0092;

bool IsFp32Conv(Node* n) { return Is(n, "aten::conv2d") || Is(n, "aten::_convolution"); }

// Elementwise ops optimize_for_inference keeps in oneDNN's layout after a conv.
bool KeepsLayout(Node* n) {
  return Is(n, "aten::relu") || Is(n, "aten::relu_") || Is(n, "aten::hardtanh") || Is(n, "aten::hardtanh_") ||
         Is(n, "aten::batch_norm");
}

// Whether `v` comes from an fp32 conv, looking back through layout-keeping ops.
bool FromFp32Conv(Value* v) {
  Node* n = v->node();
  while (KeepsLayout(n)) n = n->input(0)->node();
  return IsFp32Conv(n);
}

// Whether an fp32 conv reads `v`, looking on through layout-keeping ops.
bool ReadByFp32Conv(Value* v) {
  for (const torch::jit::Use& use : v->uses()) {
    if (IsFp32Conv(use.user) || (KeepsLayout(use.user) && ReadByFp32Conv(use.user->output()))) return true;
  }
  return false;
}

// The int8 layers of each connected int8 region of a rewritten graph whose quantize and
// dequantize borders cost more than its layers save.
StatusOr<std::set<int>> UneconomicLayers(Graph& graph, const torch::jit::Module& self, const torch::Tensor& sample,
                                         const Rewriter& rewriter) {
  std::vector<Node*> nodes;
  for (Node* n : graph.nodes()) {
    if (rewriter.emitted_.count(n)) nodes.push_back(n);
  }
  std::map<Node*, Node*> parent;
  for (Node* n : nodes) parent[n] = n;
  std::function<Node*(Node*)> root = [&](Node* n) { return parent[n] == n ? n : parent[n] = root(parent[n]); };
  for (Node* n : nodes) {
    for (Value* in : n->inputs()) {
      if (parent.count(in->node())) parent[root(n)] = root(in->node());
    }
  }
  std::vector<Value*> sized;
  for (Node* n : nodes) {
    if (rewriter.layer_ops_.count(n) || Is(n, "aten::quantize_per_tensor") || Is(n, "aten::dequantize")) {
      sized.push_back(n->output());
    }
  }
  ACS_ASSIGN_OR_RETURN(std::vector<c10::IValue> numel, Probe(graph, self, sample, sized, {"aten::numel"}));
  std::map<Node*, double> saving_ns, border_ns;
  std::map<Node*, std::set<int>> layers;
  for (size_t k = 0; k < sized.size(); ++k) {
    Node* n = sized[k]->node();
    const double elements = static_cast<double>(numel[k].toInt());
    auto op = rewriter.layer_ops_.find(n);
    if (op != rewriter.layer_ops_.end()) {
      const bool conv = Is(n, "quantized::conv2d") || Is(n, "quantized::conv2d_relu");
      saving_ns[root(n)] +=
          (conv ? kInt8ConvSavingNs : 0) + elements * static_cast<double>(op->second.second) * kInt8SavingNsPerMac;
      layers[root(n)].insert(op->second.first);
    } else {
      const bool dequantize = Is(n, "aten::dequantize");
      border_ns[root(n)] += dequantize ? kDequantizeNs + elements * kDequantizeNsPerElement
                                       : kQuantizeNs + elements * kQuantizeNsPerElement;
      if (dequantize ? ReadByFp32Conv(n->output()) : FromFp32Conv(n->input(0))) {
        border_ns[root(n)] += kLayoutConversionNs;
      }
    }
  }
  std::set<int> out;
  for (const auto& [region, indices] : layers) {
    if (border_ns[region] >= saving_ns[region]) out.insert(indices.begin(), indices.end());
  }
  return out;
}

struct Rewritten {
  std::shared_ptr<Graph> graph;
  QuantizedExport stats;
  std::set<int> uneconomic;  // layers of regions not worth their borders
};

// One rewrite of `compressed`, the int8 layers in `fp32_layers` run in fp32 (their
// fake-quant dropped, their weights still on the int8 grid).
StatusOr<Rewritten> Rewrite(const torch::jit::Module& compressed, const QuantizedExportOptions& options,
                            const std::map<size_t, std::pair<double, double>>& ranges,
                            const std::set<int>& fp32_layers) {
  Rewritten r;
  r.graph = compressed.get_method("forward").graph()->copy();
  Graph& graph = *r.graph;
  std::vector<Node*> weighted = WeightedNodes(graph);
  for (int i : fp32_layers) {
    Node* fq = weighted[i]->input(0)->node();
    if (FakeQuantOf(fq)) weighted[i]->replaceInput(0, fq->input(0));
  }
  Rewriter rewriter(&graph, &ranges, &r.stats);
  std::map<Node*, Int8Layer> layers;
  for (size_t i = 0; i < weighted.size(); ++i) {
    if (std::optional<Int8Layer> layer = ReadInt8Layer(weighted[i])) {
      layer->index = static_cast<int>(i);
      rewriter.int8_fake_quants_.insert(layer->fake_quant);
      layers[weighted[i]] = std::move(*layer);
    }
  }
  // TorchScript reports a graph it cannot build (an op without a fitting schema) by throwing.
  try {
    for (Node* node : std::vector<Node*>(graph.nodes().begin(), graph.nodes().end())) {
      if (rewriter.Replaced(node)) continue;
      auto layer = layers.find(node);
      if (layer != layers.end()) {
        ACS_RETURN_IF_ERROR(rewriter.RewriteLayer(layer->second));
      } else if (!rewriter.RewriteAdd(node)) {
        rewriter.RewriteKeeping(node);
      }
    }
    rewriter.Dequantize();
    torch::jit::EliminateDeadCode(r.graph);
  } catch (const std::exception& e) {
    return Status::Internal("exporting the int8 layers as quantized ops failed: " + ShortError(e));
  }
  ACS_ASSIGN_OR_RETURN(r.uneconomic,
                       UneconomicLayers(graph, compressed, options.calibration.narrow(0, 0, 1), rewriter));
  r.stats.fp32_layers = static_cast<int>(fp32_layers.size());
  r.stats.quantize_nodes = CountKind(graph, "aten::quantize_per_tensor");
  r.stats.dequantize_nodes = CountKind(graph, "aten::dequantize");
  return r;
}

}  // namespace

std::string QuantizedExportSummary(const QuantizedExport& e) {
  std::string s = "int8 as quantized ops: " + std::to_string(e.quantized_layers) + " layers, " +
                  std::to_string(e.quantized_adds) + " adds; " + std::to_string(e.quantize_nodes) + " quantize, " +
                  std::to_string(e.dequantize_nodes) + " dequantize; " + std::to_string(e.calibrated_outputs) +
                  " outputs on calibrated ranges";
  if (e.fp32_layers > 0) {
    s += "; " + std::to_string(e.fp32_layers) +
         " int8 layers run in fp32 (their regions' borders cost more than int8 saves)";
  }
  if (e.simulated_layers > 0) s += "; " + std::to_string(e.simulated_layers) + " int8 layers left simulated";
  return s;
}

StatusOr<QuantizedExport> ExportQuantizedOps(const torch::jit::Module& compressed,
                                             const QuantizedExportOptions& options) {
  torch::NoGradGuard no_grad;
  std::shared_ptr<torch::jit::Graph> graph = compressed.get_method("forward").graph()->copy();
  const int fake_quants = CountFakeQuants(graph->block());
  // The output of every region an int8 layer or an add could end, for any choice of regions.
  std::vector<torch::jit::Value*> region_ends;
  int int8_layers = 0;
  for (torch::jit::Node* node : graph->nodes()) {
    torch::jit::Value* y = nullptr;
    if (std::optional<Int8Layer> layer = ReadInt8Layer(node)) {
      ++int8_layers;
      y = layer->batch_norm ? layer->batch_norm->output() : node->output();
    } else if (IsTensorAdd(node)) {
      y = node->output();
    }
    if (y) region_ends.push_back(ChainEnd(y));
  }
  if (int8_layers == 0) {
    QuantizedExport out;
    out.module = compressed;
    out.simulated_layers = fake_quants;
    return out;
  }
  if (!options.calibration.defined() || options.calibration.size(0) == 0) {
    return Status::FailedPrecondition(
        "exporting int8 layers as quantized ops needs calibration data for the ranges of "
        "their outputs");
  }
  ACS_ASSIGN_OR_RETURN(auto ranges,
                       MeasureRanges(*graph, compressed, options.calibration, options.calibration_batch, region_ends));
  // Regions not worth their borders run in fp32; the rest may then form other regions.
  std::set<int> fp32_layers;
  for (;;) {
    ACS_ASSIGN_OR_RETURN(Rewritten r, Rewrite(compressed, options, ranges, fp32_layers));
    if (r.uneconomic.empty() || !options.drop_uneconomic_regions) {
      r.stats.simulated_layers = fake_quants - r.stats.quantized_layers - r.stats.fp32_layers;
      r.stats.module = ModuleFromGraph(*r.graph);
      return r.stats;
    }
    fp32_layers.insert(r.uneconomic.begin(), r.uneconomic.end());
  }
}

}  // namespace acs
