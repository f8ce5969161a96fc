// Low-precision layers packed for the int8 / int4 kernels (devices/kernels/int8_gemm.h,
// int8_conv2d.h, int4_linear.h), as TorchScript custom classes, and the ops that run them:
//
//   acs_rt::int8_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedInt8Conv packed) -> Tensor
//   acs_rt::int8_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedInt8Linear packed) -> Tensor
//   acs_rt::int4_linear(Tensor x, __torch__.torch.classes.acs_rt.PackedInt4Linear packed) -> Tensor
//
// They take the weights the compressor's simulation stores (per-output-channel grid values
// scale * q in float32, DESIGN §3) and quantize them again per row, which gives back the
// same integers q: the rows are scaled by a positive factor at most (batch norm folded into
// the weights), and q = round(w / (max|w| / 127)) is invariant under that. An int8 layer's
// fp32 input is quantized per tensor with the compressor's activation quantization (the
// scale and zero point of its aten::fake_quantize_per_tensor_affine), so the op computes
// the simulated layer up to float rounding: exact int32 sums, dequantized once.
#pragma once

#include <torch/custom_class.h>
#include <torch/script.h>

#include <optional>
#include <vector>

#include "core/status.h"
#include "devices/kernels/int4_linear.h"
#include "devices/kernels/int8_conv2d.h"
#include "devices/kernels/int8_gemm.h"
#include "devices/runtime/packed_layer.h"

namespace acs::runtime {

// A groups = 1 convolution on the int8 kernel. Immutable after Create; Run may be called
// from several threads at once.
class PackedInt8Conv : public torch::CustomClassHolder {
 public:
  // weight [O, C, kh, kw] float32 (per-row int8 grid values), bias [O] or undefined; `quant`
  // quantizes the input. options.kernel.kind must be kInt8; a relu activation runs inside
  // the kernel, other clamps after it. Errors (InvalidArgument): bad shapes, geometry or
  // quant, another kernel kind, non-finite weights.
  static StatusOr<c10::intrusive_ptr<PackedInt8Conv>> Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                             const PackedConv::Geometry& geometry,
                                                             const kernels::ActivationQuant& quant,
                                                             const PackOptions& options);
  // x [N, C, H, W] float32 at the packed height and width -> [N, O, out_h, out_w]; throws
  // c10::Error on a shape mismatch.
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  int64_t packed_bytes() const;  // int8 values (one copy) and scales
  const PackSource& source() const { return source_; }

 private:
  std::optional<kernels::Int8Conv2d> conv_;
  PackOptions options_;
  PackSource source_;
};

// A linear layer y = x W^T + b on the int8 kernel; x [..., K] -> [..., O].
class PackedInt8Linear : public torch::CustomClassHolder {
 public:
  // weight [O, K]; the rest as PackedInt8Conv::Create.
  static StatusOr<c10::intrusive_ptr<PackedInt8Linear>> Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                               const kernels::ActivationQuant& quant,
                                                               const PackOptions& options);
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  int64_t packed_bytes() const;
  const PackSource& source() const { return source_; }

 private:
  kernels::Int8Weights weights_;
  std::vector<float> bias_;  // empty: none
  kernels::ActivationQuant quant_;
  PackOptions options_;
  PackSource source_;
};

// A linear layer with int4 weights (per-row grid values scale * q, q in [-7, 7]) and fp32
// activations; options.kernel.kind must be kInt4w. Otherwise as PackedInt8Linear.
class PackedInt4Linear : public torch::CustomClassHolder {
 public:
  static StatusOr<c10::intrusive_ptr<PackedInt4Linear>> Create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                               const PackOptions& options);
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  int64_t packed_bytes() const;
  const PackSource& source() const { return source_; }

 private:
  kernels::Int4Weights weights_;
  std::vector<float> bias_;
  PackOptions options_;
  PackSource source_;
};

inline constexpr const char kInt8Conv2dOp[] = "acs_rt::int8_conv2d";
inline constexpr const char kInt8LinearOp[] = "acs_rt::int8_linear";
inline constexpr const char kInt4LinearOp[] = "acs_rt::int4_linear";

}  // namespace acs::runtime
