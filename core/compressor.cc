#include "core/compressor.h"

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/calibration.h"
#include "core/reconstruction.h"
#include "core/weight_transforms.h"

namespace acs {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Everything the compressed graph differs in, with tensors in their physical
// (channels removed) shapes. Undefined tensors mean "unchanged".
struct Plan {
  std::vector<torch::Tensor> keep;            // per group: kept channel indices, sorted
  std::vector<torch::Tensor> weight, bias;    // per layer
  std::vector<torch::Tensor> mask;            // per layer: sparsity pattern, undefined = none
  std::vector<int64_t> groups;                // per layer: new groups of a depthwise conv; 0 = same
  std::vector<torch::Tensor> channel_tensor;  // per Graph::channel_tensors entry
  std::map<int, std::pair<torch::Tensor, torch::Tensor>> bn_stats;  // node -> (mean, var)
  std::map<int, ActivationQuant> act_quant;                         // layer -> input quantization
};

// Kept positions along an axis of `total` entries whose channels come from `segments`;
// undefined when every position is kept.
torch::Tensor KeptPositions(const std::vector<ChannelSegment>& segments, const std::vector<torch::Tensor>& keep,
                            int64_t total) {
  bool any = false;
  for (const ChannelSegment& s : segments) any |= keep[s.group].defined();
  if (!any) return {};
  std::vector<char> kept(total, 1);
  for (const ChannelSegment& s : segments) {
    if (!keep[s.group].defined()) continue;
    std::vector<char> channel_kept(s.channels, 0);
    auto idx = keep[s.group].accessor<int64_t, 1>();
    for (int64_t i = 0; i < idx.size(0); ++i) channel_kept[idx[i]] = 1;
    for (int64_t c = 0; c < s.channels; ++c) {
      for (int64_t j = 0; j < s.stride; ++j) {
        int64_t pos = s.offset + c * s.stride + j;
        if (pos < total) kept[pos] = channel_kept[c];
      }
    }
  }
  std::vector<int64_t> positions;
  for (int64_t i = 0; i < total; ++i) {
    if (kept[i]) positions.push_back(i);
  }
  return torch::tensor(positions, torch::kInt64);
}

torch::Tensor Select(const torch::Tensor& t, int64_t axis, const torch::Tensor& positions) {
  return positions.defined() ? t.index_select(axis, positions) : t;
}

// Scatters `physical` back into a zero tensor of `dense`'s shape along `axis`.
torch::Tensor Expand(const torch::Tensor& physical, const torch::Tensor& dense, int64_t axis,
                     const torch::Tensor& positions, bool fill_from_dense) {
  if (!positions.defined()) return physical;
  std::vector<int64_t> shape = physical.sizes().vec();
  shape[axis] = dense.size(axis);
  torch::Tensor out =
      fill_from_dense && dense.sizes().vec() == shape ? dense.clone() : torch::zeros(shape, physical.options());
  return out.index_copy_(axis, positions, physical);
}

struct LayerPositions {
  torch::Tensor out;  // kept output channels, undefined = all
  torch::Tensor in;   // kept input channels (features), undefined = all
};

LayerPositions PositionsOf(const Layer& layer, const Plan& plan) {
  LayerPositions p;
  if (layer.depthwise()) {
    p.out = KeptPositions(layer.input_segments, plan.keep, layer.out_channels);
    return p;
  }
  if (layer.out_group >= 0) p.out = plan.keep[layer.out_group];
  p.in = KeptPositions(layer.input_segments, plan.keep, layer.in_channels);
  return p;
}

void ChooseChannels(const Graph& g, const Policy& policy, const std::vector<Node*>& nodes, Plan* plan) {
  plan->keep.assign(g.groups.size(), {});
  const std::vector<int64_t> kept = KeptChannels(g, policy);
  for (size_t gi = 0; gi < g.groups.size(); ++gi) {
    const ChannelGroup& group = g.groups[gi];
    const int64_t keep = kept[gi];
    if (keep >= group.channels) continue;
    // L1 norm of each output channel, normalized per producer so that layers of
    // different scale weigh the same.
    torch::Tensor importance = torch::zeros({group.channels});
    for (int li : group.producers) {
      torch::Tensor w = ConstantTensor(nodes[g.layers[li].node], 1);
      torch::Tensor rows = w.reshape({w.size(0), -1}).abs().sum(1).to(torch::kFloat32);
      importance += rows / rows.mean().clamp_min(1e-12);
    }
    plan->keep[gi] = std::get<0>(std::get<1>(importance.topk(keep)).sort());
  }
}

void TransformLayers(const Graph& g, const Policy& policy, const std::vector<Node*>& nodes, Plan* plan) {
  plan->weight.assign(g.layers.size(), {});
  plan->bias.assign(g.layers.size(), {});
  plan->groups.assign(g.layers.size(), 0);
  plan->mask.assign(g.layers.size(), {});
  for (size_t li = 0; li < g.layers.size(); ++li) {
    const Layer& layer = g.layers[li];
    if (!layer.compressible) continue;
    LayerConfig config = policy.Get(layer.name);
    LayerPositions pos = PositionsOf(layer, *plan);
    Node* node = nodes[layer.node];
    torch::Tensor w = Select(Select(ConstantTensor(node, 1), 0, pos.out), 1, pos.in);
    torch::Tensor b = layer.has_bias ? Select(ConstantTensor(node, 2), 0, pos.out) : torch::Tensor();
    bool changed = pos.out.defined() || pos.in.defined();
    if (config.pattern != Pattern::kDense && config.pattern != Pattern::kChannel) {
      plan->mask[li] = PatternMask(w, config);
      w = w.masked_fill(plan->mask[li] == 0, 0.0);
      changed = true;
    }
    if (config.precision != Precision::kFp32) {
      w = SimulatePrecision(w, config.precision);
      changed = true;
    }
    if (!changed) continue;
    plan->weight[li] = w.contiguous();
    plan->bias[li] = b;
    if (layer.depthwise() && pos.out.defined()) plan->groups[li] = pos.out.numel();
  }
  plan->channel_tensor.assign(g.channel_tensors.size(), {});
  for (size_t ci = 0; ci < g.channel_tensors.size(); ++ci) {
    const ChannelTensor& ct = g.channel_tensors[ci];
    torch::Tensor t = ConstantTensor(nodes[ct.node], ct.input);
    torch::Tensor positions = KeptPositions(ct.segments, plan->keep, t.size(ct.axis));
    if (positions.defined()) plan->channel_tensor[ci] = t.index_select(ct.axis, positions).contiguous();
  }
}

// Index of the groups argument of a convolution node.
size_t GroupsInput(Node* node) { return std::string(node->kind().toQualString()) == "aten::_convolution" ? 8 : 6; }

// The compressed forward graph. With remove_channels false, tensors are expanded back to
// their dense shapes with removed channels zero (the masked simulation).
std::shared_ptr<torch::jit::Graph> Materialize(const ImportedModel& model, const Plan& plan, bool remove_channels) {
  const Graph& g = model.graph;
  std::shared_ptr<torch::jit::Graph> jit = model.frozen->copy();
  std::vector<Node*> nodes = TopLevelNodes(*jit);  // before inserting constants
  for (size_t li = 0; li < g.layers.size(); ++li) {
    if (!plan.weight[li].defined()) continue;
    const Layer& layer = g.layers[li];
    Node* node = nodes[layer.node];
    torch::Tensor w = plan.weight[li], b = plan.bias[li];
    if (!remove_channels) {
      LayerPositions pos = PositionsOf(layer, plan);
      torch::Tensor dense_w = ConstantTensor(node, 1);
      w = Expand(Expand(w, dense_w, 1, pos.in, false), dense_w, 0, pos.out, false);
      if (b.defined()) b = Expand(b, ConstantTensor(node, 2), 0, pos.out, false);
    } else if (plan.groups[li] > 0) {
      ReplaceInput(*jit, node, GroupsInput(node), plan.groups[li]);
    }
    ReplaceInput(*jit, node, 1, w);
    if (b.defined()) ReplaceInput(*jit, node, 2, b);
  }
  std::map<std::pair<int, int>, const ChannelTensor*> channel_tensor_at;
  for (size_t ci = 0; ci < g.channel_tensors.size(); ++ci) {
    const ChannelTensor& ct = g.channel_tensors[ci];
    channel_tensor_at[{ct.node, ct.input}] = &ct;
    if (remove_channels && plan.channel_tensor[ci].defined()) {
      ReplaceInput(*jit, nodes[ct.node], ct.input, plan.channel_tensor[ci]);
    }
  }
  for (const auto& [node_index, stats] : plan.bn_stats) {
    Node* node = nodes[node_index];
    for (int k = 0; k < 2; ++k) {
      int input = 3 + k;
      torch::Tensor t = k == 0 ? stats.first : stats.second;
      auto it = channel_tensor_at.find({node_index, input});
      if (!remove_channels && it != channel_tensor_at.end()) {
        torch::Tensor dense = ConstantTensor(node, input);
        t = Expand(t, dense, 0, KeptPositions(it->second->segments, plan.keep, dense.size(0)), true);
      }
      ReplaceInput(*jit, node, input, t);
    }
  }
  for (const auto& [li, q] : plan.act_quant) {
    Node* node = nodes[g.layers[li].node];
    torch::jit::WithInsertPoint guard(node);
    Value* quantized =
        jit->insert(c10::Symbol::fromQualString("aten::fake_quantize_per_tensor_affine"),
                    {node->input(0), q.scale, q.zero_point, ActivationQuant::kMin, ActivationQuant::kMax});
    node->replaceInput(0, quantized);
  }
  return jit;
}

// Floating-point work of SolveMaskedLeastSquares for this mask: one factorization per
// distinct row support.
double RefitFlops(const torch::Tensor& mask, int64_t rows, int64_t inputs) {
  if (!mask.defined()) return std::pow(static_cast<double>(inputs), 3) / 3;
  torch::Tensor m = (mask.reshape({rows, inputs}) != 0);
  torch::Tensor unique_rows = std::get<0>(torch::unique_dim(m, 0));
  torch::Tensor support = unique_rows.sum(1).to(torch::kFloat64);
  return (support.pow(3) / 3).sum().item<double>();
}

// Floating-point work of SolveMaskedLeastSquaresSweep: the factorizations and the updates.
double SweepFlops(int64_t rows, int64_t inputs) {
  const double k = static_cast<double>(inputs);
  return k * k * k + 2 * static_cast<double>(rows) * k * k;
}

enum class Refit { kNone, kExact, kSweep };

Refit RefitOf(const CompressorOptions& options, const torch::Tensor& mask, int64_t rows, int64_t inputs) {
  if (inputs <= options.max_reconstruction_inputs && RefitFlops(mask, rows, inputs) <= options.max_reconstruction_flops)
    return Refit::kExact;
  return SweepFlops(rows, inputs) <= options.max_sweep_flops ? Refit::kSweep : Refit::kNone;
}

// Refits every layer whose own sparsity pattern or input channels the policy changed, in
// execution order, so that each sees the compressed model's activations including the
// refits before it.
Status ReconstructLayers(const ImportedModel& model, const Policy& policy, const CompressorOptions& options,
                         Plan* plan) {
  const Graph& g = model.graph;
  torch::Tensor images =
      options.calibration.narrow(0, 0, std::min(options.calibration.size(0), options.reconstruction_images));
  std::vector<Node*> nodes = TopLevelNodes(*model.frozen);
  torch::Generator generator = at::detail::createCPUGenerator(options.seed);
  std::vector<int> refit;  // which layers, in order; refits never change this choice
  std::vector<Refit> how;
  for (size_t li = 0; li < g.layers.size(); ++li) {
    const Layer& layer = g.layers[li];
    if (!plan->weight[li].defined() || !layer.compressible || layer.groups != 1) continue;
    LayerPositions pos = PositionsOf(layer, *plan);
    if (!plan->mask[li].defined() && !pos.in.defined()) continue;  // same inputs, same support
    const int64_t rows = plan->weight[li].size(0), inputs = plan->weight[li].numel() / rows;
    const Refit r = RefitOf(options, plan->mask[li], rows, inputs);
    if (r == Refit::kNone) continue;
    refit.push_back(static_cast<int>(li));
    how.push_back(r);
  }
  if (refit.empty()) return Status::Ok();
  // The dense model's inputs of every refit layer, in one pass.
  ACS_ASSIGN_OR_RETURN(std::vector<torch::Tensor> dense_inputs,
                       CaptureLayerInputs(*model.frozen, model.module, images, refit));
  for (size_t r = 0; r < refit.size(); ++r) {
    const int li = refit[r];
    const Layer& layer = g.layers[li];
    LayerPositions pos = PositionsOf(layer, *plan);
    std::shared_ptr<torch::jit::Graph> current = Materialize(model, *plan, /*remove_channels=*/true);
    ACS_ASSIGN_OR_RETURN(std::vector<torch::Tensor> x_new, CaptureLayerInputs(*current, model.module, images, {li}));
    const torch::Tensor x_old = std::move(dense_inputs[r]);
    int64_t available = LayerInputColumnCount(layer, x_old);
    torch::Tensor columns = torch::randperm(available, generator, torch::kInt64)
                                .narrow(0, 0, std::min(available, options.reconstruction_columns));
    torch::Tensor w_old = Select(ConstantTensor(nodes[layer.node], 1), 0, pos.out);
    torch::Tensor y = w_old.reshape({w_old.size(0), -1}).matmul(LayerInputColumns(layer, x_old, columns));
    torch::Tensor b_old = layer.has_bias ? Select(ConstantTensor(nodes[layer.node], 2), 0, pos.out) : torch::Tensor();
    if (b_old.defined()) y += b_old.unsqueeze(1);
    torch::Tensor x = LayerInputColumns(layer, x_new[0], columns);
    auto [w, b] = how[r] == Refit::kExact ? SolveMaskedLeastSquares(x, y, plan->mask[li], layer.has_bias)
                                          : SolveMaskedLeastSquaresSweep(x, y, plan->mask[li], layer.has_bias);
    LayerConfig config = policy.Get(layer.name);
    plan->weight[li] = SimulatePrecision(w.view(plan->weight[li].sizes()), config.precision).contiguous();
    if (b.defined()) plan->bias[li] = b;
  }
  return Status::Ok();
}

// Re-estimates every batch norm's running statistics on the calibration data with the
// compressed weights.
Status RecalibrateBatchNorm(const ImportedModel& model, const CompressorOptions& options, Plan* plan) {
  const Graph& g = model.graph;
  std::vector<int> bn_nodes;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    if (g.nodes[ni].kind == "aten::batch_norm") bn_nodes.push_back(static_cast<int>(ni));
  }
  if (bn_nodes.empty()) return Status::Ok();
  std::shared_ptr<torch::jit::Graph> jit = Materialize(model, *plan, /*remove_channels=*/true);
  ACS_ASSIGN_OR_RETURN(auto stats,
                       BatchNormStatistics(*jit, model.module, options.calibration, options.calibration_batch));
  for (size_t k = 0; k < stats.size() && k < bn_nodes.size(); ++k) {
    if (stats[k].first.defined()) plan->bn_stats[bn_nodes[k]] = stats[k];
  }
  return Status::Ok();
}

// Measures the input range of every int8 layer on the calibration data.
Status CalibrateActivations(const ImportedModel& model, const Policy& policy, const CompressorOptions& options,
                            Plan* plan) {
  const Graph& g = model.graph;
  std::vector<int> int8_layers;
  for (size_t li = 0; li < g.layers.size(); ++li) {
    if (g.layers[li].compressible && policy.Get(g.layers[li].name).precision == Precision::kInt8)
      int8_layers.push_back(static_cast<int>(li));
  }
  if (int8_layers.empty()) return Status::Ok();
  if (!options.calibration.defined() || options.calibration.size(0) == 0) {
    return Status::FailedPrecondition("layer '" + g.layers[int8_layers[0]].name +
                                      "' is int8, which needs calibration data for its activation range");
  }
  std::shared_ptr<torch::jit::Graph> jit = Materialize(model, *plan, /*remove_channels=*/true);
  const std::vector<Node*> layer_nodes = WeightedNodes(*jit);
  std::vector<Node*> int8_nodes;
  for (int li : int8_layers) int8_nodes.push_back(layer_nodes.at(li));
  ACS_ASSIGN_OR_RETURN(auto ranges,
                       InputRanges(*jit, model.module, options.calibration, options.calibration_batch, int8_nodes));
  for (size_t k = 0; k < int8_layers.size(); ++k) {
    plan->act_quant[int8_layers[k]] = ActivationQuantFromRange(ranges[k].first, ranges[k].second);
  }
  return Status::Ok();
}

int64_t Numel(const torch::Tensor& t) { return t.defined() ? t.numel() : 0; }

}  // namespace

StatusOr<torch::Tensor> CompressedModel::Forward(const torch::Tensor& input) { return RunModule(module, input); }

Status CompressedModel::Save(const std::string& path) {
  std::string tmp = path + ".tmp";
  try {
    module.save(tmp);
  } catch (const std::exception& e) {
    return Status::FailedPrecondition("cannot write '" + path + "': " + ShortError(e));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::FailedPrecondition("cannot write '" + path + "': " + ec.message());
  return Status::Ok();
}

StatusOr<CompressedModel> Compress(const ImportedModel& model, const Policy& policy_in,
                                   const CompressorOptions& options) {
  ACS_RETURN_IF_ERROR(ValidatePolicy(policy_in, model.graph));
  Policy policy = ResolvePolicy(policy_in, model.graph);
  const Graph& g = model.graph;
  std::vector<torch::jit::Node*> nodes = TopLevelNodes(*model.frozen);
  torch::NoGradGuard no_grad;

  Plan plan;
  ChooseChannels(g, policy, nodes, &plan);
  TransformLayers(g, policy, nodes, &plan);
  bool have_data = options.calibration.defined() && options.calibration.size(0) > 0;
  if (have_data) {
    if (options.calibration.sizes().slice(1) != c10::IntArrayRef(model.input_shape).slice(1)) {
      return Status::InvalidArgument("calibration data has shape " + std::to_string(options.calibration.dim()) +
                                     "-d sample " + c10::str(options.calibration.sizes().slice(1)) +
                                     " but the model takes " + c10::str(c10::IntArrayRef(model.input_shape).slice(1)));
    }
    if (options.reconstruct) ACS_RETURN_IF_ERROR(ReconstructLayers(model, policy, options, &plan));
    if (options.recalibrate_batch_norm) ACS_RETURN_IF_ERROR(RecalibrateBatchNorm(model, options, &plan));
  }
  ACS_RETURN_IF_ERROR(CalibrateActivations(model, policy, options, &plan));

  CompressedModel out;
  out.policy_hash = policy_in.Hash();
  std::shared_ptr<torch::jit::Graph> jit = Materialize(model, plan, options.remove_channels);
  out.module = ModuleFromGraph(*jit);
  std::vector<torch::jit::Node*> layer_nodes = WeightedNodes(*jit);
  for (size_t li = 0; li < g.layers.size(); ++li) {
    const Layer& layer = g.layers[li];
    torch::Tensor before_w = ConstantTensor(nodes[layer.node], 1);
    torch::Tensor before_b = layer.has_bias ? ConstantTensor(nodes[layer.node], 2) : torch::Tensor();
    torch::Tensor w = ConstantTensor(layer_nodes.at(li), 1);
    torch::Tensor b = layer.has_bias ? ConstantTensor(layer_nodes.at(li), 2) : torch::Tensor();
    out.params_before += Numel(before_w) + Numel(before_b);
    out.params_after += Numel(w) + Numel(b);
    int64_t zeros = w.defined() ? (w == 0).sum().item<int64_t>() : 0;
    int64_t bias_zeros = b.defined() ? (b == 0).sum().item<int64_t>() : 0;
    out.nonzero_after += Numel(w) - zeros + Numel(b) - bias_zeros;
    out.weighted_configs.push_back(layer.compressible ? policy.Get(layer.name) : LayerConfig{});
    if (!layer.compressible) continue;
    LayerResult r;
    r.name = layer.name;
    r.config = policy.Get(layer.name);
    r.in_channels_before = layer.in_channels;
    r.out_channels_before = layer.out_channels;
    LayerPositions pos = PositionsOf(layer, plan);
    r.out_channels_after = pos.out.defined() ? pos.out.numel() : layer.out_channels;
    r.in_channels_after =
        layer.depthwise() ? r.out_channels_after : (pos.in.defined() ? pos.in.numel() : layer.in_channels);
    r.weights = Numel(w);
    r.zeros = zeros;
    out.layers.push_back(r);
  }
  return out;
}

}  // namespace acs
