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
#include <map>
#include <optional>
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

// The timing of one round of `passes`: its share of the timed runs and seconds.
measure::MeasureOptions OneRound(measure::MeasureOptions options, int passes) {
  options.min_seconds /= passes;
  options.min_repeats = std::max(1, options.min_repeats / passes);
  return options;
}

// The rounds of one measurement pooled into one; `per_pass` (if given) gets each round's
// figures.
measure::Measurement Pool(const std::vector<measure::Measurement>& rounds, nlohmann::json* per_pass = nullptr) {
  std::vector<double> samples;
  if (per_pass) *per_pass = nlohmann::json::array();
  for (const measure::Measurement& r : rounds) {
    samples.insert(samples.end(), r.samples_us.begin(), r.samples_us.end());
    if (per_pass) per_pass->push_back(measure::ToJson(r, /*with_samples=*/false));
  }
  return measure::Summarize(std::move(samples));
}

// A kernel to measure and the source its record gets ("initial", "heldout", ...).
struct PlannedKernel {
  KernelSpec spec;
  std::string source;
};

std::vector<PlannedKernel> Plan(const std::vector<KernelSpec>& specs, const std::string& source) {
  std::vector<PlannedKernel> out;
  for (const KernelSpec& s : specs) out.push_back({s, source});
  return out;
}

// Measures the specs in `passes` rounds over all of them (each time with a pass's share
// of the timed seconds) and stores them, 25 per transaction, after the last round. The
// host's speed drifts over seconds to minutes; spread over rounds, a slow spell touches
// one round of many specs instead of the whole measurement of a few. A record's timing is
// its pooled samples; record_json keeps the figures of each round under "passes". Specs
// the runtime cannot run are counted and their first error printed; they are not stored.
// Returns the count stored per source.
StatusOr<std::map<std::string, int>> MeasureAndStore(MeasurementStore& store, const std::string& device_class,
                                                     const std::vector<PlannedKernel>& specs,
                                                     const std::string& label, worker::KernelMeasureOptions options,
                                                     int passes) {
  passes = std::max(1, passes);
  options.measure = OneRound(options.measure, passes);
  Progress progress("measuring " + label + " kernels", static_cast<int>(specs.size()) * passes);
  std::vector<std::optional<worker::KernelMeasurement>> first(specs.size());
  std::vector<std::vector<measure::Measurement>> rounds(specs.size());
  std::vector<bool> failed(specs.size(), false);
  int failures = 0;
  std::map<std::string, int> stored;
  std::set<std::string> reported;
  std::vector<KernelRecord> batch;
  for (int p = 0; p < passes; ++p) {
    for (size_t i = 0; i < specs.size(); ++i) {
      if (!failed[i]) {
        StatusOr<worker::KernelMeasurement> m = worker::MeasureKernel(specs[i].spec, options);
        if (!m.ok()) {
          failed[i] = true;
          ++failures;
          const std::string what = StatusCodeName(m.status().code());
          if (reported.insert(what).second) {
            std::fprintf(stderr, "\n  skipped '%s': %s\n", specs[i].spec.Key().c_str(), m.status().message().c_str());
          }
        } else {
          rounds[i].push_back(m->timing);
          if (!first[i]) first[i] = std::move(*m);
        }
      }
      if (p + 1 == passes && !failed[i]) {
        worker::KernelMeasurement& m = *first[i];
        nlohmann::json per_pass;
        m.timing = Pool(rounds[i], &per_pass);
        nlohmann::json record = m.ToJson();
        record["passes"] = std::move(per_pass);
        KernelRecord r;
        r.device_class = device_class;
        r.spec = specs[i].spec;
        r.median_us = m.timing.median_us;
        r.min_us = m.timing.min_us;
        r.iqr_us = m.timing.iqr_us;
        r.repeats = m.timing.repeats;
        r.source = specs[i].source;
        r.record_json = record.dump();
        batch.push_back(std::move(r));
        first[i].reset();
      }
      if (p + 1 == passes && (batch.size() >= 25 || i + 1 == specs.size())) {
        ACS_RETURN_IF_ERROR(store.AddKernels(batch));
        for (const KernelRecord& r : batch) ++stored[r.source];
        batch.clear();
      }
      progress.Update(static_cast<int>(p * specs.size() + i + 1), failures);
    }
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

// Whole models under random policies, prepared (compressed, compiled) first and then timed
// in `passes` rounds over all of them, as the kernels; stored after the last round.
Status CollectModels(MeasurementStore& store, const std::string& device_class, const Flags& flags,
                     const std::vector<int>& threads, uint64_t seed, measure::MeasureOptions timing, int passes) {
  const std::vector<std::string> models = SplitList(flags.Get("models"));
  if (models.empty()) return Status::Ok();
  ACS_ASSIGN_OR_RETURN(std::string shape_text, flags.Required("input"));
  ACS_ASSIGN_OR_RETURN(Shape input, ParseShape(shape_text));
  ACS_ASSIGN_OR_RETURN(int64_t policies, flags.GetInt("policies", 6));
  if (policies < 0) return Status::InvalidArgument("--policies must be >= 0");
  std::mt19937_64 rng(seed * 7919 + 17);
  const int total = static_cast<int>(models.size() * threads.size() * (policies + 1));
  Progress preparing("preparing whole models", total);
  std::vector<worker::PreparedModel> prepared;
  std::vector<ModelRecord> records;
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
        StatusOr<worker::PreparedModel> m = worker::PreparedModel::Prepare(req);
        if (!m.ok()) return Status(m.status().code(), name + ": " + m.status().message());
        prepared.push_back(std::move(*m));
        ModelRecord r;
        r.device_class = device_class;
        r.model = name;
        r.policy_hash = policy.Hash();
        r.policy_json = policy.ToJson(-1);
        r.shape = ModelShapeOf(model->graph, policy, t);
        records.push_back(std::move(r));
        preparing.Update(static_cast<int>(records.size()), 0);
      }
    }
  }
  passes = std::max(1, passes);
  timing = OneRound(timing, passes);
  std::vector<std::vector<worker::ModelMeasurement>> rounds(prepared.size());
  Progress progress("measuring whole models", total * passes);
  for (int p = 0; p < passes; ++p) {
    for (size_t i = 0; i < prepared.size(); ++i) {
      StatusOr<worker::ModelMeasurement> m = prepared[i].Time(timing);
      if (!m.ok()) return Status(m.status().code(), records[i].model + ": " + m.status().message());
      rounds[i].push_back(std::move(*m));
      progress.Update(static_cast<int>(p * prepared.size() + i + 1), 0);
    }
  }
  for (size_t i = 0; i < prepared.size(); ++i) {
    std::vector<measure::Measurement> runtime, dense, dense_plain;
    for (const worker::ModelMeasurement& m : rounds[i]) {
      runtime.push_back(m.runtime);
      dense.push_back(m.dense);
      dense_plain.push_back(m.dense_plain);
    }
    worker::ModelMeasurement pooled = rounds[i].front();
    nlohmann::json per_pass;
    pooled.runtime = Pool(runtime, &per_pass);
    pooled.dense = Pool(dense);
    pooled.dense_plain = Pool(dense_plain);
    nlohmann::json record = pooled.ToJson();
    record["passes"] = std::move(per_pass);
    ModelRecord& r = records[i];
    r.median_us = pooled.runtime.median_us;
    r.min_us = pooled.runtime.min_us;
    r.iqr_us = pooled.runtime.iqr_us;
    r.record_json = record.dump();
    ACS_RETURN_IF_ERROR(store.AddModel(r));
  }
  return Status::Ok();
}

// The kernels of --layers-of models' layers under GridPolicies of the default search
// space, at each thread count (source "job", as the server's jobs measure them).
StatusOr<std::vector<PlannedKernel>> LayersOf(const Flags& flags, const std::vector<int>& threads) {
  std::vector<PlannedKernel> out;
  const std::vector<std::string> models = SplitList(flags.Get("layers-of"));
  if (models.empty()) return out;
  ACS_ASSIGN_OR_RETURN(std::string shape_text, flags.Required("input"));
  ACS_ASSIGN_OR_RETURN(Shape input, ParseShape(shape_text));
  for (const std::string& path : models) {
    ACS_ASSIGN_OR_RETURN(std::shared_ptr<ImportedModel> model, ImportTorchScript(path, ImportOptions{input}));
    for (int t : threads) {
      for (const KernelSpec& spec : LayerSpecsOf(model->graph, GridPolicies(model->graph, SearchSpace{}), t)) {
        out.push_back({spec, "job"});
      }
    }
  }
  return out;
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
  ACS_ASSIGN_OR_RETURN(int64_t passes_flag, flags.GetInt("passes", 16));
  if (passes_flag < 1 || passes_flag > 100) return Status::InvalidArgument("--passes must be between 1 and 100");
  const int passes = static_cast<int>(passes_flag);

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
  // Training and held-out kernels in one sweep, the held-out ones spread evenly through it:
  // both see the same state of the host.
  const std::vector<KernelSpec> heldout_specs = heldout_sampler.Sample(static_cast<int>(heldout));
  std::vector<PlannedKernel> first_sweep = Plan(sampler.Sample(static_cast<int>(samples)), "initial");
  for (size_t h = 0; h < heldout_specs.size(); ++h) {
    const size_t at = (h + 1) * first_sweep.size() / (heldout_specs.size() + 1) + h;
    first_sweep.insert(first_sweep.begin() + static_cast<std::ptrdiff_t>(std::min(at, first_sweep.size())),
                       {heldout_specs[h], predictors::kHeldOutSource});
  }
  ACS_ASSIGN_OR_RETURN(std::vector<PlannedKernel> own_layers, LayersOf(flags, threads));
  first_sweep.insert(first_sweep.end(), own_layers.begin(), own_layers.end());
  ACS_ASSIGN_OR_RETURN(auto first_counts,
                       MeasureAndStore(*store, device_class, first_sweep, "initial and held-out", options, passes));
  if (!own_layers.empty()) std::printf("stored %d kernels of the models' own layers\n", first_counts["job"]);
  int stored = first_counts["initial"];
  const int stored_heldout = first_counts[predictors::kHeldOutSource];
  for (int64_t r = 1; r <= rounds; ++r) {
    // Train on four fifths of the training kernels, look at the errors on the rest.
    ACS_ASSIGN_OR_RETURN(std::vector<KernelRecord> all, store->Kernels(device_class));
    std::vector<predictors::KernelSample> train, validation;
    for (const KernelRecord& k : all) {
      if (predictors::RoleOf(k) != predictors::KernelRole::kTraining) continue;
      (k.id % 5 == 0 ? validation : train).push_back({k.spec, predictors::LabelUs(k)});
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
    const std::string source = "adaptive-" + std::to_string(r);
    ACS_ASSIGN_OR_RETURN(auto n, MeasureAndStore(*store, device_class, Plan(more, source), source, options, passes));
    stored += n[source];
  }
  // The held-out kernels once more, minutes later: the noise floor of `eval`.
  ACS_ASSIGN_OR_RETURN(auto repeated, MeasureAndStore(*store, device_class,
                                                      Plan(heldout_specs, predictors::kRepeatSource), "repeat",
                                                      options, passes));
  ACS_RETURN_IF_ERROR(
      CollectModels(*store, device_class, flags, threads, static_cast<uint64_t>(seed), options.measure, passes));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("stored %d training, %d held-out and %d repeated kernel measurements in %.0f s\n", stored,
              stored_heldout, repeated[predictors::kRepeatSource], s);
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
