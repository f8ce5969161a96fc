// acs predictor collect | train | eval | predict: latency predictors of a device class
// from measurements taken by the harness on this machine, kept in an SQLite store.
#include <chrono>
#include <cstring>
#include <random>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agents/latency_cost.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/measure/process_env.h"
#include "devices/runtime/runtime.h"
#include "devices/worker/kernel_measure.h"
#include "devices/worker/model_measure.h"
#include "devices/worker/roofline_probe.h"
#include "predictors/predictor.h"
#include "predictors/sampling.h"

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
    "  --input SHAPE       input shape of those models, e.g. 1x1x28x28\n"
    "  --policies N        random policies per model and thread count (default 6)\n"
    "  --calib DATA        calibration data for the models' batch-norm recalibration\n"
    "  --seed S            sampling seed (default 1)\n"
    "  --min-seconds S     timed seconds per measurement at least (default 0.05)\n"
    "  --min-repeats N     timed runs per measurement at least (default 7)\n"
    "\n"
    "eval options:\n"
    "  --json PATH         also write the table as JSON\n"
    "\n"
    "predict options:\n"
    "  --model PATH --policy P.json --input SHAPE [--threads T]\n"
    "\n";

StatusOr<std::vector<int>> ParseIntList(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 256) {
      return Status::InvalidArgument("--" + flag + ": '" + item + "' is not a count between 1 and 256");
    }
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return Status::InvalidArgument("--" + flag + " is empty");
  return out;
}

// Prints "label  i/n  [elapsed, ETA]" over itself.
class Progress {
 public:
  Progress(std::string label, int total) : label_(std::move(label)), total_(total), start_(Clock::now()) {}
  void Update(int done, int failed) {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    const double eta = done > 0 ? s / done * (total_ - done) : 0.0;
    std::fprintf(stderr, "\r%s %d/%d (%d failed)  %.0fs elapsed, ETA %.0fs   ", label_.c_str(), done, total_, failed,
                 s, eta);
    if (done == total_) std::fprintf(stderr, "\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  int total_;
  Clock::time_point start_;
};

// Measures the specs and stores them, `batch` per transaction. Specs the runtime cannot
// run are counted and their first error printed; they are not stored.
StatusOr<int> MeasureAndStore(MeasurementStore& store, const std::string& device_class,
                              const std::vector<KernelSpec>& specs, const std::string& source,
                              const worker::KernelMeasureOptions& options) {
  Progress progress("measuring " + source + " kernels", static_cast<int>(specs.size()));
  std::vector<KernelRecord> batch;
  int failed = 0, stored = 0;
  std::set<std::string> reported;
  for (size_t i = 0; i < specs.size(); ++i) {
    StatusOr<worker::KernelMeasurement> m = worker::MeasureKernel(specs[i], options);
    if (!m.ok()) {
      ++failed;
      const std::string what = StatusCodeName(m.status().code());
      if (reported.insert(what).second) {
        std::fprintf(stderr, "\n  skipped '%s': %s\n", specs[i].Key().c_str(), m.status().message().c_str());
      }
    } else {
      KernelRecord r;
      r.device_class = device_class;
      r.spec = specs[i];
      r.median_us = m->timing.median_us;
      r.iqr_us = m->timing.iqr_us;
      r.repeats = m->timing.repeats;
      r.source = source;
      r.record_json = m->ToJson().dump();
      batch.push_back(std::move(r));
    }
    if (batch.size() >= 25 || i + 1 == specs.size()) {
      ACS_RETURN_IF_ERROR(store.AddKernels(batch));
      stored += static_cast<int>(batch.size());
      batch.clear();
    }
    progress.Update(static_cast<int>(i + 1), failed);
  }
  return stored;
}

// A random policy: each compressible layer gets dense, channel, block, unstructured or
// N:M at a random sparsity; fp32 mostly, some int8 when `int8` (int8 needs calibration).
Policy RandomPolicy(const Graph& graph, bool int8, std::mt19937_64& rng) {
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  Policy p;
  for (const Layer& l : graph.layers) {
    if (!l.compressible) continue;
    LayerConfig c;
    const double u = uniform();
    const double sparsity = std::round((0.3 + 0.6 * uniform()) * 100) / 100;
    if (u < 0.2) {
      // dense
    } else if (u < 0.4) {
      c.pattern = Pattern::kChannel;
      c.sparsity = std::min(0.7, sparsity);
    } else if (u < 0.75) {
      c.pattern = Pattern::kBlock;
      const int blocks[] = {4, 8, 16};
      c.block = blocks[rng() % 3];
      c.sparsity = sparsity;
    } else if (u < 0.9) {
      c.pattern = Pattern::kUnstructured;
      c.sparsity = sparsity;
    } else {
      c.pattern = Pattern::kNM;
    }
    const bool prunable = l.out_group >= 0 && graph.groups[l.out_group].prunable;
    if (c.pattern == Pattern::kChannel && !prunable) c = LayerConfig{};
    if (c.pattern == Pattern::kBlock && l.out_channels % c.block != 0) c.pattern = Pattern::kUnstructured;
    if (l.depthwise() && c.pattern != Pattern::kChannel) c = LayerConfig{};
    if (int8 && uniform() < 0.15) c.precision = Precision::kInt8;
    p.layers[l.name] = c;
  }
  return p;
}

Status CollectModels(MeasurementStore& store, const std::string& device_class, const Flags& flags,
                     const std::vector<int>& threads, uint64_t seed, const measure::MeasureOptions& timing) {
  const std::vector<std::string> models = SplitList(flags.Get("models"));
  if (models.empty()) return Status::Ok();
  ACS_ASSIGN_OR_RETURN(std::string shape_text, flags.Required("input"));
  ACS_ASSIGN_OR_RETURN(Shape input, ParseShape(shape_text));
  ACS_ASSIGN_OR_RETURN(int64_t policies, flags.GetInt("policies", 6));
  if (policies < 0) return Status::InvalidArgument("--policies must be >= 0");
  std::mt19937_64 rng(seed * 7919 + 17);
  const int total = static_cast<int>(models.size() * threads.size() * (policies + 1));
  Progress progress("measuring whole models", total);
  int done = 0;
  for (const std::string& path : models) {
    ImportOptions io;
    io.input_shape = input;
    ACS_ASSIGN_OR_RETURN(std::shared_ptr<ImportedModel> model, ImportTorchScript(path, io));
    const std::string name = std::filesystem::path(path).stem().string();
    for (int64_t k = 0; k <= policies; ++k) {
      const Policy policy = k == 0 ? Policy{} : RandomPolicy(model->graph, flags.Has("calib"), rng);
      for (int t : threads) {
        worker::ModelMeasureRequest req;
        req.model_path = path;
        req.policy = policy;
        req.input_shape = input;
        req.threads = t;
        req.calibration_path = flags.Get("calib");
        req.measure = timing;
        StatusOr<worker::ModelMeasurement> m = worker::MeasureModel(req);
        if (!m.ok()) return Status(m.status().code(), name + ": " + m.status().message());
        ModelRecord r;
        r.device_class = device_class;
        r.model = name;
        r.policy_hash = policy.Hash();
        r.policy_json = policy.ToJson(-1);
        r.shape = ModelShapeOf(model->graph, policy, t);
        r.median_us = m->runtime.median_us;
        r.iqr_us = m->runtime.iqr_us;
        r.record_json = m->ToJson().dump();
        ACS_RETURN_IF_ERROR(store.AddModel(r));
        progress.Update(++done, 0);
      }
    }
  }
  return Status::Ok();
}

Status Collect(const Flags& flags) {
  ACS_ASSIGN_OR_RETURN(std::string device_class, ResolveDeviceClass(flags));
  if (flags.Get("device-class", "local") != "local") {
    return Status::InvalidArgument("collect measures this machine: use --device-class local");
  }
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<MeasurementStore> store, OpenStore(flags));
  ACS_ASSIGN_OR_RETURN(int64_t samples, flags.GetInt("samples", 1200));
  ACS_ASSIGN_OR_RETURN(int64_t heldout, flags.GetInt("heldout", 200));
  ACS_ASSIGN_OR_RETURN(int64_t rounds, flags.GetInt("rounds", 2));
  ACS_ASSIGN_OR_RETURN(int64_t round_samples, flags.GetInt("round-samples", 150));
  ACS_ASSIGN_OR_RETURN(int64_t seed, flags.GetInt("seed", 1));
  ACS_ASSIGN_OR_RETURN(std::vector<int> threads, ParseIntList("threads", flags.Get("threads", "1,2")));
  if (samples < 0 || heldout < 0 || rounds < 0 || round_samples < 0) {
    return Status::InvalidArgument("--samples, --heldout, --rounds and --round-samples must be >= 0");
  }
  worker::KernelMeasureOptions options;
  options.measure.warmup = 2;
  ACS_ASSIGN_OR_RETURN(options.measure.min_seconds, flags.GetDouble("min-seconds", 0.05));
  ACS_ASSIGN_OR_RETURN(int64_t min_repeats, flags.GetInt("min-repeats", 7));
  options.measure.min_repeats = static_cast<int>(std::max<int64_t>(1, min_repeats));

  const auto t0 = std::chrono::steady_clock::now();
  std::printf("device class %s, store %s\n", device_class.c_str(), flags.Get("store", "data/predictors.db").c_str());
  // Roofline figures of this machine, once per thread count.
  nlohmann::json device = measure::DetectDeviceClass({1, runtime::RuntimeVersion()}).ToJson();
  device["roofline"] = nlohmann::json::array();
  for (int t : threads) {
    ACS_ASSIGN_OR_RETURN(worker::RooflineProbe p, worker::ProbeRoofline(t));
    device["roofline"].push_back(predictors::RooflinePoint{t, p.peak_gflops, p.bandwidth_gbs}.ToJson());
    std::printf("roofline at %d thread(s): %.1f GFLOP/s peak, %.1f GB/s copy\n", t, p.peak_gflops, p.bandwidth_gbs);
  }
  ACS_RETURN_IF_ERROR(store->PutDevice(device_class, device.dump()));

  predictors::SampleSpace space;
  space.threads = threads;
  predictors::ShapePrior prior = predictors::ShapePrior::Builtin();
  predictors::KernelSampler sampler(prior, space, static_cast<uint64_t>(seed));
  predictors::KernelSampler heldout_sampler(prior, space, static_cast<uint64_t>(seed) + 1000003);
  ACS_ASSIGN_OR_RETURN(int stored, MeasureAndStore(*store, device_class, sampler.Sample(static_cast<int>(samples)),
                                                   "initial", options));
  ACS_ASSIGN_OR_RETURN(int stored_heldout,
                       MeasureAndStore(*store, device_class, heldout_sampler.Sample(static_cast<int>(heldout)),
                                       "heldout", options));
  for (int64_t r = 1; r <= rounds; ++r) {
    // Train on four fifths of the training kernels, look at the errors on the rest.
    ACS_ASSIGN_OR_RETURN(std::vector<KernelRecord> all, store->Kernels(device_class));
    std::vector<predictors::KernelSample> train, validation;
    for (const KernelRecord& k : all) {
      if (predictors::IsHeldOut(k)) continue;
      (k.id % 5 == 0 ? validation : train).push_back({k.spec, k.median_us});
    }
    if (train.size() < 10 || validation.empty()) break;
    ACS_ASSIGN_OR_RETURN(std::unique_ptr<predictors::XgbLatencyModel> model,
                         predictors::XgbLatencyModel::Train(train));
    ACS_ASSIGN_OR_RETURN(std::vector<double> pred, model->Predict(predictors::SpecsOf(validation)));
    std::vector<double> errors;
    int above = 0;
    for (size_t i = 0; i < pred.size(); ++i) {
      errors.push_back(predictors::RelativeError(pred[i], validation[i].latency_us));
      above += std::abs(errors.back()) > 0.10;
    }
    std::printf("adaptive round %lld: %d of %zu validation kernels above 10%% error\n", static_cast<long long>(r),
                above, validation.size());
    const std::vector<KernelSpec> more = predictors::AdaptiveSamples(
        sampler, predictors::SpecsOf(validation), errors, 0.10, 3, static_cast<int>(round_samples));
    if (more.empty()) break;
    ACS_ASSIGN_OR_RETURN(int n, MeasureAndStore(*store, device_class, more, "adaptive-" + std::to_string(r), options));
    stored += n;
  }
  ACS_RETURN_IF_ERROR(CollectModels(*store, device_class, flags, threads, static_cast<uint64_t>(seed), options.measure));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("stored %d training and %d held-out kernel measurements in %.0f s\n", stored, stored_heldout, s);
  return Status::Ok();
}

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
  std::printf("device class %s: %d training kernels, %d held-out kernels, %d whole-model measurements of %d models\n",
              dc.c_str(), report.train_kernels, report.heldout_kernels, report.model_measurements, report.models);
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
  const predictors::TrainedPredictor& predictor = stored.predictor;
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
  const std::set<std::string> valued = {"store",  "device-class", "samples",     "heldout", "rounds",
                                        "round-samples", "threads", "models",   "input",   "policies",
                                        "calib",  "seed",         "min-seconds", "min-repeats", "json",
                                        "model",  "policy"};
  StatusOr<Flags> flags = ParseFlags(argc, argv, 3, valued, {});
  const std::string command = "predictor " + sub;
  if (!flags.ok()) return Fail(command, flags.status());
  if (!flags->positional.empty()) {
    return Fail(command, Status::InvalidArgument("unexpected argument '" + flags->positional[0] + "'"));
  }
  Status s;
  if (sub == "collect") {
    s = Collect(*flags);
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
