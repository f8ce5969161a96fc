// Measures a whole model under a policy on this machine: imports and compresses it,
// compiles the runtime, and times the runtime, the compressed.pt a job exports for it (run
// by LibTorch alone, as stock PyTorch runs the download) and two dense forms of the model
// in LibTorch (same threads) through the harness, alternately: the strongest dense baseline
// (frozen, then optimize_for_inference), against which the speedups are taken, and the
// plain frozen model for reference. Independent of how the request arrived: the
// command line, or a farm task (RunModelTask).
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/child_process.h"
#include "core/graph.h"
#include "core/policy.h"
#include "core/status.h"
#include "devices/measure/device_class.h"
#include "devices/measure/harness.h"
#include "devices/runtime/runtime.h"
#include "devices/worker/op_profile.h"

namespace acs::worker {

// Runs per turn of a whole-model measurement (MeasureOptions::runs_per_turn).
constexpr int kModelRunsPerTurn = 3;

struct ModelMeasureRequest {
  std::string model_path;  // TorchScript file
  Policy policy;
  Shape input_shape;  // e.g. {1, 1, 28, 28}; the measured batch size too
  int threads = 1;
  std::string calibration_path;       // dataset for batch-norm recalibration and int8
                                      // ranges (fitted to the input shape); empty = none:
                                      // int8 ranges from synthetic inputs (timing only)
  int64_t calibration_samples = 256;  // read at most this many
  measure::MeasureOptions measure;    // threads is taken from `threads`
  runtime::RuntimeOptions runtime;    // threads is taken from `threads`
};

struct ModelMeasurement {
  measure::DeviceClass device;
  std::string model;  // the path as given
  std::string policy_hash;
  int threads = 1;
  measure::Measurement runtime;      // the compiled runtime
  measure::Measurement dense;        // the original model, frozen and optimized for
                                     // inference (runtime::DenseForm::kOptimized)
  measure::Measurement dense_plain;  // the original frozen model as imported
  measure::Measurement stock;        // the compressed model as exported (int8 layers as
                                     // PyTorch's quantized ops, ExportQuantizedOps), saved,
                                     // loaded and run by LibTorch, deployed as the dense
                                     // baseline is (stock_form): what the download does
                                     // in stock PyTorch; not timed (median 0) when it
                                     // cannot be made or run, with why_no_stock
  std::string stock_form;            // DenseFormName of what ran, or "as loaded"
  std::string why_no_stock;
  measure::Measurement acs_file;  // the runtime's own file (compressed.acs.pt,
                                  // RuntimeModel::Save) read back and run as
                                  // LibTorch with the acs_rt ops runs it, deployed as
                                  // the dense baseline is (acs_file_form); not timed
                                  // when it cannot be made or run, with why_no_acs_file
  std::string acs_file_form;      // as stock_form
  std::string why_no_acs_file;
  std::string dense_baseline;            // DenseFormName of what `dense` ran (the plain form
                                         // where optimizing changed the function)
  bool runtime_dense_optimized = false;  // the runtime's aten layers ran optimized too
  std::string why_not_optimized;         // of either, when not
  double max_abs_diff = 0;               // runtime vs compressed LibTorch output, one random input
  std::vector<runtime::LayerKernel> layers;
  std::string runtime_version;

  double speedup() const { return runtime.median_us > 0 ? dense.median_us / runtime.median_us : 0.0; }
  double stock_speedup() const { return stock.median_us > 0 ? dense.median_us / stock.median_us : 0.0; }
  double acs_file_speedup() const { return acs_file.median_us > 0 ? dense.median_us / acs_file.median_us : 0.0; }
  // {device_class, model, policy_hash, threads, runtime: {median_us, iqr_us, samples_us, ...},
  //  dense: {...}, dense_baseline: "frozen + optimize_for_inference", dense_plain: {...},
  //  stock: {...}, stock_form, why_no_stock, acs_file: {...}, acs_file_form, why_no_acs_file, runtime_dense_optimized,
  //  why_not_optimized, speedup, speedup_vs_plain, stock_speedup, acs_file_speedup, max_abs_diff,
  //  layers: [...], runtime_version}
  nlohmann::json ToJson() const;
};

// Errors from import, compression, compilation and running, as those return them.
StatusOr<ModelMeasurement> MeasureModel(const ModelMeasureRequest& request);

// MeasureModel in two steps, so that a caller can time many models in rounds: Prepare
// imports, compresses, compiles and checks the runtime against LibTorch; Time times it.
class PreparedModel {
 public:
  ~PreparedModel();
  PreparedModel(PreparedModel&&) noexcept;
  PreparedModel& operator=(PreparedModel&&) noexcept;
  // Errors as MeasureModel's.
  static StatusOr<PreparedModel> Prepare(const ModelMeasureRequest& request);
  // The measurement with `options` (threads taken from the request): runtime and both dense
  // forms timed alternately, each in turns of kModelRunsPerTurn runs whose first is untimed
  // (runs_per_turn is set so): a model is timed in its own steady state, its weights where
  // its own runs left them, not where the other models' runs did. Errors from running the
  // models.
  StatusOr<ModelMeasurement> Time(measure::MeasureOptions options);
  // The outermost ops of the runtime, the dense baseline and the plain dense model, each
  // profiled over `runs` runs (ProfileOps). Errors as ProfileOps'.
  struct Profile {
    OpProfile runtime, dense, dense_plain;
  };
  StatusOr<Profile> ProfileOps(int runs);
  // What runs each compressible layer in the runtime.
  const std::vector<runtime::LayerKernel>& layers() const;

 private:
  struct Impl;
  explicit PreparedModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// {"name", "op", "kernel", "block", "n", "m", "density", "folded_batch_norm", "activation",
//  "why_dense", "config"} of one layer.
nlohmann::json LayerKernelJson(const runtime::LayerKernel& layer);

// How a farm "measure-model" task is run; the task itself says what to measure.
struct ModelTaskOptions {
  measure::MeasureOptions measure;   // timing; threads is taken from the task
  runtime::RuntimeOptions runtime;   // kernel choice; threads is taken from the task
  std::string model_name = "model";  // recorded as "model" in the result and named in
                                     // errors in place of the in-memory model file
};

// Runs one "measure-model" task: `spec_json` is {"policy": <Policy::ToJson object>,
// "input_shape": [1, 1, 28, 28], "threads": 1, "profile_runs": 20} (threads optional,
// default 1; profile_runs optional, default 0: when > 0 the result also has
// "outside_layers_share", OutsideLayersShare of the plain dense model (frozen, not
// optimized: plain tensors between its layers, as compressed policies run) over that many
// profiled runs; other keys are ignored) and `model_bytes` the TorchScript model. The bytes are loaded from an
// in-memory file (memfd): the task writes no file. Returns ModelMeasurement::ToJson()
// plus "measure_options". Errors: InvalidArgument naming the problem for a spec that is
// not a JSON object, a missing or bad policy, an input_shape that is not 1 to 8 positive
// integers (at most 2^26 elements), threads outside 1..1024, or empty model bytes;
// FailedPrecondition when the in-memory file cannot be made; otherwise MeasureModel's
// errors (e.g. DataLoss for bytes TorchScript cannot load, InvalidArgument for an input
// shape the model rejects).
StatusOr<nlohmann::json> RunModelTask(const std::string& spec_json, const std::string& model_bytes,
                                      const ModelTaskOptions& options = {});

// RunModelTask in a child process, so that a user's model that crashes, hogs memory or
// never returns fails its task, not the worker: `command` starts the child (acs-worker
// with its timing flags, as `run-model-task`), which gets the spec, the model's name and
// the model on stdin and answers through ServeModelTaskChild. A child that ends abnormally gives an error
// naming the limit it ran into ("measuring the model exceeded the 1800 s wall-clock
// limit"); otherwise RunModelTask's result or error.
StatusOr<nlohmann::json> RunModelTaskIsolated(const std::vector<std::string>& command, const ProcessLimits& limits,
                                              const std::string& spec_json, const std::string& model_bytes,
                                              const std::string& model_name);
// The child's side: reads the spec and the model's name (a line each) and then the model
// bytes from `in`, runs RunModelTask and writes its result (one line, when ok) and a
// status line to `out`. `options.model_name` is replaced by the one read.
void ServeModelTaskChild(std::istream& in, std::ostream& out, ModelTaskOptions options);

}  // namespace acs::worker
