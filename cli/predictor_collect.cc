// acs predictor collect: kernels (sampled, held out, repeated, adaptive rounds, the layers
// of given models) and whole models measured on this machine by the harness, in rounds
// over all of them, and stored for the device class.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agents/latency_cost.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
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

}  // namespace

Status PredictorCollect(const Flags& flags) {
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

}  // namespace acs::cli
