// The compressed model for stock PyTorch: its simulated int8 layers (a fake-quant input
// feeding a conv2d or linear whose weights lie on a per-channel int8 grid) rewritten as
// LibTorch's quantized ops, so the int8 part of a policy runs in int8 wherever the file is
// loaded with torch.jit.load, without acs.
#pragma once

#include <torch/script.h>

#include <string>

#include "core/status.h"

namespace acs {

struct QuantizedExportOptions {
  // Inputs [N, ...] of the model, for the output range of an int8 region that ends in
  // something other than an int8 layer (a residual add, pooling, an fp32 layer, the output).
  // Required when the model has such a region.
  torch::Tensor calibration;
  int64_t calibration_batch = 64;  // samples per forward pass
  // Run the int8 layers of a region in fp32 (int8-grid weights, fp32 activations) when the
  // region's quantize / dequantize borders cost more than its int8 layers save.
  bool drop_uneconomic_regions = true;
};

struct QuantizedExport {
  torch::jit::Module module;
  int quantized_layers = 0;  // int8 layers now run by quantized::conv2d / quantized::linear
  int simulated_layers = 0;  // int8 layers left fake-quantized (inside control flow, or not conv2d / linear)
  int fp32_layers = 0;       // int8 layers run in fp32: their region's borders cost more than it saves
  int quantized_adds = 0;    // adds of two int8 values, now quantized::add
  int quantize_nodes = 0;    // fp32 -> int8 borders (aten::quantize_per_tensor)
  int dequantize_nodes = 0;  // int8 -> fp32 borders (aten::dequantize)
  // int8 values quantized with a range measured on the calibration data, where the
  // simulation keeps fp32 (an add's inputs, a region's last output): a rounding the
  // simulated model does not have.
  int calibrated_outputs = 0;
};

// Rewrites `compressed` (a module from Compress, its int8 layers fake-quantized; not
// changed). Each int8 layer takes quint8 activations with its fake-quant's scale and zero
// point and qint8 per-channel weights; a batch norm after a conv is folded into it and a
// relu after it fused. An int8 value stays quint8 while its consumers accept it (another
// int8 layer, an add of two int8 values, relu / hardtanh / pooling / flatten), quantized
// with the next int8 layer's input quantization where there is one (then it is the
// simulation's value) and with its calibrated range otherwise; a dequantize stands before
// every other consumer.
// "int8 as quantized ops: 19 layers, 8 adds; 1 quantize, 1 dequantize; 2 outputs on
// calibrated ranges" (and the layers left simulated, if any).
std::string QuantizedExportSummary(const QuantizedExport& e);

StatusOr<QuantizedExport> ExportQuantizedOps(const torch::jit::Module& compressed,
                                             const QuantizedExportOptions& options = {});

}  // namespace acs
