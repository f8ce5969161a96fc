#include "experiments/bench/search_anchor.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "agents/latency_cost.h"
#include "core/flags.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/runtime/runtime.h"
#include "devices/worker/model_measure.h"
#include "experiments/bench/bench_output.h"

namespace acs::bench {

std::string ModelArg::name() const { return std::filesystem::path(path).stem().string(); }

StatusOr<std::vector<ModelArg>> ParseModelArgs(const std::string& text) {
  std::vector<ModelArg> models;
  for (const std::string& m : SplitList(text)) {
    const size_t at = m.rfind('@');
    if (at == std::string::npos) return Status::InvalidArgument("--models entries are PATH@SHAPE, got '" + m + "'");
    ACS_ASSIGN_OR_RETURN(Shape shape, ParseShape(m.substr(at + 1)));
    models.push_back({m.substr(0, at), shape});
  }
  return models;
}

std::vector<PolicyTiming> TimeInRounds(const TimingOptions& timing, const ModelArg& model,
                                       const std::vector<Policy>& policies) {
  PolicyTimingRequest request;
  request.passes = timing.passes;
  request.threads = timing.threads;
  request.data = timing.data;
  for (const Policy& p : policies) request.policies.push_back({model.path, model.input, p});
  return OrDie(TimePoliciesInFreshProcesses(request, timing.processes), model.path + " timing");
}

LoadedPredictor LoadPredictorOrDie(const std::string& program, const std::string& store_path,
                                   const std::string& device_class) {
  LoadedPredictor loaded;
  loaded.device_class = device_class;
  if (device_class == "local") {
    loaded.device_class = measure::DetectDeviceClass({1, runtime::RuntimeVersion()}).MachineId();
  }
  auto store = OrDie(predictors::OpenSqliteStore(store_path), "store " + store_path);
  auto stored = OrDie(predictors::LoadLatestPredictor(*store, loaded.device_class), "predictor");
  if (!stored) {
    std::fprintf(stderr,
                 "%s: no trained latency predictor of %s in %s; run 'acs predictor collect' and 'acs predictor "
                 "train'\n",
                 program.c_str(), loaded.device_class.c_str(), store_path.c_str());
    std::exit(1);
  }
  loaded.version = stored->record.version;
  loaded.predictor = stored->predictor;
  return loaded;
}

AnchoredModel AnchorModel(const TimingOptions& timing, std::shared_ptr<const predictors::TrainedPredictor> predictor,
                          const ModelArg& model, bool probes) {
  const std::string name = model.name();
  worker::ModelMeasureRequest request;
  request.model_path = model.path;
  request.input_shape = model.input;
  request.threads = timing.threads;
  request.calibration_path = timing.data;
  // The dense model anchors the budget, as a job measures it before its search.
  // So do the probes (ProbePolicies), timed in the same rounds.
  worker::PreparedModel dense = OrDie(worker::PreparedModel::Prepare(request), name + " dense");
  const std::shared_ptr<ImportedModel> imported = OrDie(ImportTorchScript(model.path, {model.input}), name);
  AnchoredModel anchored;
  if (probes) anchored.probes = ProbePolicies(imported->graph, SearchSpace{});
  std::vector<Policy> anchor_policies = {Policy{}};
  anchor_policies.insert(anchor_policies.end(), anchored.probes.begin(), anchored.probes.end());
  const std::vector<PolicyTiming> anchors = TimeInRounds(timing, model, anchor_policies);
  anchored.dense = anchors.front();

  SearchSessionOptions& o = anchored.options;
  o.model_path = model.path;
  o.input_shape = model.input;
  o.data_path = timing.data;
  o.data.split = "train";
  o.budget_kind = "latency";
  o.predictor = std::move(predictor);
  const worker::PreparedModel::Profile profile = OrDie(dense.ProfileOps(20), name + " profile");
  // The uncompressed runtime in the dense baseline's units, as a job anchors it.
  // Named fields: the switches (refit_overhead, int8_scale) keep their defaults.
  o.measured.dense_us = anchored.dense.dense_min_us;
  o.measured.uncompressed_us = anchored.dense.dense_min_us * anchored.dense.median_ratio();
  o.measured.outside_layers_share = worker::OutsideLayersShare(profile.dense_plain);
  for (size_t i = 0; i < anchored.probes.size(); ++i) {
    o.measured.probes.push_back({anchored.probes[i], anchors[i + 1].median_ratio()});
  }
  o.threads = timing.threads;
  return anchored;
}

}  // namespace acs::bench
