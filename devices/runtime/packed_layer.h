// One layer packed for the CPU sparse kernels, as a TorchScript custom class, and the ops
// that run it from a TorchScript graph (int8 / int4 layers: packed_int8.h; depthwise
// convolutions: packed_depthwise.h):
//
//   acs_rt::sparse_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedConv packed) -> Tensor
//   acs_rt::sparse_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedLinear packed) -> Tensor
//
// Which kernel runs a layer is the kernel plan's rule (core/kernel_plan.h), shared with
// the kernel measurements and the latency predictors.
#pragma once

#include <torch/custom_class.h>
#include <torch/script.h>

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/kernel_plan.h"
#include "core/policy.h"
#include "core/status.h"
#include "devices/kernels/conv2d.h"
#include "devices/kernels/int8_gemm.h"
#include "devices/kernels/sparse_formats.h"

namespace acs::runtime {

// The kernel plan (core/kernel_plan.h) under the runtime's names.
using acs::ChooseKernel;
using acs::IsSparseKind;
using acs::KernelChoice;
using acs::KernelKind;
using acs::KernelKindName;
using acs::KernelSelection;
using acs::LayerTraits;

// Output clamp applied inside a packed op: a fused relu, relu6 or hardtanh.
struct Activation {
  bool enabled = false;
  float min = 0.0f;
  float max = std::numeric_limits<float>::infinity();
  std::string name;  // "relu", "hardtanh(0,6)", ... for reports; empty when disabled

  bool is_relu() const { return enabled && min == 0.0f && max == std::numeric_limits<float>::infinity(); }
};

// Clamps y[0, n) in place; nothing when disabled.
void ApplyActivation(const Activation& a, float* y, int64_t n);

// A bias tensor as floats: empty for an undefined tensor. Errors (InvalidArgument): a
// defined bias whose size is not `out`.
StatusOr<std::vector<float>> BiasVector(const torch::Tensor& bias, int64_t out);

// The weight as a contiguous float32 [O, rest] matrix.
torch::Tensor Float2d(const torch::Tensor& weight);

// Runs a kernel of the form Y[O x B] = f(X[K x B]) (one sample per column) on a linear
// layer's input x [..., k], returning [..., o]: the samples are transposed into columns
// (not for one sample) and back. `op` names the op in shape errors (thrown as c10::Error).
torch::Tensor RunOnColumns(const torch::Tensor& x, int64_t k, int64_t o, const char* op,
                           const std::function<void(const float* xt, int64_t batch, float* yt)>& kernel);

struct PackOptions {
  KernelChoice kernel;    // kBlockSparse, kCsr or kNm
  Activation activation;  // none by default
  int threads = 1;        // kernel threads at most (OpenMP)
  kernels::ConvLowering lowering = kernels::ConvLowering::kAuto;
};

// A convolution's geometry (PackedConv::Geometry).
struct ConvGeometry {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t height = 0;  // input height and width the layer runs at (any batch size)
  int64_t width = 0;
};

// What a packed layer was created from: the inputs of its Create, kept so that it can be
// saved and packed again where it is loaded (packed_state.h). Fields a class does not take
// keep their defaults.
struct PackSource {
  torch::Tensor weight;            // as given (detached; copied if it views a larger storage)
  torch::Tensor bias;              // undefined: none
  ConvGeometry geometry;           // convolutions
  kernels::ActivationQuant quant;  // int8 layers
  PackOptions options;
};

// `weight`, `bias` and the rest as a PackSource; the tensors are detached, and copied when
// they view a larger storage (which saving would write whole).
PackSource MakePackSource(const torch::Tensor& weight, const torch::Tensor& bias, const PackOptions& options,
                          const ConvGeometry& geometry = {}, const kernels::ActivationQuant& quant = {});

// A groups = 1 convolution with packed sparse weights. Immutable after Create; Run may be
// called from several threads at once.
class PackedConv : public torch::CustomClassHolder {
 public:
  using Geometry = ConvGeometry;
  // weight [O, C, kh, kw] float32 whose pruned entries are exactly zero; bias [O] or
  // undefined. Errors (InvalidArgument): bad shapes or geometry, a kernel kind that is not
  // sparse, weights that do not fit the chosen format (e.g. more than N of M non-zero).
  static StatusOr<c10::intrusive_ptr<PackedConv>> Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                         const Geometry& geometry, const PackOptions& options);

  // x [N, C, H, W] at the packed height and width -> [N, O, out_h, out_w]. Throws
  // c10::Error (as TorchScript ops do) naming the expected shape on a mismatch.
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  int64_t stored_values() const;  // multiply-adds per output position, block padding included
  int64_t packed_bytes() const;   // values and indices
  const PackSource& source() const { return source_; }

 private:
  std::optional<kernels::SparseConv2d> conv_;
  PackOptions options_;
  int64_t out_channels_ = 0;
  PackSource source_;
};

// A linear layer y = x W^T + b with packed sparse weights; x [..., K] -> [..., O].
class PackedLinear : public torch::CustomClassHolder {
 public:
  // weight [O, K], bias [O] or undefined; errors as PackedConv::Create.
  static StatusOr<c10::intrusive_ptr<PackedLinear>> Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                           const PackOptions& options);
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  int64_t stored_values() const;
  int64_t packed_bytes() const;
  const PackSource& source() const { return source_; }

 private:
  kernels::SparseWeights weights_;
  std::vector<float> bias_;  // empty: none
  PackOptions options_;
  PackSource source_;
};

// The kernels' geometry of a convolution with `weight` [O, C/groups, kh, kw] and `g`;
// channels = C (the weight's C/groups times `groups`).
kernels::Conv2dGeometry KernelGeometry(const torch::Tensor& weight, const PackedConv::Geometry& g, int64_t groups = 1);

// Throws c10::Error naming `op` and the expected shape unless x is float32 [N, C, H, W] at
// g's channels, height and width.
void CheckConvInput(const torch::Tensor& x, const kernels::Conv2dGeometry& g, const char* op);

// Qualified names of the ops above, for building graph nodes.
inline constexpr const char kSparseConv2dOp[] = "acs_rt::sparse_conv2d";
inline constexpr const char kSparseLinearOp[] = "acs_rt::sparse_linear";

// Bytes of values and indices of a packed matrix.
int64_t PackedBytes(const kernels::SparseWeights& w);

}  // namespace acs::runtime
