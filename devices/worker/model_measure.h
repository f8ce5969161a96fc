// Measures a whole model under a policy on this machine: imports and compresses it,
// compiles the runtime, and times the runtime and the dense model in LibTorch (same
// threads) through the harness, alternately. Independent of how the request arrived.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/graph.h"
#include "core/policy.h"
#include "core/status.h"
#include "devices/measure/device_class.h"
#include "devices/measure/harness.h"
#include "devices/runtime/runtime.h"

namespace acs::worker {

struct ModelMeasureRequest {
  std::string model_path;                // TorchScript file
  Policy policy;
  Shape input_shape;                     // e.g. {1, 1, 28, 28}; the measured batch size too
  int threads = 1;
  std::string calibration_path;          // dataset for batch-norm recalibration and int8
                                         // ranges (fitted to the input shape); empty = none
  int64_t calibration_samples = 256;     // read at most this many
  measure::MeasureOptions measure;       // threads is taken from `threads`
  runtime::RuntimeOptions runtime;       // threads is taken from `threads`
};

struct ModelMeasurement {
  measure::DeviceClass device;
  std::string model;                     // the path as given
  std::string policy_hash;
  int threads = 1;
  measure::Measurement runtime;          // the compiled runtime
  measure::Measurement dense;            // the original frozen model in LibTorch
  double max_abs_diff = 0;               // runtime vs compressed LibTorch output, one random input
  std::vector<runtime::LayerKernel> layers;
  std::string runtime_version;

  double speedup() const { return runtime.median_us > 0 ? dense.median_us / runtime.median_us : 0.0; }
  // {device_class, model, policy_hash, threads, runtime: {median_us, iqr_us, samples_us, ...},
  //  dense: {...}, speedup, max_abs_diff, layers: [...], runtime_version, measure_options}
  nlohmann::json ToJson() const;
};

// Errors from import, compression, compilation and running, as those return them.
StatusOr<ModelMeasurement> MeasureModel(const ModelMeasureRequest& request);

// {"name", "op", "kernel", "block", "n", "m", "density", "folded_batch_norm", "activation",
//  "why_dense", "config"} of one layer.
nlohmann::json LayerKernelJson(const runtime::LayerKernel& layer);

}  // namespace acs::worker
