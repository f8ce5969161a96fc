// A device class's trained latency predictor (kernel model + whole-model overhead), how
// it is trained from stored measurements, and the evaluation that compares it with the
// baselines on held-out kernels and held-out models. Torch-free.
#pragma once

#include <memory>
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

// Held-out kernels are the records whose source is "heldout" (measured from the prior,
// never adaptively); training uses the others.
bool IsHeldOut(const KernelRecord& r);
std::vector<KernelSample> Samples(const std::vector<KernelRecord>& records, bool heldout);
std::vector<ModelShape> Shapes(const std::vector<ModelRecord>& records);
std::vector<double> Latencies(const std::vector<ModelRecord>& records);

// Trains on every kernel record that is not held out and fits the overhead on every model
// record. Errors as XgbLatencyModel::Train; InvalidArgument when there is no kernel record.
StatusOr<TrainedPredictor> TrainPredictor(const std::vector<KernelRecord>& kernels,
                                          const std::vector<ModelRecord>& models, const XgbOptions& options = {});

// Trains as TrainPredictor and makes the store record of the result: the blob, the
// accuracy on the held-out kernels and the counts as metrics, `extra` merged into them.
struct TrainedRecord {
  TrainedPredictor predictor;
  PredictorRecord record;        // version and created unset (the store sets them)
  AccuracyMetrics heldout;       // count 0 without held-out kernels
};
StatusOr<TrainedRecord> TrainForStore(const std::string& device_class, const std::vector<KernelRecord>& kernels,
                                      const std::vector<ModelRecord>& models,
                                      const nlohmann::json& extra = nlohmann::json::object(),
                                      const XgbOptions& options = {});

// The roofline points kept in the device description of the store (empty when none).
StatusOr<std::vector<RooflinePoint>> StoredRoofline(MeasurementStore& store, const std::string& device_class);

struct EvalRow {
  std::string model;  // "xgboost", "flops", "roofline", "lookup"
  std::string scope;  // "conv2d", "depthwise", "linear", "kernels", "whole model"
  AccuracyMetrics metrics;
  nlohmann::json ToJson() const;
};

struct EvalOptions {
  XgbOptions xgb;
  std::vector<RooflinePoint> roofline;  // empty: no roofline rows
};

struct EvalReport {
  std::vector<EvalRow> rows;
  int train_kernels = 0, heldout_kernels = 0, model_measurements = 0, models = 0;
  double seconds_train = 0;
  nlohmann::json ToJson() const;
};

// Kernel rows: models trained on the training kernels, scored on the held-out kernels
// (per kind and all). Whole-model rows: for each distinct model name, the overhead is
// fitted on the other models' measurements and that model's measurements are predicted
// (leave one model out); needs >= 2 model names, else no whole-model rows.
StatusOr<EvalReport> EvaluatePredictors(const std::vector<KernelRecord>& kernels,
                                        const std::vector<ModelRecord>& models, const EvalOptions& options);

}  // namespace acs::predictors
