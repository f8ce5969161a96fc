#include "devices/runtime/runtime.h"

#include <dlfcn.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <utility>

#include "devices/measure/device_class.h"
#include "devices/runtime/dense_ops.h"
#include "devices/runtime/packed_depthwise.h"
#include "devices/runtime/packed_int8.h"

namespace acs::runtime {
namespace {

using torch::jit::Node;
using torch::jit::Value;

bool Is(const Node* node, const char* kind) { return node->kind() == c10::Symbol::fromQualString(kind); }

c10::optional<c10::IValue> Constant(Value* v) { return torch::jit::toIValue(v); }

std::optional<double> ConstantDouble(Value* v) {
  c10::optional<c10::IValue> c = Constant(v);
  if (!c || !(c->isDouble() || c->isInt())) return std::nullopt;
  return c->isDouble() ? c->toDouble() : static_cast<double>(c->toInt());
}

// The node that is the only user of v (not the graph's return), or null.
Node* SoleUser(Value* v) {
  if (v->uses().size() != 1) return nullptr;
  Node* user = v->uses()[0].user;
  return user->kind() == torch::jit::prim::Return ? nullptr : user;
}

std::array<int64_t, 2> Pair(const c10::optional<c10::IValue>& v, int64_t fallback) {
  std::vector<int64_t> ints;
  if (v && v->isInt()) ints = {v->toInt()};
  if (v && v->isIntList()) ints = v->toIntVector();
  if (ints.empty()) return {fallback, fallback};
  return {ints[0], ints.size() > 1 ? ints[1] : ints[0]};
}

// The arguments of an aten::conv2d / aten::_convolution node with constant weights.
struct ConvArgs {
  torch::Tensor weight, bias;
  PackedConv::Geometry geometry;  // height / width filled in by the caller
  int64_t groups = 1;
  std::string why_not_sparse;  // e.g. asymmetric "same" padding
};

std::optional<ConvArgs> ReadConv(Node* node) {
  ConvArgs a;
  a.weight = ConstantTensor(node, 1);
  if (!a.weight.defined() || a.weight.dim() != 4) return std::nullopt;
  a.bias = ConstantTensor(node, 2);
  const bool generic = Is(node, "aten::_convolution");
  if (generic) {
    c10::optional<c10::IValue> transposed = Constant(node->input(6));
    if (!transposed || !transposed->isBool() || transposed->toBool()) return std::nullopt;
  }
  a.geometry.stride = Pair(Constant(node->input(3)), 1);
  a.geometry.dilation = Pair(Constant(node->input(5)), 1);
  c10::optional<c10::IValue> padding = Constant(node->input(4));
  if (padding && padding->isString()) {
    for (int i = 0; i < 2; ++i) {
      const int64_t total = padding->toStringRef() == "same" ? a.geometry.dilation[i] * (a.weight.size(2 + i) - 1) : 0;
      if (total % 2 != 0) a.why_not_sparse = "asymmetric \"same\" padding";
      a.geometry.padding[i] = total / 2;
    }
  } else {
    a.geometry.padding = Pair(padding, 0);
  }
  c10::optional<c10::IValue> groups = Constant(node->input(generic ? 8 : 6));
  if (!groups || !groups->isInt()) return std::nullopt;
  a.groups = groups->toInt();
  return a;
}

// Folds `bn` (aten::batch_norm in eval mode with constant statistics, reading `conv_out`)
// into conv weight and bias; false (and nothing changed) when it is not such a node.
bool FoldBatchNorm(Node* bn, Value* conv_out, torch::Tensor* weight, torch::Tensor* bias) {
  if (bn == nullptr || !Is(bn, "aten::batch_norm") || bn->input(0) != conv_out) return false;
  c10::optional<c10::IValue> training = Constant(bn->input(5));
  std::optional<double> eps = ConstantDouble(bn->input(7));
  const torch::Tensor gamma = ConstantTensor(bn, 1), beta = ConstantTensor(bn, 2);
  const torch::Tensor mean = ConstantTensor(bn, 3), var = ConstantTensor(bn, 4);
  if (!training || !training->isBool() || training->toBool() || !eps || !mean.defined() || !var.defined()) return false;
  const int64_t out = weight->size(0);
  if (mean.numel() != out || var.numel() != out) return false;
  auto f64 = [](const torch::Tensor& t) { return t.to(torch::kFloat64).flatten(); };
  const torch::Tensor scale =
      (gamma.defined() ? f64(gamma) : torch::ones({out}, torch::kFloat64)) / torch::sqrt(f64(var) + *eps);
  const torch::Tensor b = bias->defined() ? f64(*bias) : torch::zeros({out}, torch::kFloat64);
  const torch::Tensor shift = beta.defined() ? f64(beta) : torch::zeros({out}, torch::kFloat64);
  std::vector<int64_t> view(weight->dim(), 1);
  view[0] = out;
  *weight = (weight->to(torch::kFloat64) * scale.view(view)).to(weight->scalar_type()).contiguous();
  *bias = ((b - f64(mean)) * scale + shift).to(weight->scalar_type()).contiguous();
  return true;
}

// The clamp of an activation node that reads v, if it is one the sparse ops can fuse.
std::optional<Activation> FusableActivation(Node* node, Value* v) {
  if (node == nullptr || node->inputs().empty() || node->input(0) != v) return std::nullopt;
  Activation a;
  a.enabled = true;
  if (Is(node, "aten::relu") || Is(node, "aten::relu_")) {
    a.name = "relu";
    return a;
  }
  if (Is(node, "aten::relu6") || Is(node, "aten::relu6_")) {
    a.max = 6.0f;
    a.name = "relu6";
    return a;
  }
  if (Is(node, "aten::hardtanh") || Is(node, "aten::hardtanh_")) {
    std::optional<double> lo = ConstantDouble(node->input(1)), hi = ConstantDouble(node->input(2));
    if (!lo || !hi) return std::nullopt;
    a.min = static_cast<float>(*lo);
    a.max = static_cast<float>(*hi);
    char name[64];
    std::snprintf(name, sizeof(name), "hardtanh(%g,%g)", *lo, *hi);
    a.name = name;
    return a;
  }
  return std::nullopt;
}

double Density(const torch::Tensor& w) {
  return w.numel() == 0 ? 1.0 : (w != 0).sum().item<double>() / static_cast<double>(w.numel());
}

// Replaces `first` (the layer node) and the nodes after it that it absorbs (in graph order)
// by one call of `op` on `input` with `packed` as a constant.
void ReplaceWithOp(torch::jit::Graph& graph, Node* first, Value* input, std::vector<Node*> absorbed, const char* op,
                   const c10::IValue& packed) {
  torch::jit::WithInsertPoint guard(first);
  Value* constant = graph.insertConstant(packed);
  Value* result = graph.insert(c10::Symbol::fromQualString(op), {input, constant});
  Node* last = absorbed.empty() ? first : absorbed.back();
  last->output()->replaceAllUsesWith(result);
  for (auto it = absorbed.rbegin(); it != absorbed.rend(); ++it) (*it)->destroy();
  first->destroy();
}

// The fused activation after `out`, added to `absorbed` when options allow it.
Activation TakeActivation(Value* out, const RuntimeOptions& options, std::vector<Node*>* absorbed) {
  if (!options.fuse_activation) return {};
  Node* user = SoleUser(out);
  std::optional<Activation> a = FusableActivation(user, out);
  if (!a) return {};
  absorbed->push_back(user);
  return *a;
}

void SetKernel(const KernelChoice& choice, LayerKernel* k) {
  k->kind = choice.kind;
  k->block = choice.block;
  k->nm_n = choice.nm_n;
  k->nm_m = choice.nm_m;
  k->why_dense = choice.why_dense;
}

// Kinds that replace the layer by an acs_rt op.
bool IsPacked(KernelKind kind) { return kind != KernelKind::kDense && kind != KernelKind::kInt8Simulated; }

KernelChoice DenseBecause(std::string why, KernelKind kind = KernelKind::kDense) {
  KernelChoice c;
  c.kind = kind;
  c.why_dense = std::move(why);
  return c;
}

// An int8 layer's input quantization: the compressor's fake-quant node feeding the layer.
struct FakeQuant {
  Value* input = nullptr;  // what the fake-quant node reads
  kernels::ActivationQuant quant;
};

std::optional<FakeQuant> ReadFakeQuant(Node* layer) {
  Value* v = layer->input(0);
  Node* fq = v->node();
  if (!Is(fq, "aten::fake_quantize_per_tensor_affine") || v->uses().size() != 1) return std::nullopt;
  std::optional<double> scale = ConstantDouble(fq->input(1)), zero_point = ConstantDouble(fq->input(2));
  std::optional<double> lo = ConstantDouble(fq->input(3)), hi = ConstantDouble(fq->input(4));
  if (!scale || !zero_point || !lo || !hi || *lo != 0 || *hi != 255) return std::nullopt;
  FakeQuant f;
  f.input = fq->input(0);
  f.quant.scale = static_cast<float>(*scale);
  f.quant.zero_point = static_cast<int32_t>(*zero_point);
  if (!kernels::Validate(f.quant).ok()) return std::nullopt;
  return f;
}

// An int8 choice without a fake-quant input runs simulated.
KernelChoice WithQuant(KernelChoice choice, const std::optional<FakeQuant>& fq) {
  if (choice.kind == KernelKind::kInt8 && !fq) {
    return DenseBecause("no per-tensor uint8 fake-quant input", KernelKind::kInt8Simulated);
  }
  return choice;
}

// The packed op of a convolution for `pack.kernel`, and its name.
StatusOr<std::pair<c10::IValue, const char*>> PackConv(const ConvArgs& a, const PackOptions& pack,
                                                       const std::optional<FakeQuant>& fq) {
  switch (pack.kernel.kind) {
    case KernelKind::kInt8: {
      if (a.groups > 1) {
        ACS_ASSIGN_OR_RETURN(auto p, PackedInt8DepthwiseConv::Create(a.weight, a.bias, a.geometry, fq->quant, pack));
        return std::make_pair(c10::IValue(std::move(p)), kInt8DepthwiseConv2dOp);
      }
      ACS_ASSIGN_OR_RETURN(auto p, PackedInt8Conv::Create(a.weight, a.bias, a.geometry, fq->quant, pack));
      return std::make_pair(c10::IValue(std::move(p)), kInt8Conv2dOp);
    }
    case KernelKind::kDepthwise: {
      ACS_ASSIGN_OR_RETURN(auto p, PackedDepthwiseConv::Create(a.weight, a.bias, a.geometry, pack));
      return std::make_pair(c10::IValue(std::move(p)), kDepthwiseConv2dOp);
    }
    default: {
      ACS_ASSIGN_OR_RETURN(auto p, PackedConv::Create(a.weight, a.bias, a.geometry, pack));
      return std::make_pair(c10::IValue(std::move(p)), kSparseConv2dOp);
    }
  }
}

StatusOr<std::pair<c10::IValue, const char*>> PackLinear(const torch::Tensor& weight, const torch::Tensor& bias,
                                                         const PackOptions& pack, const std::optional<FakeQuant>& fq) {
  switch (pack.kernel.kind) {
    case KernelKind::kInt8: {
      ACS_ASSIGN_OR_RETURN(auto p, PackedInt8Linear::Create(weight, bias, fq->quant, pack));
      return std::make_pair(c10::IValue(std::move(p)), kInt8LinearOp);
    }
    case KernelKind::kInt4w: {
      ACS_ASSIGN_OR_RETURN(auto p, PackedInt4Linear::Create(weight, bias, pack));
      return std::make_pair(c10::IValue(std::move(p)), kInt4LinearOp);
    }
    default: {
      ACS_ASSIGN_OR_RETURN(auto p, PackedLinear::Create(weight, bias, pack));
      return std::make_pair(c10::IValue(std::move(p)), kSparseLinearOp);
    }
  }
}

// A convolution left to LibTorch, to be prepacked once the saveable graph is taken.
struct DenseConvSite {
  Node* node;
  DenseConv conv;
  size_t layer;  // index in RuntimeModel::layers_
};

Status CompileConv(torch::jit::Graph& graph, Node* node, const Layer& layer, const RuntimeOptions& options,
                   LayerKernel* k, std::optional<DenseConvSite>* dense) {
  std::optional<ConvArgs> args = ReadConv(node);
  if (!args) return Status::Ok();  // not a constant 2-d convolution: left to LibTorch
  if (layer.input_shape.size() != 4) {
    return Status::Internal("layer '" + layer.name + "' has no recorded 4-d input shape");
  }
  args->geometry.height = layer.input_shape[2];
  args->geometry.width = layer.input_shape[3];
  std::vector<Node*> absorbed;
  Node* bn = SoleUser(node->output());
  // Folding scales each output row of an int8 layer by a constant: its integers stay the
  // same (packed_int8.h), and the fake-quant input is unchanged.
  if (options.fold_batch_norm && FoldBatchNorm(bn, node->output(), &args->weight, &args->bias)) {
    k->folded_batch_norm = true;
    absorbed.push_back(bn);
  }
  k->density = Density(args->weight);
  LayerTraits traits;
  traits.groups = args->groups;
  traits.depthwise_3x3 = options.depthwise_kernel && args->why_not_sparse.empty() &&
                         IsDepthwise3x3(args->weight, args->groups, args->geometry);
  traits.depthwise_int8 = args->why_not_sparse.empty() && IsInt8Depthwise(args->weight, args->groups, args->geometry);
  const std::optional<FakeQuant> fq = k->config.precision == Precision::kInt8 ? ReadFakeQuant(node) : std::nullopt;
  KernelChoice choice = WithQuant(ChooseKernel(k->config, traits, options.selection), fq);
  if (IsPacked(choice.kind) && !args->why_not_sparse.empty()) {
    choice = DenseBecause(args->why_not_sparse,
                          choice.kind == KernelKind::kInt8 ? KernelKind::kInt8Simulated : KernelKind::kDense);
  }
  if (IsPacked(choice.kind)) {
    std::vector<Node*> with_activation = absorbed;
    Value* out = absorbed.empty() ? node->output() : absorbed.back()->output();
    PackOptions pack{choice, TakeActivation(out, options, &with_activation), options.threads, options.lowering};
    StatusOr<std::pair<c10::IValue, const char*>> packed = PackConv(*args, pack, fq);
    if (packed.ok()) {
      SetKernel(choice, k);
      k->activation = pack.activation.name;
      ReplaceWithOp(graph, node, fq ? fq->input : node->input(0), with_activation, packed->second, packed->first);
      return Status::Ok();
    }
    choice = DenseBecause("packing failed: " + packed.status().message(),
                          choice.kind == KernelKind::kInt8 ? KernelKind::kInt8Simulated : KernelKind::kDense);
  }
  SetKernel(choice, k);
  if (k->folded_batch_norm) {  // the aten convolution takes the folded weights
    torch::jit::WithInsertPoint guard(node);
    node->replaceInput(1, graph.insertConstant(args->weight));
    node->replaceInput(2, graph.insertConstant(args->bias));
    bn->output()->replaceAllUsesWith(node->output());
    bn->destroy();
  }
  DenseConvSite site{node, {}, 0};
  site.conv.weight = args->weight;
  site.conv.bias = args->bias;
  site.conv.stride = args->geometry.stride;
  site.conv.padding = args->geometry.padding;
  site.conv.dilation = args->geometry.dilation;
  site.conv.groups = args->groups;
  site.conv.input_shape = {1, args->weight.size(1) * args->groups, layer.input_shape[2], layer.input_shape[3]};
  if (args->why_not_sparse.empty()) *dense = site;  // asymmetric "same" padding stays with aten
  return Status::Ok();
}

// Runs each site's convolution as the dense op (dense_ops.h), a relu after it fused.
// Returns why some could not be (empty when all were).
std::string PrepackDenseConvs(torch::jit::Graph& graph, std::vector<DenseConvSite>& sites,
                              const RuntimeOptions& options, std::vector<LayerKernel>* layers) {
  std::string why_not;
  for (DenseConvSite& site : sites) {
    LayerKernel& k = (*layers)[site.layer];
    std::vector<Node*> absorbed;
    Node* user = options.fuse_activation ? SoleUser(site.node->output()) : nullptr;
    std::optional<Activation> a = FusableActivation(user, site.node->output());
    site.conv.fuse_relu = a && a->is_relu();
    if (site.conv.fuse_relu) absorbed.push_back(user);
    StatusOr<c10::IValue> packed = PrepackDenseConv(site.conv);
    if (!packed.ok()) {
      k.why_dense += (k.why_dense.empty() ? "" : "; ") + packed.status().message();
      if (why_not.empty()) why_not = k.name + ": " + packed.status().message();
      continue;
    }
    torch::jit::WithInsertPoint guard(site.node);
    Value* result = InsertDenseConvRun(graph, site.node->input(0), *packed);
    (absorbed.empty() ? site.node : absorbed.back())->output()->replaceAllUsesWith(result);
    for (Node* n : absorbed) n->destroy();
    site.node->destroy();
    k.prepacked = true;
    if (site.conv.fuse_relu) k.activation = a->name;
  }
  return why_not;
}

Status CompileLinear(torch::jit::Graph& graph, Node* node, const RuntimeOptions& options, LayerKernel* k) {
  const torch::Tensor weight = ConstantTensor(node, 1);
  if (!Is(node, "aten::linear") || !weight.defined() || weight.dim() != 2) return Status::Ok();
  k->density = Density(weight);
  LayerTraits traits;
  traits.linear = true;
  const std::optional<FakeQuant> fq = k->config.precision == Precision::kInt8 ? ReadFakeQuant(node) : std::nullopt;
  KernelChoice choice = WithQuant(ChooseKernel(k->config, traits, options.selection), fq);
  if (IsPacked(choice.kind)) {
    std::vector<Node*> absorbed;
    PackOptions pack{choice, TakeActivation(node->output(), options, &absorbed), options.threads, options.lowering};
    StatusOr<std::pair<c10::IValue, const char*>> packed = PackLinear(weight, ConstantTensor(node, 2), pack, fq);
    if (packed.ok()) {
      SetKernel(choice, k);
      k->activation = pack.activation.name;
      ReplaceWithOp(graph, node, fq ? fq->input : node->input(0), absorbed, packed->second, packed->first);
      return Status::Ok();
    }
    choice = DenseBecause("packing failed: " + packed.status().message(),
                          choice.kind == KernelKind::kInt8 ? KernelKind::kInt8Simulated : KernelKind::kDense);
  }
  SetKernel(choice, k);
  return Status::Ok();
}

}  // namespace

void SetCpuThreads(int threads) {
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  // Debian's OpenBLAS (pthread build) sizes its own pool to the machine; LibTorch leaves it
  // alone, so a "1-thread" dense GEMM would otherwise run on every core.
  using SetBlasThreads = void (*)(int);
  static const auto set_blas = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  static std::atomic<int> blas_threads{0};
  if (set_blas != nullptr && blas_threads.exchange(threads) != threads) set_blas(threads);
}

StatusOr<torch::Tensor> RuntimeModel::Forward(const torch::Tensor& x) {
  SetCpuThreads(threads_);
  return RunModule(module_, x);
}

Status RuntimeModel::Save(const std::string& path) const {
  if (graph_ == nullptr) return Status::FailedPrecondition("the runtime model was not compiled (CompileForRuntime)");
  std::ofstream out(path, std::ios::binary);
  Status saved = out ? Save(out) : Status::Internal("cannot write " + path);
  out.close();
  if (saved.ok() && !out) saved = Status::Internal("writing " + path + " failed");
  return saved.ok() ? saved : Status::Internal("saving the runtime model to " + path + ": " + saved.message());
}

Status RuntimeModel::Save(std::ostream& out) const {
  if (graph_ == nullptr) return Status::FailedPrecondition("the runtime model was not compiled (CompileForRuntime)");
  try {
    saveable_.save(out);
  } catch (const std::exception& e) {
    return Status::Internal("saving the runtime model failed: " + ShortError(e));
  }
  return Status::Ok();
}

int RuntimeModel::CountNodes(const std::string& kind) const {
  int n = 0;
  for (Node* node : graph_->nodes()) n += node->kind() == c10::Symbol::fromQualString(kind);
  return n;
}

StatusOr<RuntimeModel> CompileForRuntime(const ImportedModel& model, const Policy& policy,
                                         const CompressedModel& compressed, const RuntimeOptions& options) {
  ACS_RETURN_IF_ERROR(ValidatePolicy(policy, model.graph));
  if (options.threads < 1) return Status::InvalidArgument("runtime threads must be >= 1");
  const Policy resolved = ResolvePolicy(policy, model.graph);
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    torch::jit::Module module = compressed.module;
    graph = torch::jit::toGraphFunction(module.get_method("forward").function()).graph()->copy();
  } catch (const std::exception& e) {
    return Status::InvalidArgument("the compressed model has no forward graph: " + ShortError(e));
  }
  std::vector<Node*> layer_nodes;
  for (Node* node : graph->nodes()) {
    if (IsWeightedOpKind(node->kind().toQualString())) layer_nodes.push_back(node);
  }
  const std::vector<Layer>& layers = model.graph.layers;
  if (layer_nodes.size() != layers.size()) {
    return Status::Internal("the compressed graph has " + std::to_string(layer_nodes.size()) +
                            " conv / linear ops but the model has " + std::to_string(layers.size()) +
                            " layers: it was not compressed from this model");
  }
  RuntimeModel out;
  out.threads_ = options.threads;
  torch::NoGradGuard no_grad;
  std::vector<DenseConvSite> dense_convs;
  try {
    for (size_t i = 0; i < layers.size(); ++i) {
      const Layer& layer = layers[i];
      if (!layer.compressible) continue;  // e.g. shared or computed weights: left to LibTorch
      LayerKernel k;
      k.name = layer.name;
      k.op = layer.type == LayerType::kLinear ? "linear" : "conv2d";
      k.config = resolved.Get(layer.name);
      if (layer.type == LayerType::kLinear) {
        ACS_RETURN_IF_ERROR(CompileLinear(*graph, layer_nodes[i], options, &k));
      } else {
        std::optional<DenseConvSite> site;
        ACS_RETURN_IF_ERROR(CompileConv(*graph, layer_nodes[i], layer, options, &k, &site));
        if (site) {
          site->layer = out.layers_.size();
          dense_convs.push_back(*site);
        }
      }
      out.layers_.push_back(std::move(k));
    }
    torch::jit::EliminateDeadCode(graph);
    out.saveable_ = ModuleFromGraph(*graph);
    if (options.prepack_dense) {
      out.why_dense_not_optimized_ = PrepackDenseConvs(*graph, dense_convs, options, &out.layers_);
      out.dense_optimized_ = out.why_dense_not_optimized_.empty();
    }
    out.module_ = ModuleFromGraph(*graph);
    if (options.optimize_dense && !options.prepack_dense) {
      InferenceModule m = FasterForInference(*graph, model.input_shape, options.threads);
      out.module_ = m.module;
      out.dense_optimized_ = m.optimized;
      out.why_dense_not_optimized_ = m.why_not;
    }
    out.graph_ = torch::jit::toGraphFunction(out.module_.get_method("forward").function()).graph();
  } catch (const std::exception& e) {
    return Status::Internal("compiling the runtime graph failed: " + ShortError(e));
  }
  return out;
}

std::string RuntimeVersion() { return "acs " + measure::ProjectVersion() + " / libtorch " + TORCH_VERSION; }

}  // namespace acs::runtime
