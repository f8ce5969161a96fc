#include "core/channel_groups.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <unordered_set>

namespace acs {
namespace {

bool KindIn(const std::string& kind, const std::unordered_set<std::string>& set) {
  return set.count(kind) > 0;
}

// Ops whose first output keeps the channel axis of their first input unchanged.
const std::unordered_set<std::string>& ChannelPreservingUnary() {
  static const std::unordered_set<std::string> ops = {
      "aten::relu", "aten::relu_", "aten::relu6", "aten::relu6_", "aten::hardtanh",
      "aten::hardtanh_", "aten::sigmoid", "aten::sigmoid_", "aten::hardsigmoid",
      "aten::hardsigmoid_", "aten::hardswish", "aten::hardswish_", "aten::silu",
      "aten::silu_", "aten::gelu", "aten::tanh", "aten::tanh_", "aten::leaky_relu",
      "aten::leaky_relu_", "aten::elu", "aten::elu_", "aten::mish", "aten::softplus",
      "aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::alpha_dropout",
      "aten::feature_alpha_dropout", "aten::max_pool2d", "aten::avg_pool2d",
      "aten::adaptive_avg_pool2d", "aten::adaptive_max_pool2d", "aten::max_pool2d_with_indices",
      "aten::contiguous", "aten::clone", "aten::detach", "aten::upsample_nearest2d",
      "aten::upsample_bilinear2d", "aten::batch_norm", "aten::clamp", "aten::clamp_",
      "aten::clamp_min", "aten::clamp_min_", "aten::neg", "aten::exp", "aten::abs"};
  return ops;
}

const std::unordered_set<std::string>& ElementwiseBinary() {
  static const std::unordered_set<std::string> ops = {
      "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::mul", "aten::mul_",
      "aten::div", "aten::div_", "aten::maximum", "aten::minimum"};
  return ops;
}

const std::unordered_set<std::string>& SpatialReductions() {
  static const std::unordered_set<std::string> ops = {"aten::mean", "aten::sum", "aten::amax"};
  return ops;
}

// How a tensor's channel axis (axis 1) maps onto atoms. Empty = not tracked.
struct Segment {
  int atom;
  int64_t offset;
  int64_t channels;
  int64_t stride;
};
using Descriptor = std::vector<Segment>;

struct Atom {
  int parent = 0;
  int64_t channels = 0;
  bool locked = false;
  std::string why;
  std::vector<int> producers;
};

class Deriver {
 public:
  explicit Deriver(Graph* g) : g_(*g) {}

  Status Run();

 private:
  int NewAtom(int64_t channels) {
    Atom atom;
    atom.parent = static_cast<int>(atoms_.size());
    atom.channels = channels;
    atoms_.push_back(atom);
    return static_cast<int>(atoms_.size()) - 1;
  }
  int Find(int a) {
    while (atoms_[a].parent != a) a = atoms_[a].parent = atoms_[atoms_[a].parent].parent;
    return a;
  }
  void Union(int a, int b) {
    a = Find(a);
    b = Find(b);
    if (a == b) return;
    atoms_[b].parent = a;
    if (atoms_[b].locked && !atoms_[a].locked) {
      atoms_[a].locked = true;
      atoms_[a].why = atoms_[b].why;
    }
  }
  void Lock(const Descriptor& d, const std::string& why) {
    for (const Segment& s : d) {
      Atom& a = atoms_[Find(s.atom)];
      if (!a.locked) {
        a.locked = true;
        a.why = why;
      }
    }
  }
  const Descriptor& Desc(int value) {
    static const Descriptor kEmpty;
    auto it = desc_.find(value);
    return it == desc_.end() ? kEmpty : it->second;
  }
  const Shape* KnownShape(int value) const {
    const ValueInfo& v = g_.values[value];
    return v.is_tensor && v.shape_known ? &v.shape : nullptr;
  }
  // A channel-carrying tensor: rank 2 [N, C] or rank 4 [N, C, H, W].
  bool IsChannelTensor(int value) const {
    const Shape* s = KnownShape(value);
    return s && (s->size() == 2 || s->size() == 4);
  }
  Descriptor FreshAtom(int value, const std::string& locked_why) {
    int a = NewAtom(g_.values[value].shape[1]);
    if (!locked_why.empty()) {
      atoms_[a].locked = true;
      atoms_[a].why = locked_why;
    }
    return {Segment{a, 0, atoms_[a].channels, 1}};
  }
  // Tensor inputs of a node, looking through prim::ListConstruct.
  std::vector<int> TensorInputs(const Node& n) const {
    std::vector<int> out;
    for (int v : n.inputs) {
      const ValueInfo& info = g_.values[v];
      if (info.is_tensor) {
        out.push_back(v);
      } else if (info.producer >= 0 && g_.nodes[info.producer].kind == "prim::ListConstruct") {
        for (int item : g_.nodes[info.producer].inputs) {
          if (g_.values[item].is_tensor) out.push_back(item);
        }
      }
    }
    return out;
  }
  void LockInputs(const Node& n, const std::string& why) {
    for (int v : TensorInputs(n)) Lock(Desc(v), why);
  }
  // The tensor outputs of an op whose channel semantics are unknown: fresh locked atoms.
  void OpaqueOutputs(const Node& n) {
    for (int v : n.outputs) {
      if (IsChannelTensor(v)) desc_[v] = FreshAtom(v, "come from " + n.kind);
    }
  }
  int64_t NormalizeDim(int64_t dim, size_t rank) const {
    return dim < 0 ? dim + static_cast<int64_t>(rank) : dim;
  }
  bool SameLayout(const Descriptor& a, const Descriptor& b) const {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].offset != b[i].offset || a[i].channels != b[i].channels || a[i].stride != b[i].stride)
        return false;
    }
    return true;
  }

  void VisitLayer(int layer_index, const Node& n);
  void VisitBinary(int node_index, const Node& n);
  void VisitNode(int node_index);
  void AddChannelTensor(int node, int input, int64_t axis, const Descriptor& d) {
    pending_tensors_.push_back({node, input, axis, d});
  }
  std::vector<ChannelSegment> ToSegments(const Descriptor& d) {
    std::vector<ChannelSegment> out;
    for (const Segment& s : d) out.push_back({Find(s.atom), s.offset, s.channels, s.stride});
    return out;
  }

  Graph& g_;
  std::vector<Atom> atoms_;
  std::map<int, Descriptor> desc_;
  std::map<int, int> layer_of_node_;
  std::vector<Descriptor> layer_inputs_;
  std::vector<Descriptor> layer_outputs_;
  struct PendingTensor {
    int node, input;
    int64_t axis;
    Descriptor desc;
  };
  std::vector<PendingTensor> pending_tensors_;
};

void Deriver::VisitLayer(int li, const Node& n) {
  Layer& layer = g_.layers[li];
  int in = n.inputs.empty() ? -1 : n.inputs[0];
  int out = n.outputs.empty() ? -1 : n.outputs[0];
  Descriptor in_desc = in >= 0 ? Desc(in) : Descriptor{};
  const std::string name = "layer '" + layer.name + "'";
  // Output channels that only this layer produces; locked_why empty = prunable.
  auto produce = [&](const std::string& locked_why) {
    if (out < 0 || !IsChannelTensor(out)) return;
    Descriptor d = FreshAtom(out, locked_why);
    atoms_[d[0].atom].producers.push_back(li);
    layer_outputs_[li] = d;
    desc_[out] = d;
  };
  if (!layer.compressible) {
    Lock(in_desc, "feed " + name + ", which is not compressible");
    layer_inputs_[li] = in_desc;
    produce("come from " + name + ", which is not compressible");
    return;
  }
  if (layer.depthwise()) {
    if (in_desc.empty()) {
      produce("come from depthwise " + name + " whose input is untracked");
      return;
    }
    layer_inputs_[li] = in_desc;
    layer_outputs_[li] = in_desc;
    desc_[out] = in_desc;
    return;
  }
  if (layer.type == LayerType::kConv2d && layer.groups > 1) {
    Lock(in_desc, "feed grouped conv " + name);
    layer_inputs_[li] = in_desc;
    produce("come from grouped conv " + name);
    return;
  }
  const Shape* in_shape = in >= 0 ? KnownShape(in) : nullptr;
  if (layer.type == LayerType::kLinear && (!in_shape || in_shape->size() != 2)) {
    Lock(in_desc, "feed " + name + " with an input that is not [batch, features]");
  }
  layer_inputs_[li] = in_desc;
  produce("");
}

void Deriver::VisitBinary(int ni, const Node& n) {
  int a = n.inputs[0], b = n.inputs.size() > 1 ? n.inputs[1] : -1;
  int out = n.outputs[0];
  const Descriptor& da = Desc(a);
  bool b_tensor = b >= 0 && g_.values[b].is_tensor;
  if (!b_tensor) {  // tensor op scalar
    if (!da.empty()) desc_[out] = da;
    else OpaqueOutputs(n);
    return;
  }
  const Descriptor& db = Desc(b);
  const Shape* sa = KnownShape(a);
  const Shape* sb = KnownShape(b);
  if (!da.empty() && !db.empty()) {
    if (SameLayout(da, db)) {
      for (size_t i = 0; i < da.size(); ++i) Union(da[i].atom, db[i].atom);
      desc_[out] = da;
    } else {
      Lock(da, "are combined by " + n.kind + " with a different channel layout");
      Lock(db, "are combined by " + n.kind + " with a different channel layout");
      OpaqueOutputs(n);
    }
    return;
  }
  // One side tracked, the other a constant or an untracked tensor.
  const Descriptor& tracked = da.empty() ? db : da;
  int other = da.empty() ? a : b;
  int other_input = da.empty() ? 0 : 1;
  const Shape* tracked_shape = da.empty() ? sb : sa;
  const ValueInfo& ov = g_.values[other];
  if (tracked.empty()) {
    OpaqueOutputs(n);
    return;
  }
  const Shape* os = KnownShape(other);
  int64_t numel = 1;
  if (os) for (int64_t d : *os) numel *= d;
  if (os && numel == 1) {
    desc_[out] = tracked;
    return;
  }
  if (ov.is_constant && os && tracked_shape) {
    // A per-channel constant broadcast along axis 1 of the tracked tensor.
    size_t rank = tracked_shape->size();
    if (os->size() <= rank) {
      size_t axis_in_const = os->size() - (rank - 1);  // the tensor's axis 1, right-aligned
      bool per_channel = os->size() >= rank - 1 && (*os)[axis_in_const] == (*tracked_shape)[1];
      for (size_t i = 0; per_channel && i < os->size(); ++i) {
        if (i != axis_in_const && (*os)[i] != 1) per_channel = false;
      }
      if (per_channel) {
        AddChannelTensor(ni, other_input, static_cast<int64_t>(axis_in_const), tracked);
        desc_[out] = tracked;
        return;
      }
    }
  }
  Lock(tracked, "are combined by " + n.kind + " with an untracked tensor");
  OpaqueOutputs(n);
}

void Deriver::VisitNode(int ni) {
  const Node& n = g_.nodes[ni];
  auto layer_it = layer_of_node_.find(ni);
  if (layer_it != layer_of_node_.end()) {
    VisitLayer(layer_it->second, n);
    return;
  }
  const std::string& k = n.kind;
  if (k == "prim::Constant" || k == "prim::ListConstruct") return;
  bool has_tensor_output = false;
  for (int v : n.outputs) has_tensor_output |= g_.values[v].is_tensor;
  if (!has_tensor_output && !n.has_blocks &&
      (k == "aten::size" || k == "aten::dim" || k == "aten::len" || k == "prim::shape" ||
       k == "aten::__is__" || k == "aten::__isnot__" || k == "prim::device" || k == "prim::dtype")) {
    return;  // inspects shape or metadata only
  }
  if (n.outputs.empty() || n.has_blocks || n.inputs.empty()) {
    LockInputs(n, "are used by " + k);
    OpaqueOutputs(n);
    return;
  }
  int in = n.inputs[0];
  int out = n.outputs[0];
  const Descriptor& din = Desc(in);
  if (KindIn(k, ChannelPreservingUnary()) && !din.empty() && IsChannelTensor(out)) {
    desc_[out] = din;
    if (k == "aten::batch_norm") {
      for (int i = 1; i <= 4 && i < static_cast<int>(n.inputs.size()); ++i) {
        const ValueInfo& v = g_.values[n.inputs[i]];
        if (v.is_none) continue;
        if (!v.is_constant) {
          Lock(din, "go through a batch norm whose parameters are computed");
          break;
        }
        AddChannelTensor(ni, i, 0, din);
      }
    }
    return;
  }
  if (KindIn(k, ElementwiseBinary()) && IsChannelTensor(out)) {
    VisitBinary(ni, n);
    return;
  }
  if (KindIn(k, SpatialReductions()) && !din.empty() && n.inputs.size() > 1) {
    const ValueInfo& dims = g_.values[n.inputs[1]];
    const Shape* s = KnownShape(in);
    bool keeps_channels = dims.is_constant && !dims.ints.empty() && s;
    for (int64_t d : dims.ints) keeps_channels &= s && NormalizeDim(d, s->size()) >= 2;
    if (keeps_channels && IsChannelTensor(out)) {
      desc_[out] = din;
      return;
    }
  }
  if (k == "aten::cat" && n.inputs.size() == 2 && IsChannelTensor(out)) {
    const ValueInfo& dim = g_.values[n.inputs[1]];
    std::vector<int> parts = TensorInputs(n);
    const Shape* os = KnownShape(out);
    bool channel_cat = dim.is_constant && dim.ints.size() == 1 && NormalizeDim(dim.ints[0], os->size()) == 1;
    bool all_tracked = !parts.empty();
    for (int p : parts) all_tracked &= !Desc(p).empty();
    if (channel_cat && all_tracked) {
      Descriptor d;
      int64_t offset = 0;
      for (int p : parts) {
        for (Segment s : Desc(p)) {
          s.offset += offset;
          d.push_back(s);
        }
        offset += g_.values[p].shape[1];
      }
      desc_[out] = d;
      return;
    }
  }
  const Shape* in_shape = KnownShape(in);
  const Shape* out_shape = KnownShape(out);
  bool reshape_like = k == "aten::flatten" || k == "aten::view" || k == "aten::reshape";
  if (reshape_like && !din.empty() && in_shape && out_shape) {
    if (*in_shape == *out_shape) {
      desc_[out] = din;
      return;
    }
    if (in_shape->size() == 4 && out_shape->size() == 2 && (*out_shape)[0] == (*in_shape)[0]) {
      int64_t spatial = (*in_shape)[2] * (*in_shape)[3];
      Descriptor d = din;
      for (Segment& s : d) {
        s.offset *= spatial;
        s.stride *= spatial;
      }
      desc_[out] = d;
      return;
    }
  }
  LockInputs(n, "are used by " + k);
  OpaqueOutputs(n);
}

Status Deriver::Run() {
  for (size_t i = 0; i < g_.layers.size(); ++i) layer_of_node_[g_.layers[i].node] = static_cast<int>(i);
  layer_inputs_.assign(g_.layers.size(), {});
  layer_outputs_.assign(g_.layers.size(), {});
  for (int v : g_.inputs) {
    if (IsChannelTensor(v)) desc_[v] = FreshAtom(v, "come from the model input");
  }
  for (size_t ni = 0; ni < g_.nodes.size(); ++ni) VisitNode(static_cast<int>(ni));
  for (int v : g_.outputs) {
    Lock(Desc(v), "reach the model output");
    const ValueInfo& info = g_.values[v];
    if (!info.is_tensor && info.producer >= 0) {
      for (int item : g_.nodes[info.producer].inputs) Lock(Desc(item), "reach the model output");
    }
  }

  // One group per atom root that some layer produces or consumes.
  std::map<int, int> group_of_root;
  auto group_for = [&](int atom) {
    int root = Find(atom);
    auto it = group_of_root.find(root);
    if (it != group_of_root.end()) return it->second;
    ChannelGroup group;
    group.channels = atoms_[root].channels;
    g_.groups.push_back(group);
    return group_of_root[root] = static_cast<int>(g_.groups.size()) - 1;
  };
  auto to_groups = [&](const Descriptor& d) {
    std::vector<ChannelSegment> out;
    for (const Segment& s : d) out.push_back({group_for(s.atom), s.offset, s.channels, s.stride});
    return out;
  };
  for (size_t li = 0; li < g_.layers.size(); ++li) {
    Layer& layer = g_.layers[li];
    if (!layer_outputs_[li].empty()) {
      layer.out_group = group_for(layer_outputs_[li][0].atom);
      bool carries_input = layer.depthwise() && !layer_inputs_[li].empty();
      if (!carries_input) g_.groups[layer.out_group].producers.push_back(static_cast<int>(li));
    }
    if (!layer_inputs_[li].empty()) {
      layer.input_segments = to_groups(layer_inputs_[li]);
      layer.in_group = layer.input_segments[0].group;
      std::set<int> seen;
      for (const ChannelSegment& s : layer.input_segments) {
        if (!seen.insert(s.group).second) continue;
        if (layer.depthwise() && layer.compressible) g_.groups[s.group].carriers.push_back(static_cast<int>(li));
        else g_.groups[s.group].consumers.push_back(static_cast<int>(li));
      }
    }
  }
  for (const PendingTensor& t : pending_tensors_) {
    g_.channel_tensors.push_back({t.node, t.input, t.axis, to_groups(t.desc)});
  }
  for (const auto& [root, gi] : group_of_root) {
    ChannelGroup& group = g_.groups[gi];
    const Atom& atom = atoms_[root];
    if (atom.locked) {
      group.prunable = false;
      group.why_not = "channels " + atom.why;
    } else if (group.producers.empty()) {
      group.prunable = false;
      group.why_not = "no layer produces these channels";
    } else if (group.channels < 2) {
      group.prunable = false;
      group.why_not = "a single channel cannot be pruned";
    }
  }
  return Status::Ok();
}

}  // namespace

Status DeriveChannelGroups(Graph* graph) {
  graph->groups.clear();
  graph->channel_tensors.clear();
  for (Layer& l : graph->layers) {
    l.out_group = l.in_group = -1;
    l.input_segments.clear();
  }
  return Deriver(graph).Run();
}

}  // namespace acs
