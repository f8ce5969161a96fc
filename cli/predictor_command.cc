// acs predictor collect | train | eval | predict: latency predictors of a device class
// from measurements taken by the harness on this machine (collect: predictor_collect.cc),
// kept in an SQLite store.
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "agents/latency_cost.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/measure/process_env.h"
#include "predictors/predictor.h"

namespace acs::cli {
namespace {

using predictors::KernelRecord;
using predictors::MeasurementStore;
using predictors::ModelRecord;

const char kHelp[] =
    "usage: acs predictor COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  collect   measure sampled kernels (and whole models) on this machine into the store\n"
    "  train     train the XGBoost latency model of a device class from the store\n"
    "  eval      accuracy of the XGBoost model and the baselines on held-out data\n"
    "  predict   predicted latency of a model under a policy, layer by layer\n"
    "  campaign  have an acs-server's workers measure kernels and train (--server, see --help)\n"
    "  status    an acs-server's predictor of a device class (--server)\n"
    "\n"
    "collect options:\n"
    "  --samples N         kernel measurements drawn from the shape prior (default 1200)\n"
    "  --heldout N         further ones kept for evaluation only (default 200)\n"
    "  --rounds R          adaptive rounds (default 2): where the error on a validation\n"
    "                      fifth of the training kernels is above 10%, measure near it\n"
    "  --round-samples N   measurements per adaptive round at most (default 150)\n"
    "  --threads LIST      thread counts, e.g. 1,2 (default 1,2)\n"
    "  --models LIST       TorchScript models measured whole under random policies\n"
    "  --layers-of LIST    TorchScript models whose own layers are measured under a grid of\n"
    "                      the search's default space, as a job does before its search\n"
    "  --input SHAPE       input shape of those models, e.g. 1x1x28x28\n"
    "  --policies N        random policies per model and thread count (default 6)\n"
    "  --calib DATA        calibration data for the models' batch-norm recalibration\n"
    "  --seed S            sampling seed (default 1)\n"
    "  --min-seconds S     timed seconds per measurement at least (default 0.05)\n"
    "  --min-repeats N     timed runs per measurement at least (default 7)\n"
    "  --passes P          rounds over all kernels, each with 1/P of the timed runs and\n"
    "                      seconds (default 16): slow drifts of the host's speed spread out\n"
    "\n"
    "eval options:\n"
    "  --json PATH         also write the table as JSON\n"
    "  --predictions PATH  write the XGBoost model's held-out predictions as CSV\n"
    "\n"
    "predict options:\n"
    "  --model PATH --policy P.json --input SHAPE [--threads T]\n"
    "\n";

// The device class's measurements from the store; FailedPrecondition without kernels.
struct StoredMeasurements {
  std::string device_class;
  std::unique_ptr<MeasurementStore> store;
  std::vector<KernelRecord> kernels;
  std::vector<ModelRecord> models;
};

StatusOr<StoredMeasurements> LoadMeasurements(const Flags& flags) {
  StoredMeasurements m;
  ACS_ASSIGN_OR_RETURN(m.device_class, ResolveDeviceClass(flags));
  ACS_ASSIGN_OR_RETURN(m.store, OpenStore(flags));
  ACS_ASSIGN_OR_RETURN(m.kernels, m.store->Kernels(m.device_class));
  ACS_ASSIGN_OR_RETURN(m.models, m.store->Models(m.device_class));
  if (m.kernels.empty()) {
    return Status::FailedPrecondition("no kernel measurements of device class '" + m.device_class +
                                      "' in the store; run 'acs predictor collect' first");
  }
  return m;
}

Status Train(const Flags& flags) {
  ACS_ASSIGN_OR_RETURN(StoredMeasurements m, LoadMeasurements(flags));
  const auto t0 = std::chrono::steady_clock::now();
  ACS_ASSIGN_OR_RETURN(predictors::TrainedRecord t, predictors::TrainForStore(m.device_class, m.kernels, m.models));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ACS_ASSIGN_OR_RETURN(int64_t version, m.store->AddPredictor(t.record));
  std::printf("trained %s latency model v%lld of %s on %lld kernel measurements in %.1f s\n",
              predictors::kXgbPredictorName, static_cast<long long>(version), m.device_class.c_str(),
              static_cast<long long>(t.record.measurements), seconds);
  std::printf("whole-model overhead fitted on %zu model measurements\n", m.models.size());
  if (t.heldout.count > 0) {
    std::printf("held-out kernels: %d, MAPE %.1f%%, within 10%% %.1f%%, Spearman %.3f\n", t.heldout.count,
                100 * t.heldout.mape, 100 * t.heldout.within10, t.heldout.spearman);
  }
  if (t.repeat.count > 0) std::printf("%s\n", predictors::DescribeRepeatAgreement(t.repeat.count, t.repeat.within10).c_str());
  return Status::Ok();
}

Status Eval(const Flags& flags) {
  ACS_ASSIGN_OR_RETURN(StoredMeasurements m, LoadMeasurements(flags));
  const std::string& dc = m.device_class;
  const std::vector<KernelRecord>& kernels = m.kernels;
  const std::vector<ModelRecord>& models = m.models;
  MeasurementStore* store = m.store.get();
  predictors::EvalOptions options;
  ACS_ASSIGN_OR_RETURN(options.roofline, predictors::StoredRoofline(*store, dc));
  ACS_ASSIGN_OR_RETURN(predictors::EvalReport report, predictors::EvaluatePredictors(kernels, models, options));
  std::printf("device class %s: %d training kernels, %d held-out kernels (%d measured again), %d whole-model "
              "measurements of %d models\n",
              dc.c_str(), report.train_kernels, report.heldout_kernels, report.repeated_kernels,
              report.model_measurements, report.models);
  std::printf("(whole model: leave one model out; XGBoost training took %.1f s)\n\n", report.seconds_train);
  Table table({"predictor", "scope", "n", "MAPE", "within 5%", "within 10%", "Spearman"});
  for (const predictors::EvalRow& r : report.rows) {
    char mape[32], w5[32], w10[32], rho[32];
    std::snprintf(mape, sizeof mape, "%.1f%%", 100 * r.metrics.mape);
    std::snprintf(w5, sizeof w5, "%.1f%%", 100 * r.metrics.within5);
    std::snprintf(w10, sizeof w10, "%.1f%%", 100 * r.metrics.within10);
    std::snprintf(rho, sizeof rho, "%.3f", r.metrics.spearman);
    table.AddRow({r.model, r.scope, std::to_string(r.metrics.count), mape, w5, w10, rho});
  }
  table.Print(std::cout);
  if (flags.Has("json")) {
    nlohmann::json j = report.ToJson();
    j["device_class"] = dc;
    std::ofstream out(flags.Get("json"));
    out << j.dump(2) << "\n";
    if (!out) return Status::FailedPrecondition("cannot write '" + flags.Get("json") + "'");
  }
  if (flags.Has("predictions")) {
    std::ofstream out(flags.Get("predictions"));
    out << "kernel_key,kind,pattern,precision,threads,measured_us,predicted_us\n";
    for (const predictors::EvalReport::Prediction& p : report.heldout_predictions) {
      out << p.spec.Key() << "," << predictors::KernelKindIdName(predictors::KindOf(p.spec)) << ","
          << PatternName(p.spec.config.pattern) << "," << PrecisionName(p.spec.config.precision) << ","
          << p.spec.threads << "," << p.measured_us << "," << p.predicted_us << "\n";
    }
    if (!out) return Status::FailedPrecondition("cannot write '" + flags.Get("predictions") + "'");
  }
  return Status::Ok();
}

Status Predict(const Flags& flags) {
  ACS_ASSIGN_OR_RETURN(std::string model_path, flags.Required("model"));
  ACS_ASSIGN_OR_RETURN(std::string shape_text, flags.Required("input"));
  ACS_ASSIGN_OR_RETURN(Shape input, ParseShape(shape_text));
  ACS_ASSIGN_OR_RETURN(int64_t threads, flags.GetInt("threads", 1));
  if (threads < 1) return Status::InvalidArgument("--threads must be >= 1");
  Policy policy;
  if (flags.Has("policy")) {
    StatusOr<Policy> p = Policy::FromFile(flags.Get("policy"));
    if (!p.ok()) return Status(p.status().code(), "--policy: " + p.status().message());
    policy = *p;
  }
  ACS_ASSIGN_OR_RETURN(StoredPredictor stored, LoadStoredPredictor(flags));
  const predictors::TrainedPredictor& predictor = *stored.predictor;
  const predictors::PredictorRecord* rec = &stored.record;
  ImportOptions io;
  io.input_shape = input;
  ACS_ASSIGN_OR_RETURN(std::shared_ptr<ImportedModel> model, ImportTorchScript(model_path, io));
  ACS_RETURN_IF_ERROR(ValidatePolicy(policy, model->graph));
  const Policy resolved = ResolvePolicy(policy, model->graph);
  const predictors::ModelShape shape = ModelShapeOf(model->graph, resolved, static_cast<int>(threads));
  const predictors::ModelShape dense = ModelShapeOf(model->graph, Policy{}, static_cast<int>(threads));
  ACS_ASSIGN_OR_RETURN(std::vector<double> per_layer, predictor.kernels->Predict(shape.layers));
  ACS_ASSIGN_OR_RETURN(std::vector<double> per_layer_dense, predictor.kernels->Predict(dense.layers));
  Table table({"layer", "shape as run", "config", "dense us", "predicted us"});
  for (size_t i = 0; i < shape.layers.size(); ++i) {
    const KernelSpec& s = shape.layers[i];
    std::string dims = std::to_string(s.in_channels) + "->" + std::to_string(s.out_channels);
    if (s.is_conv()) dims += " k" + std::to_string(s.kernel[0]) + " @" + std::to_string(s.input[2]);
    const LayerConfig c = resolved.Get(model->graph.layers[i].name);
    std::string config = PatternName(c.pattern);
    if (c.pattern == Pattern::kBlock) config += "1x" + std::to_string(c.block);
    if (c.pattern == Pattern::kNM) config += std::to_string(c.nm_n) + ":" + std::to_string(c.nm_m);
    if (c.pattern != Pattern::kDense && c.pattern != Pattern::kNM) {
      char sp[16];
      std::snprintf(sp, sizeof sp, " %.0f%%", 100 * c.sparsity);
      config += sp;
    }
    if (c.precision != Precision::kFp32) config += std::string(" ") + PrecisionName(c.precision);
    char d[32], p[32];
    std::snprintf(d, sizeof d, "%.1f", per_layer_dense[i]);
    std::snprintf(p, sizeof p, "%.1f", per_layer[i]);
    table.AddRow({model->graph.layers[i].name, dims, config, d, p});
  }
  table.Print(std::cout);
  ACS_ASSIGN_OR_RETURN(double total, predictor.PredictModel(shape));
  ACS_ASSIGN_OR_RETURN(double total_dense, predictor.PredictModel(dense));
  std::printf("\npredicted latency %.1f us (dense %.1f us, %.2fx) at %lld thread(s); overhead %.1f us\n", total,
              total_dense, total_dense / total, static_cast<long long>(threads), predictor.overhead.Predict(shape));
  std::printf("predictor %s v%lld of %s, trained on %lld kernel measurements\n", predictors::kXgbPredictorName,
              static_cast<long long>(rec->version), stored.device_class.c_str(),
              static_cast<long long>(rec->measurements));
  return Status::Ok();
}

}  // namespace

int PredictorCommand(int argc, char** argv) {
  if (argc < 3 || !std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h")) {
    std::cout << kHelp << kPredictorHelp;
    return argc < 3 ? 2 : 0;
  }
  const std::string sub = argv[2];
  if (sub == "campaign" || sub == "status") return RemotePredictorCommand(sub, argc, argv);
  if (sub == "collect") measure::EnsureMeasuringOpenMpEnvironment(argv);
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::cout << kHelp << kPredictorHelp;
      return 0;
    }
  }
  const std::set<std::string> valued = {"store",  "device-class", "samples",     "heldout",     "rounds",
                                        "round-samples", "threads", "models",   "input",       "policies",
                                        "layers-of",
                                        "calib",  "seed",         "min-seconds", "min-repeats", "passes",
                                        "json",   "predictions",  "model",       "policy"};
  StatusOr<Flags> flags = ParseFlags(argc, argv, 3, valued, {});
  const std::string command = "predictor " + sub;
  if (!flags.ok()) return Fail(command, flags.status());
  if (!flags->positional.empty()) {
    return Fail(command, Status::InvalidArgument("unexpected argument '" + flags->positional[0] + "'"));
  }
  Status s;
  if (sub == "collect") {
    s = PredictorCollect(*flags);
  } else if (sub == "train") {
    s = Train(*flags);
  } else if (sub == "eval") {
    s = Eval(*flags);
  } else if (sub == "predict") {
    s = Predict(*flags);
  } else {
    std::cerr << "acs predictor: unknown command '" << sub << "'\n\n" << kHelp << kPredictorHelp;
    return 2;
  }
  return s.ok() ? 0 : Fail(command, s);
}

}  // namespace acs::cli
