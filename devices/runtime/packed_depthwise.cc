#include "devices/runtime/packed_depthwise.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "devices/runtime/packed_state.h"

namespace acs::runtime {

namespace {

// groups = channels, dilation 1, stride 1 or 2 on both axes.
bool IsDepthwise(const torch::Tensor& weight, int64_t groups, const PackedConv::Geometry& g) {
  return weight.defined() && weight.dim() == 4 && weight.size(1) == 1 && weight.size(0) == groups && groups > 1 &&
         g.dilation[0] == 1 && g.dilation[1] == 1 && g.stride[0] == g.stride[1] &&
         (g.stride[0] == 1 || g.stride[0] == 2);
}

// What both depthwise classes' Create take from their arguments.
struct DepthwiseArgs {
  torch::Tensor w;  // [C, kh * kw] float32
  std::vector<float> bias;
  kernels::Conv2dGeometry geometry;
  kernels::DepthwiseOptions clamp;  // the fused activation's, or none
};

// Errors (InvalidArgument): options for another kernel than `kind`, a weight not [C, 1, kh, kw].
StatusOr<DepthwiseArgs> ReadDepthwiseArgs(const torch::Tensor& weight, const torch::Tensor& bias,
                                          const PackedConv::Geometry& g, const PackOptions& options, KernelKind kind) {
  if (options.kernel.kind != kind) {
    return Status::InvalidArgument(std::string("depthwise conv needs the ") + KernelKindName(kind) + " kernel, got " +
                                   KernelKindName(options.kernel.kind));
  }
  if (!weight.defined() || weight.dim() != 4 || weight.size(1) != 1) {
    return Status::InvalidArgument("depthwise conv weight must be [C, 1, kh, kw]");
  }
  DepthwiseArgs a;
  a.w = Float2d(weight);
  ACS_ASSIGN_OR_RETURN(a.bias, BiasVector(bias, weight.size(0)));
  a.geometry = KernelGeometry(weight, g, weight.size(0));
  if (options.activation.enabled) {
    a.clamp.min = options.activation.min;
    a.clamp.max = options.activation.max;
  }
  return a;
}

// x [N, C, H, W] through a depthwise kernel class's Run -> [N, C, out_h, out_w]; throws
// c10::Error naming `op` on a shape mismatch or a failed run.
template <class RunOptions, class Conv>
torch::Tensor RunDepthwise(const Conv& conv, const torch::Tensor& x_in, int threads, const char* op) {
  const kernels::Conv2dGeometry& g = conv.geometry();
  CheckConvInput(x_in, g, op);
  const torch::Tensor x = x_in.contiguous();
  const int64_t batch = x.size(0);
  torch::Tensor y = torch::empty({batch, g.channels, g.out_h(), g.out_w()}, x.options());
  if (batch == 0) return y;
  RunOptions run;
  run.threads = std::max(1, threads);
  const Status s = conv.Run(x.data_ptr<float>(), batch, y.data_ptr<float>(), run);
  TORCH_CHECK(s.ok(), op, ": ", s.message());
  return y;
}

}  // namespace

bool IsDepthwise3x3(const torch::Tensor& weight, int64_t groups, const PackedConv::Geometry& g) {
  return IsDepthwise(weight, groups, g) && weight.size(2) == 3 && weight.size(3) == 3;
}

bool IsInt8Depthwise(const torch::Tensor& weight, int64_t groups, const PackedConv::Geometry& g) {
  return IsDepthwise(weight, groups, g) && weight.size(2) <= 7 && weight.size(3) <= 7;
}

StatusOr<c10::intrusive_ptr<PackedDepthwiseConv>> PackedDepthwiseConv::Create(const torch::Tensor& weight,
                                                                              const torch::Tensor& bias,
                                                                              const PackedConv::Geometry& g,
                                                                              const PackOptions& options) {
  torch::NoGradGuard no_grad;
  ACS_ASSIGN_OR_RETURN(DepthwiseArgs a, ReadDepthwiseArgs(weight, bias, g, options, KernelKind::kDepthwise));
  ACS_ASSIGN_OR_RETURN(
      kernels::DepthwiseConv2d conv,
      kernels::DepthwiseConv2d::Create(std::vector<float>(a.w.data_ptr<float>(), a.w.data_ptr<float>() + a.w.numel()),
                                       a.geometry, std::move(a.bias), a.clamp));
  auto out = c10::make_intrusive<PackedDepthwiseConv>();
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options, g);
  out->conv_.emplace(std::move(conv));
  return out;
}

torch::Tensor PackedDepthwiseConv::Run(const torch::Tensor& x) const {
  return RunDepthwise<kernels::DepthwiseRunOptions>(*conv_, x, options_.threads, kDepthwiseConv2dOp);
}

StatusOr<c10::intrusive_ptr<PackedInt8DepthwiseConv>> PackedInt8DepthwiseConv::Create(
    const torch::Tensor& weight, const torch::Tensor& bias, const PackedConv::Geometry& g,
    const kernels::ActivationQuant& quant, const PackOptions& options) {
  torch::NoGradGuard no_grad;
  ACS_ASSIGN_OR_RETURN(DepthwiseArgs a, ReadDepthwiseArgs(weight, bias, g, options, KernelKind::kInt8));
  ACS_ASSIGN_OR_RETURN(kernels::Int8Weights q,
                       kernels::QuantizeInt8Weights({a.w.data_ptr<float>(), a.w.size(0), a.w.size(1)}));
  kernels::Int8DepthwiseOptions o;
  o.input_quant = quant;
  o.min = a.clamp.min;
  o.max = a.clamp.max;
  ACS_ASSIGN_OR_RETURN(kernels::Int8DepthwiseConv2d conv,
                       kernels::Int8DepthwiseConv2d::Create(q, a.geometry, std::move(a.bias), o));
  auto out = c10::make_intrusive<PackedInt8DepthwiseConv>();
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options, g, quant);
  out->conv_.emplace(std::move(conv));
  return out;
}

torch::Tensor PackedInt8DepthwiseConv::Run(const torch::Tensor& x) const {
  return RunDepthwise<kernels::Int8Options>(*conv_, x, options_.threads, kInt8DepthwiseConv2dOp);
}

int64_t PackedInt8DepthwiseConv::packed_bytes() const { return conv_->packed_bytes(); }

namespace {

torch::Tensor Int8DepthwiseConv2dOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedInt8DepthwiseConv>& packed) {
  return packed->Run(x);
}

torch::Tensor DepthwiseConv2dOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedDepthwiseConv>& packed) {
  return packed->Run(x);
}

}  // namespace
}  // namespace acs::runtime

// Registered beside the packer, as packed_layer.cc does for the sparse ops.
TORCH_LIBRARY_FRAGMENT(acs_rt, m) {
  using acs::runtime::PackedDepthwiseConv;
  using acs::runtime::PackSource;
  static constexpr const auto& kDepthwise = acs::runtime::kPackedDepthwiseConvState;
  m.class_<PackedDepthwiseConv>("PackedDepthwiseConv")
      .def_pickle(
          [](const c10::intrusive_ptr<PackedDepthwiseConv>& self) {
            return acs::runtime::PackState(self->source(), kDepthwise);
          },
          [](c10::IValue state) {
            const PackSource s = acs::runtime::PackSourceFromState(state, kDepthwise);
            return acs::runtime::PackedOrThrow(PackedDepthwiseConv::Create(s.weight, s.bias, s.geometry, s.options),
                                               kDepthwise);
          });
  m.def("depthwise_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedDepthwiseConv packed) -> Tensor",
        acs::runtime::DepthwiseConv2dOp);
  using acs::runtime::PackedInt8DepthwiseConv;
  static constexpr const auto& kInt8 = acs::runtime::kPackedInt8DepthwiseConvState;
  m.class_<PackedInt8DepthwiseConv>("PackedInt8DepthwiseConv")
      .def_pickle(
          [](const c10::intrusive_ptr<PackedInt8DepthwiseConv>& self) {
            return acs::runtime::PackState(self->source(), kInt8);
          },
          [](c10::IValue state) {
            const PackSource s = acs::runtime::PackSourceFromState(state, kInt8);
            return acs::runtime::PackedOrThrow(
                PackedInt8DepthwiseConv::Create(s.weight, s.bias, s.geometry, s.quant, s.options), kInt8);
          });
  m.def("int8_depthwise_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedInt8DepthwiseConv packed) -> Tensor",
        acs::runtime::Int8DepthwiseConv2dOp);
}
