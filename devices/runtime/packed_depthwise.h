// Depthwise convolutions packed for the fp32 3x3 depthwise kernel (devices/kernels/
// depthwise_conv.h) and the int8 one (int8_depthwise.h), as TorchScript custom classes, and
// their ops:
//
//   acs_rt::depthwise_conv2d(Tensor x, __torch__.torch.classes.acs_rt.PackedDepthwiseConv packed) -> Tensor
//   acs_rt::int8_depthwise_conv2d(Tensor x,
//                                 __torch__.torch.classes.acs_rt.PackedInt8DepthwiseConv packed) -> Tensor
#pragma once

#include <torch/custom_class.h>
#include <torch/script.h>

#include <optional>

#include "core/status.h"
#include "devices/kernels/depthwise_conv.h"
#include "devices/kernels/int8_depthwise.h"
#include "devices/runtime/packed_layer.h"

namespace acs::runtime {

// Immutable after Create; Run may be called from several threads at once.
class PackedDepthwiseConv : public torch::CustomClassHolder {
 public:
  // weight [C, 1, 3, 3] float32, bias [C] or undefined, stride 1 or 2 (both axes), dilation
  // 1; options.kernel.kind must be kDepthwise; the activation is applied inside the kernel.
  // Errors (InvalidArgument): other shapes or geometry, another kernel kind.
  static StatusOr<c10::intrusive_ptr<PackedDepthwiseConv>> Create(const torch::Tensor& weight,
                                                                  const torch::Tensor& bias,
                                                                  const PackedConv::Geometry& geometry,
                                                                  const PackOptions& options);
  // x [N, C, H, W] float32 at the packed height and width -> [N, C, out_h, out_w]; throws
  // c10::Error on a shape mismatch.
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  const PackSource& source() const { return source_; }

 private:
  std::optional<kernels::DepthwiseConv2d> conv_;
  PackOptions options_;
  PackSource source_;
};

// An int8 depthwise convolution (kernel up to 7x7); weights and quant as PackedInt8Conv
// (packed_int8.h): the simulation's per-channel grid values quantized again, the input
// quantized with the compressor's fake-quant scale and zero point, so it computes the
// simulated layer up to float rounding.
class PackedInt8DepthwiseConv : public torch::CustomClassHolder {
 public:
  // weight [C, 1, kh, kw] float32, bias [C] or undefined, stride 1 or 2 (both axes),
  // dilation 1; options.kernel.kind must be kInt8; the activation's clamp runs inside the
  // kernel. Errors (InvalidArgument): other shapes, geometry or quant, another kernel kind.
  static StatusOr<c10::intrusive_ptr<PackedInt8DepthwiseConv>> Create(const torch::Tensor& weight,
                                                                      const torch::Tensor& bias,
                                                                      const PackedConv::Geometry& geometry,
                                                                      const kernels::ActivationQuant& quant,
                                                                      const PackOptions& options);
  // x [N, C, H, W] float32 at the packed height and width -> [N, C, out_h, out_w]; throws
  // c10::Error on a shape mismatch.
  torch::Tensor Run(const torch::Tensor& x) const;

  const PackOptions& options() const { return options_; }
  int64_t packed_bytes() const;  // weights and per-channel arrays
  const PackSource& source() const { return source_; }

 private:
  std::optional<kernels::Int8DepthwiseConv2d> conv_;
  PackOptions options_;
  PackSource source_;
};

inline constexpr const char kDepthwiseConv2dOp[] = "acs_rt::depthwise_conv2d";
inline constexpr const char kInt8DepthwiseConv2dOp[] = "acs_rt::int8_depthwise_conv2d";

// Whether a convolution with weight [O, C/groups, kh, kw], `groups` and `geometry` is one
// the depthwise kernel runs (LayerTraits::depthwise_3x3).
bool IsDepthwise3x3(const torch::Tensor& weight, int64_t groups, const PackedConv::Geometry& geometry);
// Whether it is one the int8 depthwise kernel runs (LayerTraits::depthwise_int8): groups =
// channels, a kernel up to 7x7, stride 1 or 2 on both axes, dilation 1.
bool IsInt8Depthwise(const torch::Tensor& weight, int64_t groups, const PackedConv::Geometry& geometry);

}  // namespace acs::runtime
