#include "devices/runtime/packed_depthwise.h"

#include <string>
#include <utility>
#include <vector>

#include "devices/runtime/packed_state.h"

namespace acs::runtime {

bool IsDepthwise3x3(const torch::Tensor& weight, int64_t groups, const PackedConv::Geometry& g) {
  return weight.defined() && weight.dim() == 4 && weight.size(1) == 1 && weight.size(0) == groups && groups > 1 &&
         weight.size(2) == 3 && weight.size(3) == 3 && g.dilation[0] == 1 && g.dilation[1] == 1 &&
         g.stride[0] == g.stride[1] && (g.stride[0] == 1 || g.stride[0] == 2);
}

StatusOr<c10::intrusive_ptr<PackedDepthwiseConv>> PackedDepthwiseConv::Create(const torch::Tensor& weight,
                                                                              const torch::Tensor& bias,
                                                                              const PackedConv::Geometry& g,
                                                                              const PackOptions& options) {
  if (options.kernel.kind != KernelKind::kDepthwise) {
    return Status::InvalidArgument(std::string("PackedDepthwiseConv needs the depthwise kernel, got ") +
                                   KernelKindName(options.kernel.kind));
  }
  if (!weight.defined() || weight.dim() != 4 || weight.size(1) != 1) {
    return Status::InvalidArgument("depthwise conv weight must be [C, 1, kh, kw]");
  }
  torch::NoGradGuard no_grad;
  const int64_t channels = weight.size(0);
  const torch::Tensor w = Float2d(weight);
  ACS_ASSIGN_OR_RETURN(std::vector<float> b, BiasVector(bias, channels));
  kernels::DepthwiseOptions clamp;
  if (options.activation.enabled) {
    clamp.min = options.activation.min;
    clamp.max = options.activation.max;
  }
  ACS_ASSIGN_OR_RETURN(
      kernels::DepthwiseConv2d conv,
      kernels::DepthwiseConv2d::Create(std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel()),
                                       KernelGeometry(weight, g, channels), std::move(b), clamp));
  auto out = c10::make_intrusive<PackedDepthwiseConv>();
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options, g);
  out->conv_.emplace(std::move(conv));
  return out;
}

torch::Tensor PackedDepthwiseConv::Run(const torch::Tensor& x_in) const {
  const kernels::Conv2dGeometry& g = conv_->geometry();
  CheckConvInput(x_in, g, kDepthwiseConv2dOp);
  const torch::Tensor x = x_in.contiguous();
  const int64_t batch = x.size(0);
  torch::Tensor y = torch::empty({batch, g.channels, g.out_h(), g.out_w()}, x.options());
  if (batch == 0) return y;
  kernels::DepthwiseRunOptions run;
  run.threads = std::max(1, options_.threads);
  const Status s = conv_->Run(x.data_ptr<float>(), batch, y.data_ptr<float>(), run);
  TORCH_CHECK(s.ok(), kDepthwiseConv2dOp, ": ", s.message());
  return y;
}

namespace {

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
}
