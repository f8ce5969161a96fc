// One layer packed for the CPU sparse kernels, as a TorchScript custom class, and the ops
// that run it from a TorchScript graph (int8 / int4 layers: packed_int8.h; depthwise
// convolutions: packed_depthwise.h):
//
//   acs_rt::sparse_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedConv packed) -> Tensor
//   acs_rt::sparse_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedLinear packed) -> Tensor
//
// Also the rule that picks a layer's kernel from its config and weights (KernelKind), which
// the runtime and the kernel measurements share so that both time the same code.
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

#include "core/policy.h"
#include "core/status.h"
#include "devices/kernels/conv2d.h"
#include "devices/kernels/sparse_formats.h"

namespace acs::runtime {

// How a layer is executed by the runtime.
enum class KernelKind {
  kDense,           // aten conv2d / linear: oneDNN (or OpenBLAS) through LibTorch
  kBlockSparse,     // 1xN block-sparse kernel (devices/kernels)
  kCsr,             // unstructured sparse kernel
  kNm,              // N:M sparse kernel
  kInt8,            // int8 kernel: u8 activations x s8 per-channel weights (packed_int8.h)
  kInt4w,           // int4 weight-only linear kernel (packed_int8.h)
  kDepthwise,       // fp32 3x3 depthwise kernel (packed_depthwise.h)
  kInt8Simulated,   // int8 layer without an int8 kernel (grouped convolutions): left as the
                    // compressor's fake-quant aten graph
};
// "dense", "block", "csr", "nm", "int8", "int4w", "depthwise", "int8-simulated".
const char* KernelKindName(KernelKind kind);
// kBlockSparse, kCsr or kNm.
bool IsSparseKind(KernelKind kind);

// When a sparse config is worth a sparse kernel: at or below these shares of non-zero
// weights. Denser layers run dense, where the sparse kernels would be slower. The defaults
// are crossovers seen with acs-worker measure-kernel on an AVX-512 host at batch 1 against
// oneDNN; a per-device latency model should make this choice per layer shape instead.
struct KernelSelection {
  double max_density_block = 0.8;         // 1xN block kernel
  double max_density_unstructured = 0.4;  // CSR kernel (also for block sizes it lacks)
  double max_density_nm = 0.5;            // N:M kernel (2:4 has density 0.5)
};

// What ChooseKernel needs to know about a layer besides its config and weights.
struct LayerTraits {
  bool linear = false;          // a linear layer (else a conv2d)
  int64_t groups = 1;           // conv2d groups
  bool depthwise_3x3 = false;   // groups = in = out channels, 3x3, dilation 1, stride 1 or 2
};

struct KernelChoice {
  KernelKind kind = KernelKind::kDense;
  int block = 0;           // kBlockSparse: N (4, 8, 16 or 32)
  int nm_n = 0, nm_m = 0;  // kNm
  std::string why_dense;   // set when a sparse config runs dense
};

// The kernel for a layer with `config` whose weight (as it will run) has `density` non-zero
// share. In order: int8 precision runs the int8 kernel (groups = 1; grouped int8 layers stay
// simulated), a 3x3 depthwise layer the depthwise kernel, a sparse config sparse enough its
// sparse kernel (groups = 1 only), an int4w linear layer the int4 kernel; anything else
// (int4w convolutions included, whose weights already hold the int4 values) runs dense.
KernelChoice ChooseKernel(const LayerConfig& config, double density, const LayerTraits& layer,
                          const KernelSelection& selection = {});

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
  KernelChoice kernel;                                       // kBlockSparse, kCsr or kNm
  Activation activation;                                     // none by default
  int threads = 1;                                           // kernel threads at most (OpenMP)
  kernels::ConvLowering lowering = kernels::ConvLowering::kAuto;
};

// A groups = 1 convolution with packed sparse weights. Immutable after Create; Run may be
// called from several threads at once.
class PackedConv : public torch::CustomClassHolder {
 public:
  struct Geometry {
    std::array<int64_t, 2> stride{1, 1};
    std::array<int64_t, 2> padding{0, 0};
    std::array<int64_t, 2> dilation{1, 1};
    int64_t height = 0;  // input height and width the layer runs at (any batch size)
    int64_t width = 0;
  };
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

 private:
  std::optional<kernels::SparseConv2d> conv_;
  PackOptions options_;
  int64_t out_channels_ = 0;
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

 private:
  kernels::SparseWeights weights_;
  std::vector<float> bias_;  // empty: none
  PackOptions options_;
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
