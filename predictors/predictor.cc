#include "predictors/predictor.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace acs::predictors {
namespace {

constexpr const char* kFormat = "acs-latency-predictor";
constexpr int kVersion = 1;

// Scores one latency model on held-out kernels, per kind and all together.
Status KernelRows(const LatencyModel& model, const std::vector<KernelSample>& heldout, std::vector<EvalRow>& rows) {
  for (int k = 0; k <= static_cast<int>(KernelKindId::kCount); ++k) {
    std::vector<KernelSample> subset;
    for (const KernelSample& s : heldout) {
      if (k == static_cast<int>(KernelKindId::kCount) || static_cast<int>(KindOf(s.spec)) == k) subset.push_back(s);
    }
    if (subset.empty()) continue;
    StatusOr<std::vector<double>> pred = model.Predict(SpecsOf(subset));
    if (!pred.ok()) continue;  // no data for that kind: no row
    const std::string scope =
        k == static_cast<int>(KernelKindId::kCount) ? "kernels" : KernelKindIdName(static_cast<KernelKindId>(k));
    rows.push_back({model.name(), scope, ComputeMetrics(*pred, LatenciesOf(subset))});
  }
  return Status::Ok();
}

// `k` of `n` indices evenly spaced from 0, in order (all of them when k >= n).
std::vector<size_t> Spaced(size_t n, size_t k) {
  std::vector<size_t> out;
  k = std::min(n, k);
  for (size_t i = 0; i < k; ++i) out.push_back(i * n / k);
  return out;
}

EvalPoint PointOf(const KernelSample& s, bool held_out, double predicted_us) {
  return {KernelKindIdName(KindOf(s.spec)), 2.0 * ShapeStats(s.spec).macs_nonzero, s.latency_us, predicted_us,
          held_out};
}

// EvalReport::points; `predicted` is empty or has one prediction per held-out kernel.
std::vector<EvalPoint> ChartPoints(const std::vector<KernelSample>& train, const std::vector<KernelSample>& heldout,
                                   const std::vector<double>& predicted) {
  std::vector<EvalPoint> out;
  for (size_t i : Spaced(heldout.size(), kMaxEvalPoints)) {
    out.push_back(PointOf(heldout[i], true, i < predicted.size() ? predicted[i] : 0.0));
  }
  for (size_t i : Spaced(train.size(), kMaxEvalPoints - out.size())) out.push_back(PointOf(train[i], false, 0.0));
  return out;
}

// Leave-one-model-out whole-model predictions of one kernel model.
StatusOr<AccuracyMetrics> WholeModelRow(const LatencyModel& model, const std::vector<ModelRecord>& records) {
  const std::vector<ModelShape> shapes = Shapes(records);
  ACS_ASSIGN_OR_RETURN(std::vector<double> sums, KernelSums(model, shapes));
  const std::vector<double> measured = Latencies(records);
  std::set<std::string> names;
  for (const ModelRecord& r : records) names.insert(r.model);
  std::vector<double> predicted(records.size(), 0.0);
  for (const std::string& held : names) {
    std::vector<ModelShape> fs;
    std::vector<double> fm, fk;
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].model == held) continue;
      fs.push_back(shapes[i]);
      fm.push_back(measured[i]);
      fk.push_back(sums[i]);
    }
    ACS_ASSIGN_OR_RETURN(OverheadModel overhead, OverheadModel::Fit(fs, fm, fk));
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].model == held) predicted[i] = sums[i] + overhead.Predict(shapes[i]);
    }
  }
  return ComputeMetrics(predicted, measured);
}

// The first measurement of a spec as the prediction of its later measurements: the
// noise floor of the kernel rows. FailedPrecondition for a spec measured only later.
class RepeatModel : public LatencyModel {
 public:
  explicit RepeatModel(const std::vector<KernelSample>& first) {
    for (const KernelSample& s : first) first_.emplace(KeyOf(s.spec), s.latency_us);
  }
  std::string name() const override { return "repeat"; }
  bool Has(const KernelSpec& s) const { return first_.count(KeyOf(s)) > 0; }
  StatusOr<std::vector<double>> Predict(const std::vector<KernelSpec>& specs) const override {
    std::vector<double> out;
    for (const KernelSpec& s : specs) {
      auto it = first_.find(KeyOf(s));
      if (it == first_.end()) return Status::FailedPrecondition("'" + s.Key() + "' has no earlier measurement");
      out.push_back(it->second);
    }
    return out;
  }

 private:
  static std::string KeyOf(const KernelSpec& s) { return s.Key() + " t" + std::to_string(s.threads); }
  std::map<std::string, double> first_;
};

// The repeats of `heldout` kernels among `repeats`, and the first measurements as their
// prediction.
struct RepeatPairs {
  RepeatModel first;
  std::vector<KernelSample> repeats;
};
RepeatPairs PairRepeats(const std::vector<KernelSample>& heldout, const std::vector<KernelSample>& repeats) {
  RepeatPairs p{RepeatModel(heldout), {}};
  for (const KernelSample& s : repeats) {
    if (p.first.Has(s.spec)) p.repeats.push_back(s);
  }
  return p;
}

// Whole-model noise floor: each model record after the first of its (model, policy,
// threads) against that first one. Count 0 when nothing was measured twice.
AccuracyMetrics WholeModelRepeatRow(const std::vector<ModelRecord>& records) {
  std::map<std::tuple<std::string, std::string, int>, double> first;
  std::vector<double> predicted, measured;
  for (const ModelRecord& r : records) {
    auto [it, inserted] = first.emplace(std::make_tuple(r.model, r.policy_hash, r.shape.threads), LabelUs(r));
    if (inserted) continue;
    predicted.push_back(it->second);
    measured.push_back(LabelUs(r));
  }
  return ComputeMetrics(predicted, measured);
}

}  // namespace

StatusOr<double> TrainedPredictor::PredictModel(const ModelShape& shape) const {
  if (!kernels) return Status::FailedPrecondition("the predictor has no kernel model");
  ACS_ASSIGN_OR_RETURN(std::vector<double> v, PredictModels(*kernels, overhead, {shape}));
  return v[0];
}

StatusOr<std::string> SavePredictor(const TrainedPredictor& p) {
  if (!p.kernels) return Status::FailedPrecondition("the predictor has no kernel model");
  ACS_ASSIGN_OR_RETURN(std::string kernels, p.kernels->Save());
  nlohmann::json j = {{"format", kFormat}, {"version", kVersion}, {"kernels", kernels},
                      {"overhead", p.overhead.ToJson()}};
  return j.dump();
}

StatusOr<TrainedPredictor> LoadPredictor(const std::string& blob) {
  const nlohmann::json j = nlohmann::json::parse(blob, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != kFormat) {
    return Status::InvalidArgument(std::string("predictor blob is not of format '") + kFormat + "'");
  }
  if (j.value("version", 0) != kVersion) {
    return Status::InvalidArgument("predictor blob version " + j.value("version", nlohmann::json()).dump() +
                                   " is not the version " + std::to_string(kVersion) + " this build reads");
  }
  if (!j.contains("kernels") || !j["kernels"].is_string()) return Status::InvalidArgument("predictor blob has no kernel model");
  TrainedPredictor p;
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<XgbLatencyModel> k, XgbLatencyModel::Load(j["kernels"].get<std::string>()));
  p.kernels = std::move(k);
  ACS_ASSIGN_OR_RETURN(p.overhead, OverheadModel::FromJson(j.value("overhead", nlohmann::json::object())));
  return p;
}

KernelRole RoleOf(const KernelRecord& r) {
  if (r.source == kHeldOutSource) return KernelRole::kHeldOut;
  if (r.source == kRepeatSource) return KernelRole::kRepeat;
  return KernelRole::kTraining;
}

double LabelUs(const KernelRecord& r) { return r.min_us > 0 ? r.min_us : r.median_us; }
double LabelUs(const ModelRecord& r) { return r.min_us > 0 ? r.min_us : r.median_us; }

std::vector<KernelSample> Samples(const std::vector<KernelRecord>& records, KernelRole role) {
  std::vector<KernelSample> out;
  for (const KernelRecord& r : records) {
    if (RoleOf(r) == role) out.push_back({r.spec, LabelUs(r)});
  }
  return out;
}

std::vector<ModelShape> Shapes(const std::vector<ModelRecord>& records) {
  std::vector<ModelShape> out;
  for (const ModelRecord& r : records) out.push_back(r.shape);
  return out;
}

std::vector<double> Latencies(const std::vector<ModelRecord>& records) {
  std::vector<double> out;
  for (const ModelRecord& r : records) out.push_back(LabelUs(r));
  return out;
}

StatusOr<TrainedPredictor> TrainPredictor(const std::vector<KernelRecord>& kernels,
                                          const std::vector<ModelRecord>& models, const XgbOptions& options) {
  const std::vector<KernelSample> train = Samples(kernels, KernelRole::kTraining);
  if (train.empty()) return Status::InvalidArgument("no kernel measurements to train on; run 'acs predictor collect'");
  TrainedPredictor p;
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<XgbLatencyModel> k, XgbLatencyModel::Train(train, options));
  p.kernels = std::move(k);
  if (!models.empty()) {
    const std::vector<ModelShape> shapes = Shapes(models);
    ACS_ASSIGN_OR_RETURN(std::vector<double> sums, KernelSums(*p.kernels, shapes));
    ACS_ASSIGN_OR_RETURN(p.overhead, OverheadModel::Fit(shapes, Latencies(models), sums));
  }
  return p;
}

AccuracyMetrics RepeatAgreement(const std::vector<KernelRecord>& kernels) {
  const RepeatPairs p = PairRepeats(Samples(kernels, KernelRole::kHeldOut), Samples(kernels, KernelRole::kRepeat));
  if (p.repeats.empty()) return {};
  StatusOr<std::vector<double>> first = p.first.Predict(SpecsOf(p.repeats));
  return first.ok() ? ComputeMetrics(*first, LatenciesOf(p.repeats)) : AccuracyMetrics{};
}

StatusOr<TrainedRecord> TrainForStore(const std::string& device_class, const std::vector<KernelRecord>& kernels,
                                      const std::vector<ModelRecord>& models, const nlohmann::json& extra,
                                      const XgbOptions& options) {
  TrainedRecord out;
  ACS_ASSIGN_OR_RETURN(out.predictor, TrainPredictor(kernels, models, options));
  const std::vector<KernelSample> heldout = Samples(kernels, KernelRole::kHeldOut);
  if (!heldout.empty()) {
    ACS_ASSIGN_OR_RETURN(std::vector<double> pred, out.predictor.kernels->Predict(SpecsOf(heldout)));
    out.heldout = ComputeMetrics(pred, LatenciesOf(heldout));
  }
  out.repeat = RepeatAgreement(kernels);
  out.record.device_class = device_class;
  out.record.name = kXgbPredictorName;
  ACS_ASSIGN_OR_RETURN(out.record.blob, SavePredictor(out.predictor));
  nlohmann::json metrics = {{"heldout_kernels", out.heldout.ToJson()},
                            {"repeat_kernels", out.repeat.ToJson()},
                            {"model_measurements", models.size()}};
  metrics.update(extra);
  out.record.metrics_json = metrics.dump();
  out.record.measurements = std::count_if(kernels.begin(), kernels.end(), [](const KernelRecord& r) {
    return RoleOf(r) == KernelRole::kTraining;
  });
  return out;
}

StatusOr<std::optional<StoredPredictor>> LoadLatestPredictor(MeasurementStore& store,
                                                              const std::string& device_class) {
  ACS_ASSIGN_OR_RETURN(std::optional<PredictorRecord> rec, store.LatestPredictor(device_class, kXgbPredictorName));
  if (!rec) return std::optional<StoredPredictor>();
  ACS_ASSIGN_OR_RETURN(TrainedPredictor p, LoadPredictor(rec->blob));
  return std::optional<StoredPredictor>(
      StoredPredictor{std::move(*rec), std::make_shared<const TrainedPredictor>(std::move(p))});
}

StatusOr<std::vector<RooflinePoint>> StoredRoofline(MeasurementStore& store, const std::string& device_class) {
  std::vector<RooflinePoint> points;
  ACS_ASSIGN_OR_RETURN(std::optional<std::string> device, store.Device(device_class));
  if (!device) return points;
  const nlohmann::json j = nlohmann::json::parse(*device, nullptr, false);
  if (j.is_object() && j.contains("roofline") && j["roofline"].is_array()) {
    for (const auto& p : j["roofline"]) {
      ACS_ASSIGN_OR_RETURN(RooflinePoint point, RooflinePoint::FromJson(p));
      points.push_back(point);
    }
  }
  return points;
}

nlohmann::json EvalRow::ToJson() const {
  nlohmann::json j = metrics.ToJson();
  j["model"] = model;
  j["scope"] = scope;
  return j;
}

nlohmann::json EvalReport::ToJson() const {
  nlohmann::json r = nlohmann::json::array();
  for (const EvalRow& row : rows) r.push_back(row.ToJson());
  return {{"rows", r},
          {"train_kernels", train_kernels},
          {"heldout_kernels", heldout_kernels},
          {"repeated_kernels", repeated_kernels},
          {"model_measurements", model_measurements},
          {"models", models},
          {"seconds_train", seconds_train}};
}

StatusOr<EvalReport> EvaluatePredictors(const std::vector<KernelRecord>& kernels,
                                        const std::vector<ModelRecord>& models, const EvalOptions& options) {
  EvalReport report;
  const std::vector<KernelSample> train = Samples(kernels, KernelRole::kTraining),
                                  heldout = Samples(kernels, KernelRole::kHeldOut),
                                  repeats = Samples(kernels, KernelRole::kRepeat);
  report.train_kernels = static_cast<int>(train.size());
  report.heldout_kernels = static_cast<int>(heldout.size());
  const RepeatPairs floor = PairRepeats(heldout, repeats);
  report.repeated_kernels = static_cast<int>(floor.repeats.size());
  report.model_measurements = static_cast<int>(models.size());
  std::set<std::string> names;
  for (const ModelRecord& r : models) names.insert(r.model);
  report.models = static_cast<int>(names.size());
  if (train.empty()) return Status::InvalidArgument("no training kernel measurements; run 'acs predictor collect'");

  std::vector<std::shared_ptr<const LatencyModel>> candidates;
  const auto t0 = std::chrono::steady_clock::now();
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<XgbLatencyModel> xgb, XgbLatencyModel::Train(train, options.xgb));
  report.seconds_train = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> heldout_pred;
  if (StatusOr<std::vector<double>> pred = xgb->Predict(SpecsOf(heldout)); pred.ok()) {
    heldout_pred = std::move(*pred);
    for (size_t i = 0; i < heldout.size(); ++i) {
      report.heldout_predictions.push_back({heldout[i].spec, heldout[i].latency_us, heldout_pred[i]});
    }
  }
  report.points = ChartPoints(train, heldout, heldout_pred);
  candidates.push_back(std::move(xgb));
  ACS_ASSIGN_OR_RETURN(FlopsModel flops, FlopsModel::Fit(train));
  candidates.push_back(std::make_shared<FlopsModel>(std::move(flops)));
  if (!options.roofline.empty()) {
    ACS_ASSIGN_OR_RETURN(RooflineModel roof, RooflineModel::Create(options.roofline));
    candidates.push_back(std::make_shared<RooflineModel>(std::move(roof)));
  }
  ACS_ASSIGN_OR_RETURN(LookupModel lookup, LookupModel::Fit(train));
  candidates.push_back(std::make_shared<LookupModel>(std::move(lookup)));

  for (const auto& m : candidates) {
    if (!heldout.empty()) ACS_RETURN_IF_ERROR(KernelRows(*m, heldout, report.rows));
  }
  if (names.size() >= 2) {
    for (const auto& m : candidates) {
      StatusOr<AccuracyMetrics> whole = WholeModelRow(*m, models);
      if (whole.ok()) report.rows.push_back({m->name(), "whole model", *whole});
    }
  }
  if (!floor.repeats.empty()) ACS_RETURN_IF_ERROR(KernelRows(floor.first, floor.repeats, report.rows));
  if (AccuracyMetrics whole_floor = WholeModelRepeatRow(models); whole_floor.count > 0) {
    report.rows.push_back({"repeat", "whole model", whole_floor});
  }
  return report;
}

}  // namespace acs::predictors
