// bench_predictor: how far the latency predictors of a device class can be trusted and how
// fast the XGBoost model predicts. Reads the measurements `acs predictor collect` stored,
// prints the evaluation table (held-out kernels per kind; whole models leaving one model
// out) for XGBoost and the baselines, and the batch prediction rate on one core; writes
// data/bench/bench_predictor.json. --xgb-* override the XGBoost options (XgbOptions) to
// compare settings on the same measurements.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/flags.h"
#include "devices/measure/device_class.h"
#include "devices/runtime/runtime.h"
#include "experiments/bench/bench_common.h"
#include "predictors/predictor.h"
#include "predictors/sampling.h"

namespace acs::bench {
namespace {

int Run(int argc, char** argv) {
  StatusOr<Flags> flags = ParseFlags(argc, argv, 1,
                                     {"store", "device-class", "json", "predictions", "xgb-rounds", "xgb-depth",
                                      "xgb-eta", "xgb-objective", "xgb-huber-slope", "xgb-min-child-weight"},
                                     {});
  if (!flags.ok() || !flags->positional.empty()) {
    std::fprintf(stderr,
                 "usage: bench_predictor [--store data/predictors.db] [--device-class local|ID]\n"
                 "                       [--predictions N] [--json data/bench/bench_predictor.json]\n"
                 "                       [--xgb-rounds N] [--xgb-depth D] [--xgb-eta E] [--xgb-objective O]\n"
                 "                       [--xgb-huber-slope S] [--xgb-min-child-weight W]\n");
    return 2;
  }
  std::string dc = flags->Get("device-class", "local");
  if (dc == "local") dc = measure::DetectDeviceClass({1, runtime::RuntimeVersion()}).MachineId();
  const std::string store_path = flags->Get("store", "data/predictors.db");
  auto store = predictors::OpenSqliteStore(store_path);
  if (!store.ok()) {
    std::fprintf(stderr, "bench_predictor: %s\n", store.status().message().c_str());
    return 1;
  }
  auto kernels = (*store)->Kernels(dc);
  auto models = (*store)->Models(dc);
  if (!kernels.ok() || !models.ok() || kernels->empty()) {
    std::fprintf(stderr, "bench_predictor: no kernel measurements of %s in %s; run 'acs predictor collect'\n",
                 dc.c_str(), store_path.c_str());
    return 1;
  }
  predictors::EvalOptions options;
  predictors::XgbOptions& xgb = options.xgb;
  StatusOr<int64_t> rounds = flags->GetInt("xgb-rounds", xgb.rounds), depth = flags->GetInt("xgb-depth", xgb.max_depth);
  StatusOr<double> eta = flags->GetDouble("xgb-eta", xgb.learning_rate),
                   slope = flags->GetDouble("xgb-huber-slope", xgb.huber_slope),
                   child = flags->GetDouble("xgb-min-child-weight", xgb.min_child_weight);
  if (!rounds.ok() || !depth.ok() || !eta.ok() || !slope.ok() || !child.ok()) {
    std::fprintf(stderr, "bench_predictor: --xgb-* flags take numbers\n");
    return 2;
  }
  xgb.rounds = static_cast<int>(*rounds);
  xgb.max_depth = static_cast<int>(*depth);
  xgb.learning_rate = *eta;
  xgb.huber_slope = *slope;
  xgb.min_child_weight = *child;
  xgb.objective = flags->Get("xgb-objective", xgb.objective);
  if (auto roofline = predictors::StoredRoofline(**store, dc); roofline.ok()) options.roofline = *roofline;
  StatusOr<predictors::EvalReport> report = predictors::EvaluatePredictors(*kernels, *models, options);
  if (!report.ok()) {
    std::fprintf(stderr, "bench_predictor: %s\n", report.status().message().c_str());
    return 1;
  }
  std::printf("device class %s: %d training kernels, %d held-out kernels (%d measured again), %d whole-model "
              "measurements of %d models\n\n",
              dc.c_str(), report->train_kernels, report->heldout_kernels, report->repeated_kernels,
              report->model_measurements, report->models);
  std::printf("%-10s %-12s %6s %8s %10s %11s %9s\n", "predictor", "scope", "n", "MAPE", "within 5%", "within 10%",
              "Spearman");
  for (const predictors::EvalRow& r : report->rows) {
    std::printf("%-10s %-12s %6d %7.1f%% %9.1f%% %10.1f%% %9.3f\n", r.model.c_str(), r.scope.c_str(),
                r.metrics.count, 100 * r.metrics.mape, 100 * r.metrics.within5, 100 * r.metrics.within10,
                r.metrics.spearman);
  }

  // Batch prediction rate of the XGBoost model on one core.
  StatusOr<int64_t> n = flags->GetInt("predictions", 100000);
  if (!n.ok() || *n < 1) {
    std::fprintf(stderr, "bench_predictor: --predictions must be a count >= 1\n");
    return 2;
  }
  auto model = predictors::XgbLatencyModel::Train(predictors::Samples(*kernels, predictors::KernelRole::kTraining), xgb);
  if (!model.ok()) {
    std::fprintf(stderr, "bench_predictor: %s\n", model.status().message().c_str());
    return 1;
  }
  predictors::SampleSpace space;
  space.threads = {1, 2};
  predictors::KernelSampler sampler(predictors::ShapePrior::Builtin(), space, 99);
  const std::vector<KernelSpec> specs = sampler.Sample(static_cast<int>(*n));
  const auto t0 = std::chrono::steady_clock::now();
  StatusOr<std::vector<double>> pred = (*model)->Predict(specs);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!pred.ok()) {
    std::fprintf(stderr, "bench_predictor: %s\n", pred.status().message().c_str());
    return 1;
  }
  const double rate = static_cast<double>(specs.size()) / seconds;
  std::printf("\nbatch prediction: %zu layer predictions in %.3f s on one core = %.0f predictions/s\n", specs.size(),
              seconds, rate);
  nlohmann::json j = report->ToJson();
  j["device_class"] = dc;
  j["batch_predictions"] = {{"count", specs.size()}, {"seconds", seconds}, {"per_second", rate}, {"threads", 1}};
  return WriteJsonFile(flags->Get("json", "data/bench/bench_predictor.json"), j) ? 0 : 1;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Run(argc, argv); }
