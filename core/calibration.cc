#include "core/calibration.h"

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/torchscript_model.h"
#include "core/weight_transforms.h"

namespace acs {
namespace {

using JitNode = torch::jit::Node;
using torch::jit::Value;

bool Is(const JitNode* node, const char* kind) { return node->kind() == c10::Symbol::fromQualString(kind); }

// A compressor's activation fake-quant: per tensor, feeding a weighted op's input.
bool IsActivationFakeQuant(JitNode* node) {
  if (!Is(node, "aten::fake_quantize_per_tensor_affine") || node->inputs().size() != 5) return false;
  for (const torch::jit::Use& use : node->output()->uses()) {
    if (use.offset == 0 && IsWeightedOpKind(use.user->kind().toQualString())) return true;
  }
  return false;
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> CalibrationChunks(int64_t n, int64_t batch) {
  std::vector<std::pair<int64_t, int64_t>> out;
  batch = std::max<int64_t>(2, batch);
  for (int64_t start = 0; start < n; start += batch) out.push_back({start, std::min(batch, n - start)});
  if (out.size() > 1 && out.back().second == 1) {
    out.pop_back();
    out.back().second += 1;
  }
  return out;
}

StatusOr<std::vector<std::pair<torch::Tensor, torch::Tensor>>> BatchNormStatistics(torch::jit::Graph& graph,
                                                                                   const torch::jit::Module& self,
                                                                                   const torch::Tensor& calibration,
                                                                                   int64_t batch) {
  std::shared_ptr<torch::jit::Graph> jit = graph.copy();
  std::vector<JitNode*> bn;
  for (JitNode* node : jit->nodes()) {
    if (Is(node, "aten::batch_norm")) bn.push_back(node);
  }
  if (bn.empty()) return std::vector<std::pair<torch::Tensor, torch::Tensor>>{};
  const int64_t n = calibration.defined() ? calibration.size(0) : 0;
  if (n < 2) return Status::InvalidArgument("batch-norm recalibration needs at least 2 calibration samples");
  // Batch norm in training mode with momentum 1 leaves each batch's statistics in the
  // running tensors, which are constants of this copy.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> running(bn.size()), sums(bn.size());
  for (size_t k = 0; k < bn.size(); ++k) {
    torch::Tensor mean = ConstantTensor(bn[k], 3), var = ConstantTensor(bn[k], 4);
    if (!mean.defined() || !var.defined()) continue;
    running[k] = {torch::zeros_like(mean), torch::ones_like(var)};
    sums[k] = {torch::zeros_like(mean, torch::kFloat64), torch::zeros_like(var, torch::kFloat64)};
    ReplaceInput(*jit, bn[k], 3, running[k].first);
    ReplaceInput(*jit, bn[k], 4, running[k].second);
    ReplaceInput(*jit, bn[k], 5, true);  // training: normalize by batch statistics
    ReplaceInput(*jit, bn[k], 6, 1.0);   // momentum 1: running stats = this batch's
  }
  for (auto [start, size] : CalibrationChunks(n, batch)) {
    ACS_ASSIGN_OR_RETURN(torch::Tensor ignored, RunGraph(jit, self, calibration.narrow(0, start, size)));
    (void)ignored;
    const double weight = static_cast<double>(size) / static_cast<double>(n);
    for (size_t k = 0; k < bn.size(); ++k) {
      if (!running[k].first.defined()) continue;
      sums[k].first += running[k].first.to(torch::kFloat64) * weight;
      sums[k].second += running[k].second.to(torch::kFloat64) * weight;
    }
  }
  std::vector<std::pair<torch::Tensor, torch::Tensor>> out(bn.size());
  for (size_t k = 0; k < bn.size(); ++k) {
    if (sums[k].first.defined()) out[k] = {sums[k].first.to(torch::kFloat32), sums[k].second.to(torch::kFloat32)};
  }
  return out;
}

StatusOr<std::vector<std::pair<double, double>>> InputRanges(torch::jit::Graph& graph, const torch::jit::Module& self,
                                                             const torch::Tensor& calibration, int64_t batch,
                                                             const std::vector<JitNode*>& nodes) {
  if (nodes.empty()) return std::vector<std::pair<double, double>>{};
  if (!calibration.defined() || calibration.size(0) == 0) {
    return Status::InvalidArgument("activation ranges need calibration data");
  }
  const std::vector<JitNode*> top = TopLevelNodes(graph);
  std::shared_ptr<torch::jit::Graph> probed = graph.copy();
  const std::vector<JitNode*> probed_top = TopLevelNodes(*probed);
  // The min and max of each input where its node reads it (later in-place ops cannot change
  // them), as 0-d tensors.
  std::vector<Value*> extremes;
  for (JitNode* node : nodes) {
    auto it = std::find(top.begin(), top.end(), node);
    if (it == top.end()) return Status::Internal("a node whose input range is asked for is not in the graph");
    JitNode* copy = probed_top[it - top.begin()];
    torch::jit::WithInsertPoint guard(copy);
    for (const char* kind : {"aten::min", "aten::max"}) {
      extremes.push_back(probed->insert(c10::Symbol::fromQualString(kind), {copy->input(0)}));
    }
  }
  const std::map<Value*, size_t> positions = ValuePositions(*probed);
  std::vector<std::pair<double, double>> ranges(nodes.size(), {INFINITY, -INFINITY});
  for (auto [start, size] : CalibrationChunks(calibration.size(0), batch)) {
    std::shared_ptr<torch::jit::Graph> run = probed->copy();  // RunForValues changes its graph
    const std::vector<Value*> values = EnumerateValues(*run);
    std::vector<Value*> wanted;
    for (Value* v : extremes) wanted.push_back(values.at(positions.at(v)));
    ACS_ASSIGN_OR_RETURN(std::vector<c10::IValue> got, RunForValues(run, self, calibration.narrow(0, start, size),
                                                                    wanted, "measuring activation ranges failed"));
    for (size_t k = 0; k < nodes.size(); ++k) {
      ranges[k].first = std::min(ranges[k].first, got[2 * k].toTensor().item<double>());
      ranges[k].second = std::max(ranges[k].second, got[2 * k + 1].toTensor().item<double>());
    }
  }
  return ranges;
}

StatusOr<Reestimation> ReestimateStatistics(torch::jit::Graph& graph, const torch::jit::Module& self,
                                            const torch::Tensor& calibration, int64_t batch) {
  // Positions among the top-level nodes, the same in a copy.
  const std::vector<JitNode*> top = TopLevelNodes(graph);
  std::vector<size_t> bn_at, quant_at;
  for (size_t i = 0; i < top.size(); ++i) {
    if (Is(top[i], "aten::batch_norm")) bn_at.push_back(i);
    if (IsActivationFakeQuant(top[i])) quant_at.push_back(i);
  }
  // Measured on a copy with the activation fake-quants bypassed, as the compressor measures
  // before it inserts them.
  std::shared_ptr<torch::jit::Graph> work = graph.copy();
  const std::vector<JitNode*> work_top = TopLevelNodes(*work);
  std::vector<JitNode*> work_quants;
  for (size_t i : quant_at) {
    work_top[i]->output()->replaceAllUsesWith(work_top[i]->input(0));
    work_quants.push_back(work_top[i]);
  }
  ACS_ASSIGN_OR_RETURN(auto stats, BatchNormStatistics(*work, self, calibration, batch));
  if (stats.size() != bn_at.size()) return Status::Internal("batch norms in the copy of the graph do not match");
  for (size_t k = 0; k < bn_at.size(); ++k) {
    if (!stats[k].first.defined()) continue;
    ReplaceInput(*work, work_top[bn_at[k]], 3, stats[k].first);
    ReplaceInput(*work, work_top[bn_at[k]], 4, stats[k].second);
  }
  ACS_ASSIGN_OR_RETURN(auto ranges, InputRanges(*work, self, calibration, batch, work_quants));

  Reestimation r;
  auto replace = [&](JitNode* node, size_t input, const c10::IValue& value) {
    r.previous.emplace_back(node, input, node->input(input));
    ReplaceInput(graph, node, input, value);
  };
  for (size_t k = 0; k < bn_at.size(); ++k) {
    if (!stats[k].first.defined()) continue;
    replace(top[bn_at[k]], 3, stats[k].first);
    replace(top[bn_at[k]], 4, stats[k].second);
    ++r.batch_norms;
  }
  for (size_t k = 0; k < quant_at.size(); ++k) {
    const ActivationQuant q = ActivationQuantFromRange(ranges[k].first, ranges[k].second);
    replace(top[quant_at[k]], 1, q.scale);
    replace(top[quant_at[k]], 2, q.zero_point);
    ++r.int8_ranges;
  }
  return r;
}

void UndoReestimation(const Reestimation& reestimation) {
  for (auto it = reestimation.previous.rbegin(); it != reestimation.previous.rend(); ++it) {
    std::get<0>(*it)->replaceInput(std::get<1>(*it), std::get<2>(*it));
  }
}

}  // namespace acs
