// Measures one layer (a KernelSpec) as the runtime would run it, beside the dense LibTorch
// op of the same shape: random weights with the spec's pattern, packed and chosen by the
// runtime's rules (KernelSelection), timed alternately with the dense op by the harness.
// Independent of how the spec arrived (command line now, the farm later).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "devices/measure/device_class.h"
#include "devices/measure/harness.h"
#include "devices/runtime/packed_layer.h"
#include "core/kernel_spec.h"

namespace acs::worker {

struct KernelMeasureOptions {
  measure::MeasureOptions measure;        // threads is taken from the spec
  runtime::KernelSelection selection;     // when the config gets a sparse kernel
  bool prepack_dense = false;             // dense layers as RuntimeOptions::prepack_dense runs them
                                          // (else one aten op, optimized for inference when faster)
};

// What the predictors learn from, besides the shape in the spec.
struct KernelFeatures {
  double flops = 0;                  // 2 x multiply-adds of the dense layer
  double flops_after_sparsity = 0;   // 2 x multiply-adds with the non-zero weights only
  double flops_stored = 0;           // 2 x multiply-adds the kernel performs (block padding, N:M slots)
  double density = 1;                // non-zero share of the weight as run
  int64_t weight_bytes = 0;          // as stored for the kernel (values + indices)
  int64_t dense_weight_bytes = 0;    // of the dense fp32 weight
  int64_t input_bytes = 0;
  int64_t output_bytes = 0;
  int64_t activation_bytes = 0;      // input + output
  int64_t out_channels_run = 0;      // fewer than out_channels for the channel pattern
  nlohmann::json ToJson() const;
};

struct KernelMeasurement {
  measure::DeviceClass device;
  KernelSpec spec;
  runtime::KernelChoice kernel;
  KernelFeatures features;
  measure::Measurement timing;       // the kernel as the runtime runs it (dense kinds: the
                                     // aten op, optimized for inference when that is faster)
  measure::Measurement dense;        // the dense fp32 op of the unpruned shape, optimized alike
  double max_rel_error = 0;          // kernel output vs LibTorch with the same weights
  std::string runtime_version;

  double speedup() const { return timing.median_us > 0 ? dense.median_us / timing.median_us : 0.0; }
  // {device_class, kernel_key, spec, kernel, features, samples_us, median_us, iqr_us,
  //  min_us, repeats, dense: {...}, speedup, max_rel_error, runtime_version, measure_options}
  nlohmann::json ToJson() const;
};

// int8 layers quantize their input with the quantization of its range (as the compressor
// calibrates it) and are checked against LibTorch on the fake-quantized input.
// Errors: InvalidArgument when the weights cannot be packed; Internal when the kernel
// disagrees with LibTorch by more than 1e-4 of the output range (int8: plus two input
// quantization steps times the largest weight).
StatusOr<KernelMeasurement> MeasureKernel(const KernelSpec& spec, const KernelMeasureOptions& options = {});

}  // namespace acs::worker
