// Applies a Policy to an imported model (DESIGN §3): channel pruning by channel group,
// in-layer sparsity patterns, simulated precision, batch-norm recalibration, and a
// TorchScript module in which removed channels are really gone.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "core/policy.h"
#include "core/status.h"
#include "core/torchscript_model.h"

namespace acs {

struct CompressorOptions {
  // Inputs [N, C, H, W] for batch-norm recalibration and int8 activation ranges.
  // Undefined = none: batch norm keeps its statistics, and int8 layers are an error.
  torch::Tensor calibration;
  bool recalibrate_batch_norm = true;  // when calibration data is given
  // Refit each layer whose sparsity pattern or input channels the policy changed, by least
  // squares on its support, so that its outputs on the compressed model's activations match
  // the dense layer's (when calibration data is given). Grouped and depthwise convs are not
  // refit.
  bool reconstruct = true;
  int64_t reconstruction_images = 64;        // calibration images used to refit
  int64_t reconstruction_columns = 4096;     // sampled output positions per layer
  // Each layer is refit exactly (one solve per distinct row support) within both limits;
  // past either, by the column sweep (SolveMaskedLeastSquaresSweep) within its own limit,
  // off by default: on the models measured it scored below leaving such layers alone.
  int64_t max_reconstruction_inputs = 2304;  // reduction length K of an exact refit
  double max_reconstruction_flops = 2e9;     // work of its solves
  double max_sweep_flops = 0;                // work of a sweep (about K^3 + 2 O K^2); 0: none
  uint64_t seed = 0;                      // for the sampled positions
  int64_t calibration_batch = 64;      // samples per forward pass while calibrating
  // true: removed channels are cut out of the tensors (the export). false: tensors keep
  // their dense shapes with removed channels zeroed, the masked simulation of the same
  // function, used to check the export.
  bool remove_channels = true;
};

struct LayerResult {
  std::string name;
  LayerConfig config;
  int64_t in_channels_before = 0, in_channels_after = 0;
  int64_t out_channels_before = 0, out_channels_after = 0;
  int64_t weights = 0;  // elements of the stored weight
  int64_t zeros = 0;    // of them exactly zero
};

struct CompressedModel {
  torch::jit::Module module;  // runs with forward(); saves with Save()
  std::vector<LayerResult> layers;
  int64_t params_before = 0;  // weight and bias elements of all layers
  int64_t params_after = 0;
  int64_t nonzero_after = 0;  // of params_after, those not exactly zero
  std::string policy_hash;
  // Per weighted node of module's forward graph (WeightedNodes order): the config its layer
  // was compressed with (dense fp32 for layers the policy leaves alone).
  std::vector<LayerConfig> weighted_configs;

  StatusOr<torch::Tensor> Forward(const torch::Tensor& input);
  // Writes a TorchScript file that Python's torch.jit.load reads. Activations of int8
  // layers are fake-quantized (aten::fake_quantize_per_tensor_affine) and their weights
  // hold the int8 grid values in float32; bf16 / int4 weights likewise hold their rounded
  // values. The file is written to a temporary name and renamed.
  Status Save(const std::string& path);
};

// Validates the policy against the model first; errors name the layer and the problem.
StatusOr<CompressedModel> Compress(const ImportedModel& model, const Policy& policy,
                                   const CompressorOptions& options = {});

}  // namespace acs
