#include "devices/runtime/packed_layer.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <variant>

#include "devices/kernels/spmm.h"
#include "devices/runtime/packed_state.h"

namespace acs::runtime {
namespace {

// Packs a row-major O x K float matrix in the chosen format.
StatusOr<kernels::SparseWeights> Pack(const torch::Tensor& w2d, const KernelChoice& kernel) {
  const kernels::DenseView view{w2d.data_ptr<float>(), w2d.size(0), w2d.size(1)};
  switch (kernel.kind) {
    case KernelKind::kBlockSparse: {
      ACS_ASSIGN_OR_RETURN(kernels::BlockSparseMatrix m, kernels::PackBlockSparse(view, kernel.block));
      return kernels::SparseWeights(std::move(m));
    }
    case KernelKind::kCsr: {
      ACS_ASSIGN_OR_RETURN(kernels::CsrMatrix m, kernels::PackCsr(view));
      return kernels::SparseWeights(std::move(m));
    }
    case KernelKind::kNm: {
      ACS_ASSIGN_OR_RETURN(kernels::NmMatrix m, kernels::PackNm(view, kernel.nm_n, kernel.nm_m));
      return kernels::SparseWeights(std::move(m));
    }
    default:
      return Status::InvalidArgument(std::string("cannot pack weights for the ") + KernelKindName(kernel.kind) +
                                     " kernel: not a sparse kernel");
  }
}

kernels::SpmmOptions SpmmOptionsOf(const PackOptions& o) {
  kernels::SpmmOptions s;
  s.threads = std::max(1, o.threads);
  return s;
}

}  // namespace

torch::Tensor Float2d(const torch::Tensor& weight) {
  return weight.detach().to(torch::kFloat32).reshape({weight.size(0), -1}).contiguous();
}

StatusOr<std::vector<float>> BiasVector(const torch::Tensor& bias, int64_t out) {
  if (!bias.defined()) return std::vector<float>();
  if (bias.numel() != out) {
    return Status::InvalidArgument("bias has " + std::to_string(bias.numel()) + " values for " + std::to_string(out) +
                                   " outputs");
  }
  torch::Tensor b = bias.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(b.data_ptr<float>(), b.data_ptr<float>() + out);
}

void ApplyActivation(const Activation& a, float* p, int64_t n) {
  if (!a.enabled) return;
  const float lo = a.min, hi = a.max;
  for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(p[i], lo), hi);
}

torch::Tensor RunOnColumns(const torch::Tensor& x_in, int64_t k, int64_t o, const char* op,
                           const std::function<void(const float* xt, int64_t batch, float* yt)>& kernel) {
  TORCH_CHECK(x_in.dim() >= 1 && x_in.size(-1) == k, op, ": expected input [..., ", k, "], got ", x_in.sizes());
  TORCH_CHECK(x_in.scalar_type() == torch::kFloat32, op, ": expected float32 input");
  std::vector<int64_t> out_shape = x_in.sizes().vec();
  out_shape.back() = o;
  const torch::Tensor x2d = x_in.reshape({-1, k});
  const int64_t batch = x2d.size(0);
  if (batch == 0) return torch::empty(out_shape, x_in.options());
  const torch::Tensor xt = batch == 1 ? x2d.contiguous() : x2d.t().contiguous();
  torch::Tensor yt = torch::empty({o, batch}, x_in.options());
  kernel(xt.data_ptr<float>(), batch, yt.data_ptr<float>());
  torch::Tensor y = batch == 1 ? yt.view({1, o}) : yt.t().contiguous();
  return y.view(out_shape);
}

kernels::Conv2dGeometry KernelGeometry(const torch::Tensor& weight, const PackedConv::Geometry& g, int64_t groups) {
  kernels::Conv2dGeometry geometry;
  geometry.channels = weight.size(1) * groups;
  geometry.height = g.height;
  geometry.width = g.width;
  geometry.kernel_h = weight.size(2);
  geometry.kernel_w = weight.size(3);
  geometry.stride_h = g.stride[0];
  geometry.stride_w = g.stride[1];
  geometry.pad_h = g.padding[0];
  geometry.pad_w = g.padding[1];
  geometry.dilation_h = g.dilation[0];
  geometry.dilation_w = g.dilation[1];
  return geometry;
}

void CheckConvInput(const torch::Tensor& x, const kernels::Conv2dGeometry& g, const char* op) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == g.channels && x.size(2) == g.height && x.size(3) == g.width, op,
              ": expected input [N, ", g.channels, ", ", g.height, ", ", g.width, "], got ", x.sizes(),
              " (the runtime was compiled for that input size)");
  TORCH_CHECK(x.scalar_type() == torch::kFloat32, op, ": expected float32 input");
}

namespace {

// t detached, with a storage of its own when it views a larger one.
torch::Tensor Kept(const torch::Tensor& t) {
  if (!t.defined()) return t;
  torch::Tensor d = t.detach();
  const bool compact = d.is_contiguous() && d.storage_offset() == 0 &&
                       d.storage().nbytes() == static_cast<size_t>(d.numel()) * d.element_size();
  return compact ? d : d.clone(at::MemoryFormat::Contiguous);
}

}  // namespace

PackSource MakePackSource(const torch::Tensor& weight, const torch::Tensor& bias, const PackOptions& options,
                          const ConvGeometry& geometry, const kernels::ActivationQuant& quant) {
  PackSource s;
  s.weight = Kept(weight);
  s.bias = Kept(bias);
  s.geometry = geometry;
  s.quant = quant;
  s.options = options;
  return s;
}

int64_t PackedBytes(const kernels::SparseWeights& w) {
  return std::visit(
      [](const auto& m) -> int64_t {
        using M = std::decay_t<decltype(m)>;
        int64_t bytes = static_cast<int64_t>(m.values.size() * sizeof(float));
        if constexpr (std::is_same_v<M, kernels::NmMatrix>) {
          bytes += static_cast<int64_t>(m.offsets.size());
        } else {
          bytes += static_cast<int64_t>(m.col_idx.size() * sizeof(int32_t) + m.row_ptr.size() * sizeof(int64_t));
        }
        return bytes;
      },
      w);
}

StatusOr<c10::intrusive_ptr<PackedConv>> PackedConv::Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                            const Geometry& g, const PackOptions& options) {
  if (!weight.defined() || weight.dim() != 4) return Status::InvalidArgument("conv weight must be [O, C, kh, kw]");
  if (!IsSparseKind(options.kernel.kind)) {
    return Status::InvalidArgument(std::string("PackedConv needs a sparse kernel, got ") +
                                   KernelKindName(options.kernel.kind));
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor w2d = Float2d(weight);
  ACS_ASSIGN_OR_RETURN(kernels::SparseWeights packed, Pack(w2d, options.kernel));
  ACS_ASSIGN_OR_RETURN(std::vector<float> b, BiasVector(bias, weight.size(0)));
  const kernels::Conv2dGeometry geometry = KernelGeometry(weight, g);
  kernels::Conv2dOptions conv_options;
  conv_options.lowering = options.lowering;
  ACS_ASSIGN_OR_RETURN(kernels::SparseConv2d conv,
                       kernels::SparseConv2d::Create(std::move(packed), geometry, std::move(b), conv_options));
  auto out = c10::make_intrusive<PackedConv>();
  out->out_channels_ = weight.size(0);
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options, g);
  out->conv_.emplace(std::move(conv));
  return out;
}

torch::Tensor PackedConv::Run(const torch::Tensor& x_in) const {
  const kernels::Conv2dGeometry& g = conv_->geometry();
  CheckConvInput(x_in, g, "acs_rt::sparse_conv2d");
  const torch::Tensor x = x_in.contiguous();
  const int64_t batch = x.size(0);
  torch::Tensor y = torch::empty({batch, out_channels_, g.out_h(), g.out_w()}, x.options());
  if (batch == 0) return y;
  const Status s = conv_->Run(x.data_ptr<float>(), batch, y.data_ptr<float>(), SpmmOptionsOf(options_));
  TORCH_CHECK(s.ok(), "acs_rt::sparse_conv2d: ", s.message());
  ApplyActivation(options_.activation, y.data_ptr<float>(), y.numel());
  return y;
}

int64_t PackedConv::stored_values() const { return kernels::StoredValues(conv_->weights()); }
int64_t PackedConv::packed_bytes() const { return PackedBytes(conv_->weights()); }

StatusOr<c10::intrusive_ptr<PackedLinear>> PackedLinear::Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                                const PackOptions& options) {
  if (!weight.defined() || weight.dim() != 2) return Status::InvalidArgument("linear weight must be [O, K]");
  if (!IsSparseKind(options.kernel.kind)) {
    return Status::InvalidArgument(std::string("PackedLinear needs a sparse kernel, got ") +
                                   KernelKindName(options.kernel.kind));
  }
  torch::NoGradGuard no_grad;
  auto out = c10::make_intrusive<PackedLinear>();
  ACS_ASSIGN_OR_RETURN(out->weights_, Pack(Float2d(weight), options.kernel));
  ACS_ASSIGN_OR_RETURN(out->bias_, BiasVector(bias, weight.size(0)));
  out->options_ = options;
  out->source_ = MakePackSource(weight, bias, options);
  return out;
}

torch::Tensor PackedLinear::Run(const torch::Tensor& x) const {
  return RunOnColumns(x, kernels::Cols(weights_), kernels::Rows(weights_), "acs_rt::sparse_linear",
                      [this](const float* xt, int64_t batch, float* yt) {
                        const kernels::SpmmArgs args{xt,    batch, yt,
                                                     batch, batch, bias_.empty() ? nullptr : bias_.data()};
                        const Status s = kernels::Spmm(weights_, args, SpmmOptionsOf(options_));
                        TORCH_CHECK(s.ok(), "acs_rt::sparse_linear: ", s.message());
                        ApplyActivation(options_.activation, yt, kernels::Rows(weights_) * batch);
                      });
}

int64_t PackedLinear::stored_values() const { return kernels::StoredValues(weights_); }
int64_t PackedLinear::packed_bytes() const { return PackedBytes(weights_); }

namespace {

torch::Tensor SparseConv2dOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedConv>& packed) {
  return packed->Run(x);
}

torch::Tensor SparseLinearOp(const torch::Tensor& x, const c10::intrusive_ptr<PackedLinear>& packed) {
  return packed->Run(x);
}

}  // namespace
}  // namespace acs::runtime

// Registered in the translation unit that defines the packers, so that linking anything
// that packs a layer also registers the ops that run it. Saved as the inputs of Create and
// packed again on load (packed_state.h). One process holds these registrations once:
// either from acs_runtime or from libacs_ops.so.
TORCH_LIBRARY(acs_rt, m) {
  using acs::runtime::PackedConv;
  using acs::runtime::PackedLinear;
  using acs::runtime::PackedOrThrow;
  using acs::runtime::PackSource;
  using acs::runtime::PackSourceFromState;
  using acs::runtime::PackState;
  static constexpr const auto& kConv = acs::runtime::kPackedConvState;
  static constexpr const auto& kLinear = acs::runtime::kPackedLinearState;
  m.class_<PackedConv>("PackedConv")
      .def_pickle([](const c10::intrusive_ptr<PackedConv>& self) { return PackState(self->source(), kConv); },
                  [](c10::IValue state) {
                    const PackSource s = PackSourceFromState(state, kConv);
                    return PackedOrThrow(PackedConv::Create(s.weight, s.bias, s.geometry, s.options), kConv);
                  });
  m.class_<PackedLinear>("PackedLinear")
      .def_pickle([](const c10::intrusive_ptr<PackedLinear>& self) { return PackState(self->source(), kLinear); },
                  [](c10::IValue state) {
                    const PackSource s = PackSourceFromState(state, kLinear);
                    return PackedOrThrow(PackedLinear::Create(s.weight, s.bias, s.options), kLinear);
                  });
  m.def("sparse_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedConv packed) -> Tensor",
        acs::runtime::SparseConv2dOp);
  m.def("sparse_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedLinear packed) -> Tensor",
        acs::runtime::SparseLinearOp);
}
