#include "core/importer.h"

#include <pthread.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/freeze_module.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/channel_groups.h"
#include "core/torch_archive.h"

namespace acs {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// The stack of the thread that imports: LibTorch's TorchScript compiler and interpreter
// recurse once per level of a model's nesting, which CheckTorchArchive bounds.
constexpr size_t kImportStackBytes = size_t{256} << 20;
// Past 2^53 counts are not exact in a double; no real model comes near.
constexpr int64_t kMaxCount = int64_t{1} << 53;

// The product of `factors` treating 0 as 1, or -1 past kMaxCount (or for a negative one):
// what bounds every partial product of a shape's sizes.
int64_t Extent(const std::vector<int64_t>& factors) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (f < 0 || __builtin_mul_overflow(p, std::max<int64_t>(f, 1), &p) || p > kMaxCount) return -1;
  }
  return p;
}

// The product of `factors`, or -1 past kMaxCount.
int64_t Product(const std::vector<int64_t>& factors) {
  if (std::find(factors.begin(), factors.end(), 0) != factors.end()) return 0;
  return Extent(factors);
}

// Runs `work` on a thread with a stack of `bytes`; false when the thread cannot start.
bool RunOnStack(size_t bytes, const std::function<void()>& work) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_t thread;
  auto run = [](void* w) -> void* {
    (*static_cast<const std::function<void()>*>(w))();
    return nullptr;
  };
  const bool started = pthread_attr_setstacksize(&attr, bytes) == 0 &&
                       pthread_create(&thread, &attr, run, const_cast<std::function<void()>*>(&work)) == 0;
  pthread_attr_destroy(&attr);
  if (started) pthread_join(thread, nullptr);
  return started;
}

// LibTorch 1.13 fills objects from the model's pickle without checking their attributes
// against the declared types, and compiled code reads an object's attributes by the slots
// of its declared class. Every value reachable from the module must have its declared type.
Status CheckAttributeTypes(const torch::jit::Module& module) {
  struct Item {
    c10::IValue value;
    c10::TypePtr type;
    std::string where;  // e.g. "features.conv1.weight"
  };
  std::vector<Item> pending{{module._ivalue(), module.type(), "the module"}};
  std::set<std::pair<const void*, const void*>> seen;  // value and type looked at
  std::vector<c10::TypePtr> seen_types;                  // keeps the types in `seen` alive
  // Values that hold no objects need no look: code reads them by type, which LibTorch checks.
  auto push = [&](const c10::IValue& v, c10::TypePtr type, std::string where) {
    if (v.isObject() || v.isList() || v.isGenericDict() || v.isTuple()) {
      pending.push_back({v, std::move(type), std::move(where)});
    }
  };
  while (!pending.empty()) {
    Item item = std::move(pending.back());
    pending.pop_back();
    const c10::IValue& v = item.value;
    if (v.isPtrType() && !seen.emplace(v.internalToPointer(), item.type.get()).second) continue;
    seen_types.push_back(item.type);
    const c10::TypePtr actual = v.type();
    if (!actual->isSubtypeOf(*item.type)) {
      return Status::DataLoss(item.where + " is a " + actual->str() + " where its code declares " + item.type->str());
    }
    if (v.isObject()) {
      const c10::intrusive_ptr<c10::ivalue::Object> object = v.toObject();
      const c10::ClassTypePtr cls = object->type();
      if (object->slots().size() != cls->numAttributes()) {
        return Status::DataLoss(item.where + " lacks attributes of " + cls->str());
      }
      const std::string prefix = item.where == "the module" ? "" : item.where + ".";
      for (size_t i = 0; i < cls->numAttributes(); ++i) {
        push(object->getSlot(i), cls->getAttribute(i), prefix + cls->getAttributeName(i));
      }
    } else if (v.isList()) {
      const c10::TypePtr element = actual->containedType(0);
      for (const c10::IValue& e : v.toListRef()) push(e, element, "an element of " + item.where);
    } else if (v.isGenericDict()) {
      const c10::TypePtr key = actual->containedType(0), value = actual->containedType(1);
      for (const auto& entry : v.toGenericDict()) {
        push(entry.key(), key, "a key of " + item.where);
        push(entry.value(), value, "a value of " + item.where);
      }
    } else if (v.isTuple()) {
      const auto& elements = v.toTupleRef().elements();
      const c10::TupleTypePtr declared = item.type->cast<c10::TupleType>();
      for (size_t i = 0; i < elements.size(); ++i) {
        const bool typed = declared && declared->elements().size() == elements.size();
        push(elements[i], typed ? declared->elements()[i] : elements[i].type(), "an element of " + item.where);
      }
    }
  }
  return Status::Ok();
}

std::vector<int64_t> IntsOf(const c10::IValue& v) {
  if (v.isInt()) return {v.toInt()};
  if (v.isIntList()) return v.toIntVector();
  return {};
}

std::array<int64_t, 2> Pair(const std::vector<int64_t>& v, int64_t fallback) {
  if (v.empty()) return {fallback, fallback};
  if (v.size() == 1) return {v[0], v[0]};
  return {v[0], v[1]};
}

// Runs a copy of `graph` returning every top-level tensor value, to record their shapes.
StatusOr<std::vector<c10::optional<torch::Tensor>>> RecordValues(const torch::jit::Graph& graph,
                                                                 const torch::jit::Module& self,
                                                                 const torch::Tensor& input) {
  std::shared_ptr<torch::jit::Graph> copy = const_cast<torch::jit::Graph&>(graph).copy();
  std::vector<Value*> values = EnumerateValues(*copy);
  std::vector<Value*> tensors;
  std::vector<size_t> positions;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i]->type()->cast<c10::TensorType>()) {
      tensors.push_back(values[i]);
      positions.push_back(i);
    }
  }
  ACS_ASSIGN_OR_RETURN(std::vector<c10::IValue> elements,
                       RunForValues(copy, self, input, tensors,
                                    "the model does not run on input shape " + FormatShape(input.sizes().vec())));
  std::vector<c10::optional<torch::Tensor>> recorded(values.size());
  for (size_t i = 0; i < positions.size(); ++i) recorded[positions[i]] = elements[i].toTensor();
  return recorded;
}

// Mirrors the frozen graph's top-level nodes into the IR. Values used inside control-flow
// blocks are added as inputs of the node that owns the block.
void MirrorNodes(torch::jit::Graph& jit, const std::vector<c10::optional<torch::Tensor>>& recorded,
                 Graph* g) {
  std::vector<Value*> values = EnumerateValues(jit);
  std::unordered_map<const Value*, int> index;
  for (size_t i = 0; i < values.size(); ++i) {
    index[values[i]] = static_cast<int>(i);
    ValueInfo info;
    info.name = values[i]->debugName();
    info.is_tensor = values[i]->type()->cast<c10::TensorType>() != nullptr;
    if (recorded[i].has_value()) {
      info.shape_known = true;
      info.shape = recorded[i]->sizes().vec();
    }
    Node* producer = values[i]->node();
    if (producer->kind() == torch::jit::prim::Constant) {
      info.is_constant = true;
      c10::optional<c10::IValue> constant = torch::jit::toIValue(values[i]);
      if (constant) {
        info.is_none = constant->isNone();
        info.ints = IntsOf(*constant);
        if (constant->isTensor()) {
          info.shape_known = true;
          info.shape = constant->toTensor().sizes().vec();
        }
      }
    }
    g->values.push_back(info);
  }
  for (size_t i = 1; i < jit.inputs().size(); ++i) g->inputs.push_back(static_cast<int>(i));
  int node_index = 0;
  for (Node* node : jit.nodes()) {
    acs::Node n;
    n.kind = node->kind().toQualString();
    for (Value* in : node->inputs()) n.inputs.push_back(index.at(in));
    n.has_blocks = !node->blocks().empty();
    if (n.has_blocks) {
      std::vector<torch::jit::Block*> pending(node->blocks().begin(), node->blocks().end());
      while (!pending.empty()) {
        torch::jit::Block* b = pending.back();
        pending.pop_back();
        for (Node* inner : b->nodes()) {
          for (Value* in : inner->inputs()) {
            auto it = index.find(in);
            if (it != index.end()) n.inputs.push_back(it->second);
          }
          for (torch::jit::Block* nested : inner->blocks()) pending.push_back(nested);
        }
        for (Value* out : b->outputs()) {
          auto it = index.find(out);
          if (it != index.end()) n.inputs.push_back(it->second);
        }
      }
    }
    for (Value* out : node->outputs()) {
      int v = index.at(out);
      n.outputs.push_back(v);
      g->values[v].producer = node_index;
    }
    g->nodes.push_back(std::move(n));
    ++node_index;
  }
  for (Value* out : jit.outputs()) g->outputs.push_back(index.at(out));
}

// Builds a Layer for a conv / linear node, or returns false for other nodes.
bool MakeLayer(Node* node, int node_index, const Graph& g,
               const std::unordered_map<const void*, std::string>& param_paths,
               std::unordered_map<const void*, std::string>* used_weights, Layer* layer) {
  const std::string kind = node->kind().toQualString();
  if (!IsWeightedOpKind(kind)) return false;
  bool is_linear = kind == "aten::linear";
  const acs::Node& n = g.nodes[node_index];
  layer->node = node_index;
  layer->type = is_linear ? LayerType::kLinear : LayerType::kConv2d;
  const ValueInfo& in = g.values[n.inputs[0]];
  const ValueInfo& out = g.values[n.outputs[0]];
  layer->input_shape = in.shape;
  layer->output_shape = out.shape;

  c10::optional<c10::IValue> weight = torch::jit::toIValue(node->input(1));
  c10::optional<c10::IValue> bias = torch::jit::toIValue(node->input(2));
  torch::Tensor w = weight && weight->isTensor() ? weight->toTensor() : torch::Tensor();
  if (w.defined()) {
    auto it = param_paths.find(w.data_ptr());
    layer->weight_path = it != param_paths.end() ? it->second : "";
  }
  layer->name = layer->weight_path;
  const std::string suffix = ".weight";
  if (layer->name.size() > suffix.size() &&
      layer->name.compare(layer->name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    layer->name.resize(layer->name.size() - suffix.size());
  }
  if (layer->name.empty()) layer->name = std::string(is_linear ? "linear" : "conv") + "@" + std::to_string(node_index);
  if (bias && bias->isTensor()) {
    layer->has_bias = true;
    auto it = param_paths.find(bias->toTensor().data_ptr());
    if (it != param_paths.end()) layer->bias_path = it->second;
  }

  if (!w.defined()) {
    layer->why_not = "its weight is computed in the graph, not a parameter";
    return true;
  }
  if (w.dim() == 0) {
    layer->why_not = "its weight is a scalar";
    return true;
  }
  layer->params = Product({w.numel() + (layer->has_bias ? bias->toTensor().numel() : 0)});
  if (is_linear) {
    layer->out_channels = w.size(0);
    layer->in_channels = w.dim() > 1 ? w.size(1) : 0;
    std::vector<int64_t> factors{2, layer->in_channels, layer->out_channels};
    for (size_t i = 1; i + 1 < out.shape.size(); ++i) factors.push_back(out.shape[i]);
    layer->flops = Product(factors);
  } else {
    // aten::conv2d(x, w, b, stride, padding, dilation, groups)
    // aten::_convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups, ...)
    bool generic = kind == "aten::_convolution";
    auto arg = [&](size_t i) { return torch::jit::toIValue(node->input(i)); };
    c10::optional<c10::IValue> stride = arg(3), padding = arg(4), dilation = arg(5);
    c10::optional<c10::IValue> groups = arg(generic ? 8 : 6);
    bool transposed = generic && arg(6) && arg(6)->isBool() && arg(6)->toBool();
    layer->stride = Pair(stride ? IntsOf(*stride) : std::vector<int64_t>{}, 1);
    layer->dilation = Pair(dilation ? IntsOf(*dilation) : std::vector<int64_t>{}, 1);
    if (padding && padding->isString()) {
      bool same = padding->toStringRef() == "same";
      for (int i = 0; i < 2 && w.dim() == 4; ++i)
        layer->padding[i] = same ? layer->dilation[i] * (w.size(2 + i) - 1) / 2 : 0;
    } else {
      layer->padding = Pair(padding ? IntsOf(*padding) : std::vector<int64_t>{}, 0);
    }
    layer->groups = groups && groups->isInt() ? groups->toInt() : 1;
    layer->out_channels = w.size(0);
    layer->in_channels = w.dim() > 1 ? Product({w.size(1), layer->groups}) : 0;
    if (w.dim() == 4) layer->kernel = {w.size(2), w.size(3)};
    std::vector<int64_t> factors = w.sizes().vec();  // out, in / groups, kernel
    factors.push_back(2);
    for (size_t i = 2; i < out.shape.size(); ++i) factors.push_back(out.shape[i]);
    layer->flops = Product(factors);
    if (transposed || kind.find("transpose") != std::string::npos) {
      layer->why_not = "transposed convolutions are not compressed";
      return true;
    }
    if (w.dim() != 4 || out.shape.size() != 4) {
      layer->why_not = "only 2-d convolutions are compressed";
      return true;
    }
  }
  if (!out.shape_known || !in.shape_known) {
    layer->why_not = "its shapes are unknown (inside control flow)";
    return true;
  }
  auto [it, inserted] = used_weights->emplace(w.data_ptr(), layer->name);
  if (!inserted) {
    layer->why_not = "it shares its weight with layer '" + it->second + "'";
    return true;
  }
  layer->compressible = true;
  return true;
}

// ImportTorchScript once the file has passed CheckTorchArchive.
StatusOr<std::shared_ptr<ImportedModel>> Import(const std::string& path, const ImportOptions& options) {
  auto model = std::make_shared<ImportedModel>();
  model->path = path;
  model->input_shape = options.input_shape;
  torch::jit::Module original;
  std::unordered_map<const void*, std::string> param_paths;
  try {
    original = torch::jit::load(path);
    Status types = CheckAttributeTypes(original);
    if (!types.ok()) return Status::DataLoss("cannot load '" + path + "' as a TorchScript model: " + types.message());
    original.eval();
    for (const auto& p : original.named_parameters(/*recurse=*/true)) param_paths[p.value.data_ptr()] = p.name;
    for (const auto& b : original.named_buffers(/*recurse=*/true)) param_paths.emplace(b.value.data_ptr(), b.name);
  } catch (const std::exception& e) {
    return Status::DataLoss("cannot load '" + path + "' as a TorchScript model: " + ShortError(e));
  }
  try {
    if (!original.find_method("forward")) return Status::InvalidArgument("model '" + path + "' has no forward method");
    model->module = torch::jit::freeze_module(original);
    model->frozen = torch::jit::toGraphFunction(model->module.get_method("forward").function()).graph();
  } catch (const std::exception& e) {
    return Status::Unimplemented("cannot freeze '" + path + "': " + ShortError(e));
  }
  if (model->frozen->inputs().size() != 2) {
    return Status::Unimplemented("model '" + path + "' takes " +
                                 std::to_string(model->frozen->inputs().size() - 1) +
                                 " inputs; only models with one input tensor are supported");
  }

  torch::Tensor example = torch::rand(options.input_shape);
  ACS_ASSIGN_OR_RETURN(auto recorded, RecordValues(*model->frozen, model->module, example));
  Graph& g = model->graph;
  MirrorNodes(*model->frozen, recorded, &g);
  for (const ValueInfo& v : g.values) {
    if (v.shape_known && Extent(v.shape) < 0) {
      return Status::InvalidArgument("model '" + path + "' makes a tensor of shape " + FormatShape(v.shape) +
                                     " ('" + v.name + "'): its sizes multiply past 2^53");
    }
  }

  std::unordered_map<const void*, std::string> used_weights;
  std::set<std::string> names;
  std::vector<torch::jit::Node*> nodes = TopLevelNodes(*model->frozen);
  int64_t flops = 0, params = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Layer layer;
    if (!MakeLayer(nodes[i], static_cast<int>(i), g, param_paths, &used_weights, &layer)) continue;
    const bool counted = layer.flops >= 0 && layer.params >= 0 && (flops += layer.flops) <= kMaxCount &&
                         (params += layer.params) <= kMaxCount;
    if (!counted) {
      return Status::InvalidArgument("model '" + path + "' counts past 2^53 FLOPs or parameters (at layer '" +
                                     layer.name + "')");
    }
    // A weight used by several nodes names the first; the others are named by position.
    if (!names.insert(layer.name).second) {
      layer.name += "@" + std::to_string(i);
      names.insert(layer.name);
    }
    g.layers.push_back(std::move(layer));
  }
  ACS_RETURN_IF_ERROR(DeriveChannelGroups(&g));
  return model;
}

}  // namespace

std::string FormatShape(const Shape& shape) {
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "x" : "") + std::to_string(shape[i]);
  return out.empty() ? "-" : out;
}

StatusOr<std::shared_ptr<ImportedModel>> ImportTorchScript(const std::string& path,
                                                           const ImportOptions& options) {
  if (options.input_shape.empty()) return Status::InvalidArgument("an input shape is required, e.g. 1x3x32x32");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound("model file '" + path + "' does not exist");
  Status sound = CheckTorchArchive(path);
  if (!sound.ok()) return Status::DataLoss("cannot load '" + path + "' as a TorchScript model: " + sound.message());

  StatusOr<std::shared_ptr<ImportedModel>> model = Status::Internal("the import did not run");
  const bool ran = RunOnStack(kImportStackBytes, [&] {
    try {
      model = Import(path, options);
    } catch (const std::exception& e) {  // a LibTorch check outside the stages that expect one
      model = Status::InvalidArgument("cannot import '" + path + "': " + ShortError(e));
    } catch (...) {
      model = Status::Internal("cannot import '" + path + "': an unknown exception");
    }
  });
  if (!ran) return Status::ResourceExhausted("cannot start a thread to import '" + path + "'");
  return model;
}

}  // namespace acs
