#include "devices/runtime/packed_int8.h"

#include <algorithm>
#include <string>
#include <utility>

#include "devices/runtime/packed_state.h"

namespace acs::runtime {
namespace {

Status CheckKind(const PackOptions& options, KernelKind want, const char* what) {
  if (options.kernel.kind == want) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " needs the " + KernelKindName(want) + " kernel, got " +
                                 KernelKindName(options.kernel.kind));
}

kernels::DenseView ViewOf2d(const torch::Tensor& w2d) { return {w2d.data_ptr<float>(), w2d.size(0), w2d.size(1)}; }

kernels::Int8Options Int8OptionsOf(const PackOptions& o) {
  kernels::Int8Options k;
  k.threads = std::max(1, o.threads);
  return k;
}

// A relu runs inside the int8 / int4 kernels; other clamps after them.
bool KernelRelu(const Activation& a) { return a.is_relu(); }

void ClampAfterKernel(const Activation& a, float* y, int64_t n) {
  if (!KernelRelu(a)) ApplyActivation(a, y, n);
}

// The operands of a kernel call on RunOnColumns' columns (Int8GemmArgs, Int4LinearArgs).
template <class Args>
Args ColumnArgs(const float* xt, int64_t batch, float* yt, const std::vector<float>& bias, const Activation& a) {
  Args args;
  args.x = xt;
  args.ldx = batch;
  args.y = yt;
  args.ldy = batch;
  args.p = batch;
  args.bias = bias.empty() ? nullptr : bias.data();
  args.relu = KernelRelu(a);
  return args;
}

int64_t Int8Bytes(const kernels::Int8Weights& w) {
  return w.rows * w.ld + w.rows * static_cast<int64_t>(sizeof(float));
}

}  // namespace

StatusOr<c10::intrusive_ptr<PackedInt8Conv>> PackedInt8Conv::Create(const torch::Tensor& weight,
                                                                    const torch::Tensor& bias,
                                                                    const PackedConv::Geometry& g,
                                                                    const kernels::ActivationQuant& quant,
                                                                    const PackOptions& options) {
  if (!weight.defined() || weight.dim() != 4) return Status::InvalidArgument("conv weight must be [O, C, kh, kw]");
  ACS_RETURN_IF_ERROR(CheckKind(options, KernelKind::kInt8, "PackedInt8Conv"));
  torch::NoGradGuard no_grad;
  ACS_ASSIGN_OR_RETURN(kernels::Int8Weights w, kernels::QuantizeInt8Weights(ViewOf2d(Float2d(weight))));
  ACS_ASSIGN_OR_RETURN(std::vector<float> b, BiasVector(bias, weight.size(0)));
  kernels::Int8Conv2dOptions conv_options;
  conv_options.input_quant = quant;
  conv_options.relu = KernelRelu(options.activation);
  conv_options.lowering = options.lowering;
  ACS_ASSIGN_OR_RETURN(kernels::Int8Conv2d conv, kernels::Int8Conv2d::Create(std::move(w), KernelGeometry(weight, g),
                                                                             std::move(b), conv_options));
  auto out = c10::make_intrusive<PackedInt8Conv>();
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options, g, quant);
  out->conv_.emplace(std::move(conv));
  return out;
}

torch::Tensor PackedInt8Conv::Run(const torch::Tensor& x_in) const {
  const kernels::Conv2dGeometry& g = conv_->geometry();
  CheckConvInput(x_in, g, kInt8Conv2dOp);
  const torch::Tensor x = x_in.contiguous();
  const int64_t batch = x.size(0);
  torch::Tensor y = torch::empty({batch, conv_->out_channels(), g.out_h(), g.out_w()}, x.options());
  if (batch == 0) return y;
  const Status s = conv_->Run(x.data_ptr<float>(), batch, y.data_ptr<float>(), Int8OptionsOf(options_));
  TORCH_CHECK(s.ok(), kInt8Conv2dOp, ": ", s.message());
  ClampAfterKernel(options_.activation, y.data_ptr<float>(), y.numel());
  return y;
}

int64_t PackedInt8Conv::packed_bytes() const { return Int8Bytes(conv_->weights()); }

StatusOr<c10::intrusive_ptr<PackedInt8Linear>> PackedInt8Linear::Create(const torch::Tensor& weight,
                                                                        const torch::Tensor& bias,
                                                                        const kernels::ActivationQuant& quant,
                                                                        const PackOptions& options) {
  if (!weight.defined() || weight.dim() != 2) return Status::InvalidArgument("linear weight must be [O, K]");
  ACS_RETURN_IF_ERROR(CheckKind(options, KernelKind::kInt8, "PackedInt8Linear"));
  ACS_RETURN_IF_ERROR(kernels::Validate(quant));
  torch::NoGradGuard no_grad;
  auto out = c10::make_intrusive<PackedInt8Linear>();
  ACS_ASSIGN_OR_RETURN(out->weights_, kernels::QuantizeInt8Weights(ViewOf2d(Float2d(weight))));
  ACS_ASSIGN_OR_RETURN(out->bias_, BiasVector(bias, weight.size(0)));
  out->quant_ = quant;
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options, {}, quant);
  return out;
}

torch::Tensor PackedInt8Linear::Run(const torch::Tensor& x) const {
  return RunOnColumns(x, weights_.cols, weights_.rows, kInt8LinearOp,
                      [this](const float* xt, int64_t batch, float* yt) {
                        auto args = ColumnArgs<kernels::Int8GemmArgs>(xt, batch, yt, bias_, options_.activation);
                        args.quant = quant_;
                        const Status s = kernels::Int8Gemm(weights_, args, Int8OptionsOf(options_));
                        TORCH_CHECK(s.ok(), kInt8LinearOp, ": ", s.message());
                        ClampAfterKernel(options_.activation, yt, weights_.rows * batch);
                      });
}

int64_t PackedInt8Linear::packed_bytes() const { return Int8Bytes(weights_); }

StatusOr<c10::intrusive_ptr<PackedInt4Linear>> PackedInt4Linear::Create(const torch::Tensor& weight,
                                                                        const torch::Tensor& bias,
                                                                        const PackOptions& options) {
  if (!weight.defined() || weight.dim() != 2) return Status::InvalidArgument("linear weight must be [O, K]");
  ACS_RETURN_IF_ERROR(CheckKind(options, KernelKind::kInt4w, "PackedInt4Linear"));
  torch::NoGradGuard no_grad;
  auto out = c10::make_intrusive<PackedInt4Linear>();
  ACS_ASSIGN_OR_RETURN(out->weights_, kernels::QuantizeInt4Weights(ViewOf2d(Float2d(weight))));
  ACS_ASSIGN_OR_RETURN(out->bias_, BiasVector(bias, weight.size(0)));
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options);
  return out;
}

torch::Tensor PackedInt4Linear::Run(const torch::Tensor& x) const {
  return RunOnColumns(
      x, weights_.cols, weights_.rows, kInt4LinearOp, [this](const float* xt, int64_t batch, float* yt) {
        const auto args = ColumnArgs<kernels::Int4LinearArgs>(xt, batch, yt, bias_, options_.activation);
        const Status s = kernels::Int4Linear(weights_, args, Int8OptionsOf(options_));
        TORCH_CHECK(s.ok(), kInt4LinearOp, ": ", s.message());
        ClampAfterKernel(options_.activation, yt, weights_.rows * batch);
      });
}

int64_t PackedInt4Linear::packed_bytes() const {
  return static_cast<int64_t>(weights_.packed.size() + weights_.scales.size() * sizeof(float));
}

namespace {

torch::Tensor Int8Conv2dOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedInt8Conv>& packed) {
  return packed->Run(x);
}

torch::Tensor Int8LinearOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedInt8Linear>& packed) {
  return packed->Run(x);
}

torch::Tensor Int4LinearOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedInt4Linear>& packed) {
  return packed->Run(x);
}

}  // namespace
}  // namespace acs::runtime

// Registered beside the packers, as packed_layer.cc does for the sparse ops.
TORCH_LIBRARY_FRAGMENT(acs_rt, m) {
  using acs::runtime::PackedInt4Linear;
  using acs::runtime::PackedInt8Conv;
  using acs::runtime::PackedInt8Linear;
  using acs::runtime::PackedOrThrow;
  using acs::runtime::PackSource;
  using acs::runtime::PackSourceFromState;
  using acs::runtime::PackState;
  static constexpr const auto& kConv = acs::runtime::kPackedInt8ConvState;
  static constexpr const auto& kLinear = acs::runtime::kPackedInt8LinearState;
  static constexpr const auto& kInt4 = acs::runtime::kPackedInt4LinearState;
  m.class_<PackedInt8Conv>("PackedInt8Conv")
      .def_pickle([](const c10::intrusive_ptr<PackedInt8Conv>& self) { return PackState(self->source(), kConv); },
                  [](c10::IValue state) {
                    const PackSource s = PackSourceFromState(state, kConv);
                    return PackedOrThrow(PackedInt8Conv::Create(s.weight, s.bias, s.geometry, s.quant, s.options),
                                         kConv);
                  });
  m.class_<PackedInt8Linear>("PackedInt8Linear")
      .def_pickle([](const c10::intrusive_ptr<PackedInt8Linear>& self) { return PackState(self->source(), kLinear); },
                  [](c10::IValue state) {
                    const PackSource s = PackSourceFromState(state, kLinear);
                    return PackedOrThrow(PackedInt8Linear::Create(s.weight, s.bias, s.quant, s.options), kLinear);
                  });
  m.class_<PackedInt4Linear>("PackedInt4Linear")
      .def_pickle([](const c10::intrusive_ptr<PackedInt4Linear>& self) { return PackState(self->source(), kInt4); },
                  [](c10::IValue state) {
                    const PackSource s = PackSourceFromState(state, kInt4);
                    return PackedOrThrow(PackedInt4Linear::Create(s.weight, s.bias, s.options), kInt4);
                  });
  m.def("int8_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedInt8Conv packed) -> Tensor",
        acs::runtime::Int8Conv2dOp);
  m.def("int8_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedInt8Linear packed) -> Tensor",
        acs::runtime::Int8LinearOp);
  m.def("int4_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedInt4Linear packed) -> Tensor",
        acs::runtime::Int4LinearOp);
}
