#include "core/quantized_rewrite.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <limits>

#include "core/torchscript_model.h"

namespace acs::quantized_rewrite {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

namespace {

std::optional<c10::IValue> Constant(Value* v) {
  c10::optional<c10::IValue> iv = torch::jit::toIValue(v);
  if (!iv) return std::nullopt;
  return *iv;
}

torch::Tensor ConstantTensor(Value* v) {
  std::optional<c10::IValue> iv = Constant(v);
  return iv && iv->isTensor() ? iv->toTensor() : torch::Tensor();
}

std::optional<double> ConstantDouble(Value* v) {
  std::optional<c10::IValue> iv = Constant(v);
  if (iv && iv->isDouble()) return iv->toDouble();
  if (iv && iv->isInt()) return static_cast<double>(iv->toInt());
  return std::nullopt;
}

std::optional<int64_t> ConstantInt(Value* v) {
  std::optional<c10::IValue> iv = Constant(v);
  if (iv && iv->isInt()) return iv->toInt();
  return std::nullopt;
}

// A constant int list of `n` entries (a single entry repeated, as conv2d accepts).
std::optional<std::vector<int64_t>> ConstantInts(Value* v, size_t n) {
  std::optional<c10::IValue> iv = Constant(v);
  if (!iv || !iv->isIntList()) return std::nullopt;
  std::vector<int64_t> out = iv->toIntVector();
  if (out.size() == 1) out.assign(n, out[0]);
  if (out.size() != n) return std::nullopt;
  return out;
}

bool IsNone(Value* v) { return v->type()->kind() == c10::TypeKind::NoneType; }

// Folds an eval-mode batch norm reading the conv's output into its weight and bias.
void FoldBatchNorm(Node* bn, Int8Layer* layer) {
  if (!Is(bn, "aten::batch_norm") || bn->input(0) != layer->node->output()) return;
  torch::Tensor gamma = ConstantTensor(bn->input(1)), beta = ConstantTensor(bn->input(2));
  torch::Tensor mean = ConstantTensor(bn->input(3)), var = ConstantTensor(bn->input(4));
  std::optional<c10::IValue> training = Constant(bn->input(5));
  std::optional<double> eps = ConstantDouble(bn->input(7));
  const int64_t out = layer->weight.size(0);
  if (!mean.defined() || !var.defined() || mean.numel() != out || var.numel() != out || !eps) return;
  if (!training || !training->isBool() || training->toBool()) return;
  if ((!gamma.defined() && !IsNone(bn->input(1))) || (!beta.defined() && !IsNone(bn->input(2)))) return;
  torch::Tensor g = (gamma.defined() ? gamma : torch::ones_like(mean)) / (var + *eps).sqrt();
  torch::Tensor b = layer->bias.defined() ? layer->bias : torch::zeros_like(mean);
  layer->weight = layer->weight * g.view({-1, 1, 1, 1});
  layer->bias = (b - mean) * g + (beta.defined() ? beta : torch::zeros_like(mean));
  layer->batch_norm = bn;
}

// qint8 per output channel, symmetric, as SimulatePrecision rounds int8 weights: a weight on
// that grid (times any per-channel factor, as a folded batch norm) is represented exactly.
torch::Tensor QuantizeWeight(const torch::Tensor& w) {
  torch::Tensor scale = w.reshape({w.size(0), -1}).abs().amax(1).to(torch::kFloat64) / 127.0;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  return torch::quantize_per_channel(w, scale, torch::zeros({w.size(0)}, torch::kInt64), 0, torch::kQInt8);
}

// Calls an operator through the dispatcher (the quantized prepack ops return custom classes).
StatusOr<c10::IValue> CallOp(const char* name, std::vector<c10::IValue> args) {
  try {
    c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
    op.callBoxed(&args);
    return args.at(0);
  } catch (const std::exception& e) {
    return Status::Internal(std::string(name) + " failed: " + ShortError(e));
  }
}

// A single-use elementwise clamp after a value: relu, hardtanh.
struct Clamp {
  Node* node = nullptr;
  double lo = 0, hi = std::numeric_limits<double>::infinity();
};

std::vector<Clamp> ClampChain(Value* v) {
  std::vector<Clamp> chain;
  while (v->uses().size() == 1) {
    Node* u = v->uses()[0].user;
    if (u->owningBlock() != v->node()->owningBlock() || u->input(0) != v) break;
    Clamp c;
    c.node = u;
    if (Is(u, "aten::hardtanh") || Is(u, "aten::hardtanh_")) {
      std::optional<double> lo = ConstantDouble(u->input(1)), hi = ConstantDouble(u->input(2));
      if (!lo || !hi) break;
      c.lo = *lo;
      c.hi = *hi;
    } else if (!Is(u, "aten::relu") && !Is(u, "aten::relu_")) {
      break;
    }
    chain.push_back(c);
    v = u->output();
  }
  return chain;
}

// Ops that take a quint8 tensor as their first input and return one with its quantization.
bool KeepsQuantization(const Node* n) {
  static const char* const kKinds[] = {
      "aten::max_pool2d", "aten::adaptive_avg_pool2d", "aten::avg_pool2d", "aten::flatten", "aten::reshape",
      "aten::view",       "aten::contiguous",          "aten::relu",       "aten::relu_",   "aten::hardtanh",
      "aten::hardtanh_"};
  for (const char* k : kKinds) {
    if (Is(n, k)) return true;
  }
  return false;
}

// Replaces an aten::view by an aten::reshape of the same arguments (a copy where the
// strides do not allow a view).
void ViewAsReshape(Node* view) {
  torch::jit::WithInsertPoint guard(view);
  Value* reshaped =
      view->owningGraph()->insert(c10::Symbol::fromQualString("aten::reshape"), {view->input(0), view->input(1)});
  view->output()->replaceAllUsesWith(reshaped);
  view->destroy();
}

}  // namespace

bool Is(const Node* n, const char* kind) { return n->kind() == c10::Symbol::fromQualString(kind); }

bool IsTensor(Value* v) { return v->type()->isSubtypeOf(*c10::TensorType::get()); }

bool IsTensorAdd(Node* n) {
  return (Is(n, "aten::add") || Is(n, "aten::add_")) && n->inputs().size() == 3 && IsTensor(n->input(1));
}

std::optional<Quant> FakeQuantOf(Node* n) {
  if (!Is(n, "aten::fake_quantize_per_tensor_affine") || n->inputs().size() != 5) return std::nullopt;
  std::optional<double> scale = ConstantDouble(n->input(1));
  std::optional<int64_t> zero_point = ConstantInt(n->input(2)), lo = ConstantInt(n->input(3)),
                         hi = ConstantInt(n->input(4));
  if (!scale || !zero_point || lo != ActivationQuant::kMin || hi != ActivationQuant::kMax || !(*scale > 0)) {
    return std::nullopt;
  }
  return Quant{*scale, *zero_point};
}

std::optional<Int8Layer> ReadInt8Layer(Node* node) {
  Int8Layer layer;
  layer.node = node;
  layer.linear = Is(node, "aten::linear");
  const bool conv2d = Is(node, "aten::conv2d"), convolution = Is(node, "aten::_convolution");
  if (!layer.linear && !conv2d && !convolution) return std::nullopt;
  layer.fake_quant = node->input(0)->node();
  std::optional<Quant> q = FakeQuantOf(layer.fake_quant);
  if (!q || layer.fake_quant->output()->uses().size() != 1 || layer.fake_quant->owningBlock() != node->owningBlock()) {
    return std::nullopt;
  }
  layer.input = *q;
  layer.weight = ConstantTensor(node->input(1));
  layer.bias = ConstantTensor(node->input(2));
  if (!layer.weight.defined() || layer.weight.scalar_type() != torch::kFloat32) return std::nullopt;
  if (!layer.bias.defined() && !IsNone(node->input(2))) return std::nullopt;
  layer.weight = layer.weight.clone();
  if (layer.bias.defined()) layer.bias = layer.bias.to(torch::kFloat32).clone();
  if (layer.linear) return layer.weight.dim() == 2 ? std::optional<Int8Layer>(layer) : std::nullopt;
  if (layer.weight.dim() != 4) return std::nullopt;
  auto stride = ConstantInts(node->input(3), 2), padding = ConstantInts(node->input(4), 2);
  auto dilation = ConstantInts(node->input(5), 2);
  std::optional<int64_t> groups = ConstantInt(node->input(conv2d ? 6 : 8));
  if (!stride || !padding || !dilation || !groups) return std::nullopt;
  if (convolution) {
    std::optional<c10::IValue> transposed = Constant(node->input(6));
    if (!transposed || !transposed->isBool() || transposed->toBool()) return std::nullopt;
  }
  layer.stride = *stride;
  layer.padding = *padding;
  layer.dilation = *dilation;
  layer.groups = *groups;
  const std::vector<torch::jit::Use>& uses = node->output()->uses();
  if (uses.size() == 1) FoldBatchNorm(uses[0].user, &layer);
  return layer;
}

Value* ChainEnd(Value* v) {
  std::vector<Clamp> chain = ClampChain(v);
  return chain.empty() ? v : chain.back().node->output();
}

Rewriter::Rewriter(Graph* graph, const std::map<size_t, std::pair<double, double>>* ranges, QuantizedExport* stats)
    : graph_(graph), ranges_(ranges), stats_(stats) {
  index_ = ValuePositions(*graph);
}

std::optional<Quant> Rewriter::NextLayerQuant(Value* v) const {
  for (const torch::jit::Use& use : v->uses()) {
    if (int8_fake_quants_.count(use.user)) return FakeQuantOf(use.user);
  }
  if (v->uses().size() != 1) return std::nullopt;
  Node* next = v->uses()[0].user;
  for (const char* kind : {"aten::max_pool2d", "aten::flatten", "aten::reshape", "aten::view", "aten::contiguous"}) {
    if (Is(next, kind) && next->input(0) == v && next->outputs().size() == 1) return NextLayerQuant(next->output());
  }
  return std::nullopt;
}

bool Rewriter::Replaced(Node* n) const { return replaced_.count(n) > 0; }
Quant Rewriter::OutputQuant(Value* v) {
  if (std::optional<Quant> q = NextLayerQuant(v)) return *q;
  ++stats_->calibrated_outputs;
  const auto& [lo, hi] = ranges_->at(index_.at(v));
  ActivationQuant a = ActivationQuantFromRange(lo, hi);
  return Quant{a.scale, a.zero_point};
}

Node* Rewriter::EmitRegion(Node* producer, Value* y, const char* op, const char* op_relu, std::vector<Value*> args) {
  std::vector<Clamp> chain = ClampChain(y);
  Value* end = chain.empty() ? y : chain.back().node->output();
  Quant out = OutputQuant(end);
  size_t first = 0;
  const bool fuse_relu = !chain.empty() && chain[0].lo == 0;
  if (fuse_relu && std::isinf(chain[0].hi)) first = 1;
  torch::jit::WithInsertPoint guard(producer);
  args.push_back(graph_->insertConstant(out.scale));
  args.push_back(graph_->insertConstant(out.zero_point));
  std::vector<torch::jit::NamedValue> named(args.begin(), args.end());
  Value* q = graph_->insert(c10::Symbol::fromQualString(fuse_relu ? op_relu : op), named);
  Node* head = q->node();
  emitted_.insert(head);
  for (size_t i = first; i < chain.size(); ++i) {
    const Clamp& c = chain[i];
    if (out.lowest() >= c.lo && out.highest() <= c.hi) continue;  // the quantization clamps
    q = std::isinf(c.hi) ? graph_->insert(c10::Symbol::fromQualString("aten::relu"), {q})
                         : graph_->insert(c10::Symbol::fromQualString("aten::hardtanh"), {q, c.lo, c.hi});
    emitted_.insert(q->node());
  }
  replaced_.insert(producer);
  for (const Clamp& c : chain) replaced_.insert(c.node);
  SetQuantized(end, q, out);
  return head;
}

Status Rewriter::RewriteLayer(const Int8Layer& layer) {
  Value* qx = QuantizedInput(layer.fake_quant->input(0), layer.input, layer.node);
  torch::Tensor qw = QuantizeWeight(layer.weight);
  c10::IValue bias = layer.bias.defined() ? c10::IValue(layer.bias) : c10::IValue();
  StatusOr<c10::IValue> packed =
      layer.linear
          ? CallOp("quantized::linear_prepack", {qw, bias})
          : CallOp("quantized::conv2d_prepack", {qw, bias, layer.stride, layer.padding, layer.dilation, layer.groups});
  if (!packed.ok()) return packed.status();
  Value* packed_value = nullptr;
  try {
    torch::jit::WithInsertPoint guard(layer.node);
    packed_value = graph_->insertConstant(*packed);
  } catch (const std::exception& e) {
    return Status::Internal("cannot hold the packed weights of an int8 layer: " + ShortError(e));
  }
  replaced_.insert(layer.fake_quant);
  Node* producer = layer.batch_norm ? layer.batch_norm : layer.node;
  if (layer.batch_norm) replaced_.insert(layer.node);
  Node* op = EmitRegion(producer, producer->output(), layer.linear ? "quantized::linear" : "quantized::conv2d",
                        layer.linear ? "quantized::linear_relu" : "quantized::conv2d_relu", {qx, packed_value});
  layer_ops_[op] = {layer.index, layer.weight.numel() / layer.weight.size(0)};
  ++stats_->quantized_layers;
  return Status::Ok();
}

bool Rewriter::RewriteAdd(Node* add) {
  if ((!Is(add, "aten::add") && !Is(add, "aten::add_")) || add->inputs().size() != 3) return false;
  Value* a = add->input(0);
  Value* b = add->input(1);
  // Both quantized, at least one of them only quantized (the other has a border quantize).
  if (!IsTensor(b) || ConstantDouble(add->input(2)) != 1.0 || !quantized_.count(a) || !quantized_.count(b) ||
      (!q_only_.count(a) && !q_only_.count(b))) {
    return false;
  }
  if (Is(add, "aten::add_") && a->uses().size() != 1) return false;
  EmitRegion(add, add->output(), "quantized::add", "quantized::add_relu",
             {quantized_.at(a).first, quantized_.at(b).first});
  ++stats_->quantized_adds;
  return true;
}

bool Rewriter::RewriteKeeping(Node* n) {
  if (!KeepsQuantization(n) || !q_only_.count(n->input(0))) return false;
  // An in-place op changes what later readers of its input see: only when it has none.
  const bool in_place = Is(n, "aten::relu_") || Is(n, "aten::hardtanh_");
  if (in_place && n->input(0)->uses().size() != 1) return false;
  for (size_t i = 1; i < n->inputs().size(); ++i) {
    if (quantized_.count(n->input(i))) return false;
  }
  const auto [q, quant] = quantized_.at(n->input(0));
  std::optional<Clamp> clamp;
  if (Is(n, "aten::relu") || Is(n, "aten::relu_")) {
    clamp = Clamp{n};
  } else if (Is(n, "aten::hardtanh") || Is(n, "aten::hardtanh_")) {
    std::optional<double> lo = ConstantDouble(n->input(1)), hi = ConstantDouble(n->input(2));
    if (!lo || !hi) return false;
    clamp = Clamp{n, *lo, *hi};
  }
  Value* out = nullptr;
  torch::jit::WithInsertPoint guard(n);
  if (clamp && quant.lowest() >= clamp->lo && quant.highest() <= clamp->hi) {
    out = q;  // the quantization already clamps
  } else if (clamp) {
    out = std::isinf(clamp->hi)
              ? graph_->insert(c10::Symbol::fromQualString("aten::relu"), {q})
              : graph_->insert(c10::Symbol::fromQualString("aten::hardtanh"), {q, clamp->lo, clamp->hi});
  } else if (Is(n, "aten::view")) {
    out = graph_->insert(c10::Symbol::fromQualString("aten::reshape"), {q, n->input(1)});  // quint8 is channels-last
  } else {
    Node* clone = graph_->insertNode(graph_->createClone(n, [&, q = q](Value* v) { return v == n->input(0) ? q : v; }));
    out = clone->output();
  }
  emitted_.insert(out->node());
  replaced_.insert(n);
  SetQuantized(n->output(), out, quant);
  return true;
}

void Rewriter::Dequantize() {
  for (Value* v : std::vector<Value*>(q_only_.begin(), q_only_.end())) {
    for (const torch::jit::Use& use : std::vector<torch::jit::Use>(v->uses())) {
      if (replaced_.count(use.user)) continue;
      Node* user = use.user;
      const bool reads_shape = user->kind() == c10::aten::size || user->kind() == c10::aten::dim;
      user->replaceInput(use.offset, reads_shape ? quantized_.at(v).first : FloatForm(v));
      // A dequantized value keeps the quantized op's channels-last strides, which view refuses.
      if (user->kind() == c10::aten::view && use.offset == 0) ViewAsReshape(user);
    }
  }
}

void Rewriter::SetQuantized(Value* original, Value* q, Quant quant) {
  quantized_[original] = {q, quant};
  q_only_.insert(original);
}

Value* Rewriter::FloatForm(Value* v) {
  if (!q_only_.count(v)) return v;
  Value* q = quantized_.at(v).first;
  auto it = dequantized_.find(q);
  if (it != dequantized_.end()) return it->second;
  Node* dq = graph_->create(c10::Symbol::fromQualString("aten::dequantize"), {q});
  dq->insertAfter(q->node());
  dq->output()->setType(c10::TensorType::get());
  emitted_.insert(dq);
  return dequantized_[q] = dq->output();
}

Value* Rewriter::QuantizedInput(Value* x, Quant quant, Node* before) {
  auto it = quantized_.find(x);
  if (it != quantized_.end() && it->second.second == quant) return it->second.first;
  Value* fp = FloatForm(x);
  auto key = std::make_tuple(fp, quant.scale, quant.zero_point);
  auto cached = borders_.find(key);
  if (cached != borders_.end()) return cached->second;
  torch::jit::WithInsertPoint guard(before);
  Value* q = graph_->insert(c10::Symbol::fromQualString("aten::quantize_per_tensor"),
                            {fp, quant.scale, quant.zero_point, static_cast<int64_t>(c10::ScalarType::QUInt8)});
  if (!quantized_.count(x)) quantized_[x] = {q, quant};
  emitted_.insert(q->node());
  return borders_[key] = q;
}

}  // namespace acs::quantized_rewrite
