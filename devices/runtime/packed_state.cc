#include "devices/runtime/packed_state.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "devices/runtime/acs_ops.h"

namespace acs::runtime {
namespace {

constexpr KernelKind kKinds[] = {KernelKind::kDense,     KernelKind::kBlockSparse,  KernelKind::kCsr,
                                 KernelKind::kNm,        KernelKind::kInt8,         KernelKind::kInt4w,
                                 KernelKind::kDepthwise, KernelKind::kInt8Simulated};

struct LoweringName {
  kernels::ConvLowering lowering;
  const char* name;
};
constexpr LoweringName kLowerings[] = {{kernels::ConvLowering::kAuto, "auto"},
                                       {kernels::ConvLowering::kIm2col, "im2col"},
                                       {kernels::ConvLowering::kDirect, "direct"}};

const char* NameOf(kernels::ConvLowering lowering) {
  for (const LoweringName& l : kLowerings) {
    if (l.lowering == lowering) return l.name;
  }
  return "auto";
}

// Reads the fields of one tuple of a state, throwing c10::Error that names the class and
// the field on a mismatch.
class TupleReader {
 public:
  TupleReader(const c10::IValue& v, size_t size, const char* cls, std::string what)
      : cls_(cls), what_(std::move(what)) {
    TORCH_CHECK(v.isTuple(), cls_, ": bad saved state: ", what_, " is a ", v.tagKind(), ", expected a tuple");
    elements_ = v.toTupleRef().elements().vec();
    TORCH_CHECK(elements_.size() == size, cls_, ": bad saved state: ", what_, " has ", elements_.size(),
                " fields, expected ", size);
  }
  const c10::IValue& At(size_t i) const { return elements_.at(i); }
  int64_t Int(size_t i, const char* field) const { return Check(i, field, At(i).isInt(), "int").toInt(); }
  bool Bool(size_t i, const char* field) const { return Check(i, field, At(i).isBool(), "bool").toBool(); }
  double Double(size_t i, const char* field) const {
    const c10::IValue& v = Check(i, field, At(i).isDouble() || At(i).isInt(), "float");
    return v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
  }
  std::string String(size_t i, const char* field) const {
    return Check(i, field, At(i).isString(), "str").toStringRef();
  }
  torch::Tensor Tensor(size_t i, const char* field, bool optional) const {
    if (optional && At(i).isNone()) return torch::Tensor();
    return Check(i, field, At(i).isTensor(), "Tensor").toTensor();
  }
  std::string Field(const char* field) const { return what_ + "." + field; }

 private:
  const c10::IValue& Check(size_t i, const char* field, bool ok, const char* type) const {
    TORCH_CHECK(ok, cls_, ": bad saved state: ", Field(field), " is a ", At(i).tagKind(), ", expected ", type);
    return At(i);
  }
  const char* cls_;
  std::string what_;
  std::vector<c10::IValue> elements_;
};

c10::IValue OptionsState(const PackOptions& o) {
  const Activation& a = o.activation;
  return c10::ivalue::Tuple::create(
      {c10::IValue(std::string(KernelKindName(o.kernel.kind))), c10::IValue(int64_t{o.kernel.block}),
       c10::IValue(int64_t{o.kernel.nm_n}), c10::IValue(int64_t{o.kernel.nm_m}),
       c10::ivalue::Tuple::create({c10::IValue(a.enabled), c10::IValue(static_cast<double>(a.min)),
                                   c10::IValue(static_cast<double>(a.max)), c10::IValue(a.name)}),
       c10::IValue(int64_t{o.threads}), c10::IValue(std::string(NameOf(o.lowering)))});
}

PackOptions OptionsFromState(const c10::IValue& v, const char* cls) {
  const TupleReader r(v, 7, cls, "options");
  PackOptions o;
  const std::string kind = r.String(0, "kernel");
  bool known = false;
  for (KernelKind k : kKinds) {
    if (kind == KernelKindName(k)) {
      o.kernel.kind = k;
      known = true;
    }
  }
  TORCH_CHECK(known, cls, ": bad saved state: unknown kernel kind '", kind, "'");
  o.kernel.block = static_cast<int>(r.Int(1, "block"));
  o.kernel.nm_n = static_cast<int>(r.Int(2, "nm_n"));
  o.kernel.nm_m = static_cast<int>(r.Int(3, "nm_m"));
  const TupleReader a(r.At(4), 4, cls, r.Field("activation"));
  o.activation.enabled = a.Bool(0, "enabled");
  o.activation.min = static_cast<float>(a.Double(1, "min"));
  o.activation.max = static_cast<float>(a.Double(2, "max"));
  o.activation.name = a.String(3, "name");
  // A file chooses its layers' threads only up to this machine's hardware threads.
  const int64_t hardware = std::max(1u, std::thread::hardware_concurrency());
  o.threads = static_cast<int>(std::clamp<int64_t>(r.Int(5, "threads"), 1, hardware));
  const std::string lowering = r.String(6, "lowering");
  known = false;
  for (const LoweringName& l : kLowerings) {
    if (lowering == l.name) {
      o.lowering = l.lowering;
      known = true;
    }
  }
  TORCH_CHECK(known, cls, ": bad saved state: unknown convolution lowering '", lowering, "'");
  return o;
}

c10::IValue GeometryState(const ConvGeometry& g) {
  return c10::IValue(std::vector<int64_t>{g.stride[0], g.stride[1], g.padding[0], g.padding[1], g.dilation[0],
                                          g.dilation[1], g.height, g.width});
}

ConvGeometry GeometryFromState(const c10::IValue& v, const char* cls) {
  TORCH_CHECK(v.isIntList() && v.toIntList().size() == 8, cls,
              ": bad saved state: geometry is not a list of 8 ints (stride, padding, dilation, height, width)");
  const std::vector<int64_t> i = v.toIntVector();
  ConvGeometry g;
  g.stride = {i[0], i[1]};
  g.padding = {i[2], i[3]};
  g.dilation = {i[4], i[5]};
  g.height = i[6];
  g.width = i[7];
  return g;
}

}  // namespace

c10::IValue PackState(const PackSource& s, const PackStateKind& kind) {
  c10::IValue quant;  // None
  if (kind.quant) {
    quant = c10::ivalue::Tuple::create(
        {c10::IValue(static_cast<double>(s.quant.scale)), c10::IValue(int64_t{s.quant.zero_point})});
  }
  return c10::ivalue::Tuple::create(
      {c10::IValue(kPackStateVersion), c10::IValue(s.weight), s.bias.defined() ? c10::IValue(s.bias) : c10::IValue(),
       kind.geometry ? GeometryState(s.geometry) : c10::IValue(), quant, OptionsState(s.options)});
}

PackSource PackSourceFromState(const c10::IValue& state, const PackStateKind& kind) {
  const char* cls = kind.name;
  TORCH_CHECK(state.isTuple() && !state.toTupleRef().elements().empty() && state.toTupleRef().elements()[0].isInt(),
              cls, ": bad saved state: expected a tuple led by a format version, got a ", state.tagKind());
  const int64_t version = state.toTupleRef().elements()[0].toInt();
  TORCH_CHECK(version == kPackStateVersion, cls, ": saved with format version ", version,
              ", this library reads version ", kPackStateVersion);
  const TupleReader r(state, 6, cls, "state");
  PackSource s;
  s.weight = r.Tensor(1, "weight", /*optional=*/false);
  s.bias = r.Tensor(2, "bias", /*optional=*/true);
  if (kind.geometry) s.geometry = GeometryFromState(r.At(3), cls);
  if (kind.quant) {
    const TupleReader q(r.At(4), 2, cls, "quant");
    s.quant.scale = static_cast<float>(q.Double(0, "scale"));
    s.quant.zero_point = static_cast<int32_t>(q.Int(1, "zero_point"));
  }
  s.options = OptionsFromState(r.At(5), cls);
  return s;
}

}  // namespace acs::runtime

int64_t acs_ops_format_version() { return acs::runtime::kPackStateVersion; }
