// A device class's trained latency predictor (kernel model + whole-model overhead), how
// it is trained from stored measurements, and the evaluation that compares it with the
// baselines on held-out kernels and held-out models. Torch-free.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "predictors/baselines.h"
#include "predictors/evaluation.h"
#include "predictors/model_latency.h"
#include "predictors/store.h"
#include "predictors/xgb_model.h"

namespace acs::predictors {

// The store name of the trained predictors (PredictorRecord::name).
inline constexpr const char kXgbPredictorName[] = "xgboost";

struct TrainedPredictor {
  std::shared_ptr<const XgbLatencyModel> kernels;
  OverheadModel overhead;
  // Predicted whole-model latency in microseconds.
  StatusOr<double> PredictModel(const ModelShape& shape) const;
};

// {"format": "acs-latency-predictor", "version": 1, "kernels": "<XgbLatencyModel blob>",
//  "overhead": {...}}
StatusOr<std::string> SavePredictor(const TrainedPredictor& p);
StatusOr<TrainedPredictor> LoadPredictor(const std::string& blob);

// What the predictors learn and are scored on: the fastest sample of a measurement (on a
// shared host the most repeatable figure: the rest moves with the host's load); the
// median for records without one.
double LabelUs(const KernelRecord& r);
double LabelUs(const ModelRecord& r);

// What a kernel record is for, by its source: "heldout" ones (measured from the prior,
// never adaptively) are for evaluation only, "repeat" ones (held-out specs measured again
// at the end of a collection) only for the noise floor; training uses the others.
enum class KernelRole { kTraining, kHeldOut, kRepeat };
inline constexpr const char kHeldOutSource[] = "heldout";
inline constexpr const char kRepeatSource[] = "repeat";
KernelRole RoleOf(const KernelRecord& r);
// The records of one role as samples labelled by LabelUs.
std::vector<KernelSample> Samples(const std::vector<KernelRecord>& records, KernelRole role);
std::vector<ModelShape> Shapes(const std::vector<ModelRecord>& records);
std::vector<double> Latencies(const std::vector<ModelRecord>& records);

// Trains on every kernel record that is not held out and fits the overhead on every model
// record. Errors as XgbLatencyModel::Train; InvalidArgument when there is no kernel record.
StatusOr<TrainedPredictor> TrainPredictor(const std::vector<KernelRecord>& kernels,
                                          const std::vector<ModelRecord>& models, const XgbOptions& options = {});

// How well a device class repeats itself: each "repeat" record of a held-out kernel
// against that kernel's held-out measurement, as if the first were a prediction. No
// predictor can beat it; count 0 when no held-out kernel was measured again.
AccuracyMetrics RepeatAgreement(const std::vector<KernelRecord>& kernels);

// Trains as TrainPredictor and makes the store record of the result: the blob, the
// accuracy on the held-out kernels, the repeat agreement and the counts as metrics,
// `extra` merged into them.
struct TrainedRecord {
  TrainedPredictor predictor;
  PredictorRecord record;        // version and created unset (the store sets them)
  AccuracyMetrics heldout;       // count 0 without held-out kernels
  AccuracyMetrics repeat;        // RepeatAgreement; count 0 without repeats
};
StatusOr<TrainedRecord> TrainForStore(const std::string& device_class, const std::vector<KernelRecord>& kernels,
                                      const std::vector<ModelRecord>& models,
                                      const nlohmann::json& extra = nlohmann::json::object(),
                                      const XgbOptions& options = {});

// The newest trained predictor of a device class in the store with its record; nullopt
// when there is none. Errors: the store's, and LoadPredictor's for a bad blob.
struct StoredPredictor {
  PredictorRecord record;
  std::shared_ptr<const TrainedPredictor> predictor;
};
StatusOr<std::optional<StoredPredictor>> LoadLatestPredictor(MeasurementStore& store, const std::string& device_class);

// The roofline points kept in the device description of the store (empty when none).
StatusOr<std::vector<RooflinePoint>> StoredRoofline(MeasurementStore& store, const std::string& device_class);

struct EvalRow {
  std::string model;  // "xgboost", "flops", "roofline", "lookup"; "repeat": the first
                      // measurement of a kernel / model as the prediction of a later one
  std::string scope;  // "conv2d", "depthwise", "linear", "kernels", "whole model"
  AccuracyMetrics metrics;
  nlohmann::json ToJson() const;
};

struct EvalOptions {
  XgbOptions xgb;
  std::vector<RooflinePoint> roofline;  // empty: no roofline rows
};

// One kernel measurement, for charts (predicted vs measured, latency vs FLOPs).
struct EvalPoint {
  std::string kind;         // KernelKindIdName of the spec
  double flops = 0;         // 2 x ShapeStats(spec).macs_nonzero: the FLOPs left as it runs
  double measured_us = 0;   // LabelUs
  double predicted_us = 0;  // held-out kernels: the evaluation's XGBoost prediction; else 0
  bool held_out = false;
};
// The most points an EvalReport carries (to keep an API reply small).
inline constexpr size_t kMaxEvalPoints = 2000;

struct EvalReport {
  std::vector<EvalRow> rows;
  // At most kMaxEvalPoints: the held-out kernels first, then training kernels; either set
  // evenly spaced in store order when it does not fit. Repeats are not included.
  std::vector<EvalPoint> points;
  // The XGBoost model's prediction of each held-out kernel, for error analysis.
  struct Prediction {
    KernelSpec spec;
    double measured_us = 0, predicted_us = 0;
  };
  std::vector<Prediction> heldout_predictions;
  int train_kernels = 0, heldout_kernels = 0, model_measurements = 0, models = 0;
  int repeated_kernels = 0;  // held-out kernels with a "repeat" record
  double seconds_train = 0;
  nlohmann::json ToJson() const;
};

// Kernel rows: models trained on the training kernels, scored on the held-out kernels
// (per kind and all). Whole-model rows: for each distinct model name, the overhead is
// fitted on the other models' measurements and that model's measurements are predicted
// (leave one model out); needs >= 2 model names, else no whole-model rows. "repeat" rows
// (the measurement noise floor no predictor can beat) pair held-out kernels with their
// "repeat" records by spec, and model records of the same model, policy and threads.
StatusOr<EvalReport> EvaluatePredictors(const std::vector<KernelRecord>& kernels,
                                        const std::vector<ModelRecord>& models, const EvalOptions& options);

}  // namespace acs::predictors
