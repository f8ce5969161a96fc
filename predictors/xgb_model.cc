#include "predictors/xgb_model.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace acs::predictors {
namespace {

constexpr const char* kFormat = "acs-latency-xgboost";

Status XgbError(const std::string& what) {
  return Status::Internal("XGBoost " + what + ": " + XGBGetLastError());
}

#define ACS_XGB(call, what)                         \
  do {                                              \
    if ((call) != 0) return XgbError(what);         \
  } while (0)

// Owns a DMatrix handle.
struct Matrix {
  DMatrixHandle h = nullptr;
  ~Matrix() {
    if (h) XGDMatrixFree(h);
  }
};

StatusOr<std::unique_ptr<Matrix>> MakeMatrix(const std::vector<float>& rows, size_t n) {
  auto m = std::make_unique<Matrix>();
  ACS_XGB(XGDMatrixCreateFromMat(rows.data(), n, kNumFeatures, std::numeric_limits<float>::quiet_NaN(), &m->h),
          "matrix");
  return m;
}

Status SetParams(BoosterHandle h, const XgbOptions& o) {
  const std::vector<std::pair<std::string, std::string>> params = {
      {"objective", o.objective},
      {"huber_slope", std::to_string(o.huber_slope)},
      {"base_score", "0"},
      {"tree_method", "exact"},
      {"max_depth", std::to_string(o.max_depth)},
      {"eta", std::to_string(o.learning_rate)},
      {"subsample", std::to_string(o.subsample)},
      {"colsample_bytree", std::to_string(o.colsample)},
      {"min_child_weight", std::to_string(o.min_child_weight)},
      {"lambda", std::to_string(o.lambda)},
      {"nthread", std::to_string(o.threads)},
      {"seed", std::to_string(o.seed)},
      {"verbosity", "0"},
  };
  for (const auto& [k, v] : params) ACS_XGB(XGBoosterSetParam(h, k.c_str(), v.c_str()), "parameter " + k);
  return Status::Ok();
}

nlohmann::json OptionsJson(const XgbOptions& o) {
  return {{"rounds", o.rounds},       {"max_depth", o.max_depth}, {"learning_rate", o.learning_rate},
          {"subsample", o.subsample}, {"colsample", o.colsample}, {"min_child_weight", o.min_child_weight},
          {"lambda", o.lambda},       {"threads", o.threads},     {"seed", o.seed},
          {"objective", o.objective}, {"huber_slope", o.huber_slope}};
}

}  // namespace

struct XgbLatencyModel::Booster {
  BoosterHandle h = nullptr;
  int samples = 0;
  ~Booster() {
    if (h) XGBoosterFree(h);
  }
};

XgbLatencyModel::~XgbLatencyModel() = default;

namespace {
double LogPriorOf(const KernelShapeStats& stats) { return std::log(std::max(1.0, stats.macs_nonzero) * 1e-3); }
}  // namespace

double LogPrior(const KernelSpec& spec) { return LogPriorOf(ShapeStats(spec)); }

StatusOr<std::unique_ptr<XgbLatencyModel>> XgbLatencyModel::Train(const std::vector<KernelSample>& samples,
                                                                  const XgbOptions& options) {
  if (options.rounds < 1) return Status::InvalidArgument("XGBoost rounds must be >= 1");
  std::array<std::vector<const KernelSample*>, static_cast<int>(KernelKindId::kCount)> by_kind;
  for (const KernelSample& s : samples) {
    if (!(s.latency_us > 0) || !std::isfinite(s.latency_us)) {
      return Status::InvalidArgument("latency of '" + s.spec.Key() + "' is not a positive number");
    }
    by_kind[static_cast<int>(KindOf(s.spec))].push_back(&s);
  }
  std::unique_ptr<XgbLatencyModel> model(new XgbLatencyModel());
  model->options_ = options;
  bool any = false;
  for (int k = 0; k < static_cast<int>(KernelKindId::kCount); ++k) {
    const auto& kind_samples = by_kind[k];
    if (kind_samples.size() < 2) continue;
    std::vector<float> rows, labels, margins;
    for (const KernelSample* s : kind_samples) {
      const auto f = Features(s->spec);
      rows.insert(rows.end(), f.begin(), f.end());
      const double prior = LogPrior(s->spec);
      labels.push_back(static_cast<float>(std::log(s->latency_us)));
      margins.push_back(static_cast<float>(prior));
    }
    ACS_ASSIGN_OR_RETURN(std::unique_ptr<Matrix> m, MakeMatrix(rows, kind_samples.size()));
    ACS_XGB(XGDMatrixSetFloatInfo(m->h, "label", labels.data(), labels.size()), "labels");
    ACS_XGB(XGDMatrixSetFloatInfo(m->h, "base_margin", margins.data(), margins.size()), "base margin");
    auto booster = std::make_unique<Booster>();
    ACS_XGB(XGBoosterCreate(&m->h, 1, &booster->h), "create");
    ACS_RETURN_IF_ERROR(SetParams(booster->h, options));
    for (int it = 0; it < options.rounds; ++it) ACS_XGB(XGBoosterUpdateOneIter(booster->h, it, m->h), "training");
    booster->samples = static_cast<int>(kind_samples.size());
    model->boosters_[k] = std::move(booster);
    any = true;
  }
  if (!any) return Status::InvalidArgument("no kernel kind has the 2 samples needed to train a latency model");
  return model;
}

bool XgbLatencyModel::HasKind(KernelKindId kind) const { return boosters_[static_cast<int>(kind)] != nullptr; }

int XgbLatencyModel::samples(KernelKindId kind) const {
  const auto& b = boosters_[static_cast<int>(kind)];
  return b ? b->samples : 0;
}

StatusOr<std::vector<double>> XgbLatencyModel::Predict(const std::vector<KernelSpec>& specs) const {
  std::vector<double> out(specs.size(), 0.0);
  std::array<std::vector<size_t>, static_cast<int>(KernelKindId::kCount)> by_kind;
  for (size_t i = 0; i < specs.size(); ++i) by_kind[static_cast<int>(KindOf(specs[i]))].push_back(i);
  std::lock_guard<std::mutex> lock(mu_);
  for (int k = 0; k < static_cast<int>(KernelKindId::kCount); ++k) {
    const auto& idx = by_kind[k];
    if (idx.empty()) continue;
    const auto& booster = boosters_[k];
    if (!booster) {
      return Status::FailedPrecondition(std::string("the latency model has no data for ") +
                                        KernelKindIdName(static_cast<KernelKindId>(k)) + " layers (e.g. '" +
                                        specs[idx[0]].Key() + "'); collect measurements of such layers");
    }
    std::vector<float> rows;
    std::vector<double> priors;
    rows.reserve(idx.size() * kNumFeatures);
    priors.reserve(idx.size());
    for (size_t i : idx) {
      const KernelSpec run = AsRun(specs[i]);
      const KernelShapeStats stats = RunStats(run);
      const auto f = RunFeatures(run, stats);
      rows.insert(rows.end(), f.begin(), f.end());
      priors.push_back(LogPriorOf(stats));
    }
    ACS_ASSIGN_OR_RETURN(std::unique_ptr<Matrix> m, MakeMatrix(rows, idx.size()));
    // Without a base margin and with base_score 0 the output is the sum of the trees.
    const char* config = R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false})";
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    ACS_XGB(XGBoosterPredictFromDMatrix(booster->h, m->h, config, &shape, &dim, &result), "prediction");
    for (size_t j = 0; j < idx.size(); ++j) {
      out[idx[j]] = std::exp(static_cast<double>(result[j]) + priors[j]);
    }
  }
  return out;
}

StatusOr<std::string> XgbLatencyModel::Save() const {
  nlohmann::json kinds = nlohmann::json::object();
  std::lock_guard<std::mutex> lock(mu_);
  for (int k = 0; k < static_cast<int>(KernelKindId::kCount); ++k) {
    const auto& b = boosters_[k];
    if (!b) continue;
    bst_ulong len = 0;
    const char* buf = nullptr;
    ACS_XGB(XGBoosterSaveModelToBuffer(b->h, R"({"format": "json"})", &len, &buf), "save");
    kinds[KernelKindIdName(static_cast<KernelKindId>(k))] = {{"samples", b->samples},
                                                              {"booster", std::string(buf, len)}};
  }
  nlohmann::json features = nlohmann::json::array();
  for (const char* f : FeatureNames()) features.push_back(f);
  nlohmann::json blob = {{"format", kFormat}, {"version", kBlobVersion}, {"features", features},
                         {"options", OptionsJson(options_)}, {"kinds", kinds}};
  return blob.dump();
}

StatusOr<std::unique_ptr<XgbLatencyModel>> XgbLatencyModel::Load(const std::string& text) {
  const nlohmann::json blob = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (blob.is_discarded() || !blob.is_object()) return Status::InvalidArgument("latency model blob is not JSON");
  if (blob.value("format", "") != kFormat) {
    return Status::InvalidArgument(std::string("latency model blob is not of format '") + kFormat + "'");
  }
  if (!blob.contains("version") || !blob["version"].is_number_integer() || blob["version"] != kBlobVersion) {
    return Status::InvalidArgument("latency model blob has version " + blob.value("version", nlohmann::json()).dump() +
                                   ", this build reads version " + std::to_string(kBlobVersion));
  }
  nlohmann::json features = nlohmann::json::array();
  for (const char* f : FeatureNames()) features.push_back(f);
  if (blob.value("features", nlohmann::json()) != features) {
    return Status::InvalidArgument(
        "latency model blob was trained on other features than this build computes: train it again from the stored "
        "measurements ('acs predictor train'; a latency job's own campaign does)");
  }
  std::unique_ptr<XgbLatencyModel> model(new XgbLatencyModel());
  const nlohmann::json& o = blob.value("options", nlohmann::json::object());
  model->options_.threads = o.value("threads", 1);
  if (!blob.contains("kinds") || !blob["kinds"].is_object() || blob["kinds"].empty()) {
    return Status::InvalidArgument("latency model blob has no kernel kinds");
  }
  for (const auto& item : blob["kinds"].items()) {
    ACS_ASSIGN_OR_RETURN(KernelKindId kind, ParseKernelKindId(item.key()));
    const nlohmann::json& v = item.value();
    if (!v.is_object() || !v.contains("booster") || !v["booster"].is_string()) {
      return Status::InvalidArgument("latency model blob: kind '" + item.key() + "' has no booster");
    }
    const std::string buf = v["booster"].get<std::string>();
    auto booster = std::make_unique<Booster>();
    ACS_XGB(XGBoosterCreate(nullptr, 0, &booster->h), "create");
    if (XGBoosterLoadModelFromBuffer(booster->h, buf.data(), buf.size()) != 0) {
      return Status::InvalidArgument("latency model blob: booster of '" + item.key() +
                                     "' does not load: " + XGBGetLastError());
    }
    ACS_XGB(XGBoosterSetParam(booster->h, "nthread", std::to_string(model->options_.threads).c_str()), "nthread");
    booster->samples = v.value("samples", 0);
    model->boosters_[static_cast<int>(kind)] = std::move(booster);
  }
  return model;
}

std::vector<KernelSpec> SpecsOf(const std::vector<KernelSample>& samples) {
  std::vector<KernelSpec> specs;
  specs.reserve(samples.size());
  for (const KernelSample& s : samples) specs.push_back(s.spec);
  return specs;
}

std::vector<double> LatenciesOf(const std::vector<KernelSample>& samples) {
  std::vector<double> v;
  v.reserve(samples.size());
  for (const KernelSample& s : samples) v.push_back(s.latency_us);
  return v;
}

}  // namespace acs::predictors
