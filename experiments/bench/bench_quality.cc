// bench_quality: what a user gets from a latency search, end to end (issue 13). For each
// model, latency budget, agent and seed: a search at the same number of evaluated policies
// (anchored as a job anchors it: search_anchor.h), its best policy recovered as a job's
// export recovers it (fine-tuning with distillation from the dense model, int8 layers
// quantization-aware) and tested on the whole test split (10,000 Fashion-MNIST images),
// then timed alternately with the strongest dense baseline (frozen + optimized for
// inference) in --processes fresh processes, all of a model's best policies in the same
// rounds (the median over processes of each one's median ratio, as a job verifies).
// Summary: per model the largest measured speedup within 0.5 and 0.1 point of the dense
// model's test top-1 (targets 2.5x and 1.8x), and per model and budget each agent's mean
// test top-1 over seeds, amc / agmc against random / evo (target: 1 point above).
//
//   bench_quality [--models vgg,resnet20,mobilenetv2,tv_resnet18,tv_mobilenet_v2] [--zoo DIR]
//                 [--agents amc,agmc,random,evo] [--seeds 1,2,3] [--budgets 0.5,0.35]
//                 [--episodes 60] [--fine-tune-epochs 3] [--fine-tune-samples 5000]
//                 [--passes 8] [--processes 3] [--threads 1] [--data DIR] [--store data/predictors.db]
//                 [--device-class local|ID] [--train-tv] [--tv-epochs 2] [--tv-train-samples 20000]
//                 [--json data/bench/quality.json]
//
// A model is a zoo name (tv_* at 1x3x32x32, the others at 1x1x28x28) or PATH@SHAPE. The
// zoo's own models come from `acs-zoo train` (docs/zoo.md); the torchvision ones from
// experiments/zoo/train_torchvision.py, which --train-tv runs first for each tv_* model.
// The store needs a latency predictor trained on the models' layers, as for bench_onpolicy.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/search_session.h"
#include "core/flags.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/quality_summary.h"
#include "experiments/bench/search_anchor.h"

#ifndef ACS_SOURCE_DIR
#define ACS_SOURCE_DIR "."
#endif

namespace acs::bench {
namespace {

namespace fs = std::filesystem;

struct Args {
  std::vector<ModelArg> models;  // default: the zoo's three and the two torchvision models
  std::vector<std::string> agents = {"amc", "agmc", "random", "evo"};
  std::vector<uint64_t> seeds = {1, 2, 3};
  std::vector<double> budgets = {0.5, 0.35};  // latency, share of the dense baseline's
  int episodes = 60;                          // evaluated policies per search, every agent alike
  int fine_tune_epochs = 3;                   // recovery, as a job's (SchedulerOptions); 0: none
  int64_t fine_tune_samples = 5000;           // after calibration and validation, as a job's
  int passes = 8;                             // timing rounds over a model's policies
  int processes = TimingOptions{}.processes;  // fresh processes timing them, medians over them
  int threads = 1;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string store = std::string(ACS_SOURCE_DIR) + "/data/predictors.db";
  std::string device_class = "local";
  bool train_tv = false;  // run experiments/zoo/train_torchvision.py for each tv_* model first
  int tv_epochs = 2;      // its --epochs and --train-samples (the Makefile's bench-onpolicy)
  int tv_train_samples = 20000;
  std::string json = std::string(ACS_SOURCE_DIR) + "/data/bench/quality.json";
};

const char kUsage[] =
    "usage: bench_quality [--models NAME|PATH@SHAPE,...] [--zoo DIR] [--agents A,...] [--seeds S,...]\n"
    "                     [--budgets R,...] [--episodes N] [--fine-tune-epochs E] [--fine-tune-samples N]\n"
    "                     [--passes P] [--processes N] [--threads T] [--data DIR] [--store PATH] [--device-class ID]\n"
    "                     [--train-tv] [--tv-epochs E] [--tv-train-samples N] [--json PATH]\n"
    "  default models: vgg,resnet20,mobilenetv2 (1x1x28x28), tv_resnet18,tv_mobilenet_v2 (1x3x32x32)\n";

[[noreturn]] void Usage(const std::string& problem) { ExitBadUsage("bench_quality", problem, kUsage); }

bool IsTorchvision(const ModelArg& m) { return m.name().rfind("tv_", 0) == 0; }

// Zoo names become DIR/NAME.pt at the zoo's input shape; PATH@SHAPE entries stay.
std::vector<ModelArg> ResolveModels(const std::string& list, const std::string& zoo) {
  std::vector<ModelArg> models;
  for (const std::string& entry : SplitList(list)) {
    if (entry.find('@') != std::string::npos) {
      StatusOr<std::vector<ModelArg>> parsed = ParseModelArgs(entry);
      if (!parsed.ok()) Usage(parsed.status().message());
      models.push_back(parsed->front());
      continue;
    }
    const bool tv = entry.rfind("tv_", 0) == 0;
    models.push_back({zoo + "/" + entry + ".pt", tv ? Shape{1, 3, 32, 32} : Shape{1, 1, 28, 28}});
  }
  if (models.empty()) Usage("--models is empty");
  return models;
}

Args ParseArgs(int argc, char** argv) {
  auto flags = ParseFlags(
      argc, argv, 1,
      {"models", "zoo", "agents", "seeds", "budgets", "episodes", "fine-tune-epochs", "fine-tune-samples", "passes",
       "processes", "threads", "data", "store", "device-class", "tv-epochs", "tv-train-samples", "json"},
      {"help", "train-tv"});
  if (!flags.ok()) Usage(flags.status().message());
  if (flags->Has("help")) {
    std::printf("%s", kUsage);
    std::exit(0);
  }
  Args a;
  auto integer = [&](const char* name, int64_t fallback) {
    StatusOr<int64_t> v = flags->GetInt(name, fallback);
    if (!v.ok()) Usage(v.status().message());
    return *v;
  };
  a.models = ResolveModels(flags->Get("models", "vgg,resnet20,mobilenetv2,tv_resnet18,tv_mobilenet_v2"),
                           flags->Get("zoo", std::string(ACS_SOURCE_DIR) + "/data/zoo"));
  if (flags->Has("agents")) a.agents = SplitList(flags->Get("agents"));
  if (flags->Has("seeds")) {
    a.seeds.clear();
    for (const std::string& s : SplitList(flags->Get("seeds"))) {
      a.seeds.push_back(std::strtoull(s.c_str(), nullptr, 10));
    }
  }
  if (flags->Has("budgets")) {
    a.budgets.clear();
    for (const std::string& b : SplitList(flags->Get("budgets"))) {
      a.budgets.push_back(std::strtod(b.c_str(), nullptr));
      if (!(a.budgets.back() > 0 && a.budgets.back() <= 1)) Usage("--budgets are in (0, 1], got '" + b + "'");
    }
  }
  a.episodes = static_cast<int>(integer("episodes", a.episodes));
  a.fine_tune_epochs = static_cast<int>(integer("fine-tune-epochs", a.fine_tune_epochs));
  a.fine_tune_samples = integer("fine-tune-samples", a.fine_tune_samples);
  a.passes = static_cast<int>(integer("passes", a.passes));
  a.processes = static_cast<int>(integer("processes", a.processes));
  a.threads = static_cast<int>(integer("threads", a.threads));
  a.data = flags->Get("data", a.data);
  a.store = flags->Get("store", a.store);
  a.device_class = flags->Get("device-class", a.device_class);
  a.train_tv = flags->Has("train-tv");
  a.tv_epochs = static_cast<int>(integer("tv-epochs", a.tv_epochs));
  a.tv_train_samples = static_cast<int>(integer("tv-train-samples", a.tv_train_samples));
  a.json = flags->Get("json", a.json);
  if (a.agents.empty() || a.seeds.empty() || a.budgets.empty() || a.episodes < 1 || a.fine_tune_epochs < 0 ||
      a.fine_tune_samples < 1 || a.passes < 1 || a.processes < 1 || a.threads < 1 || a.tv_epochs < 1 ||
      a.tv_train_samples < 1) {
    Usage(
        "need agents, seeds and budgets; --episodes, --passes, --processes, --threads, --tv-* >= 1; --fine-tune-epochs "
        ">= 0");
  }
  return a;
}

// Trains each torchvision model of the list with Python, as a PyTorch user trains it
// (overwriting it); ends the program when the script fails.
void TrainTorchvision(const Args& args) {
  for (const ModelArg& m : args.models) {
    if (!IsTorchvision(m)) continue;
    const std::string command =
        "/usr/bin/python3 " + std::string(ACS_SOURCE_DIR) + "/experiments/zoo/train_torchvision.py --model " +
        m.name().substr(3) + " --out " + fs::path(m.path).parent_path().string() + " --data " + args.data +
        " --epochs " + std::to_string(args.tv_epochs) + " --train-samples " + std::to_string(args.tv_train_samples);
    std::printf("training %s: %s\n", m.name().c_str(), command.c_str());
    std::fflush(stdout);
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "bench_quality: training %s failed\n", m.name().c_str());
      std::exit(1);
    }
  }
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One search of `o` and its best policy exported (recovered and tested) as a job exports
// it; the run without its timing.
QualityRun SearchAndRecover(const SearchSessionOptions& o, const std::string& model) {
  QualityRun run;
  run.model = model;
  run.agent = o.agent;
  run.budget = o.budget_ratio;
  run.seed = o.seed;
  StatusOr<std::unique_ptr<SearchSession>> created = SearchSession::Create(o);
  if (!created.ok()) {
    run.skipped = created.status().ToString();
    return run;
  }
  std::unique_ptr<SearchSession> session = std::move(created).value();
  auto start = std::chrono::steady_clock::now();
  OrDie(session->Run(nullptr), model + " " + o.agent + " search");
  run.search_seconds = SecondsSince(start);
  run.episodes = static_cast<int>(session->episodes().size());
  if (session->best() < 0) {
    run.skipped = "no policy within the budget";
    return run;
  }
  const EpisodeRecord& best = session->episodes()[session->best()];
  run.policy = best.policy;
  run.validation_top1 = best.score.accuracy;
  run.predicted_ratio = session->PredictedUs(best.policy) / session->latency()->dense_us;
  const fs::path dir = fs::temp_directory_path() / ("bench_quality_" + std::to_string(getpid()));
  start = std::chrono::steady_clock::now();
  const ExportedSearch exported = OrDie(session->Export(best.policy, dir.string()), model + " export");
  run.export_seconds = SecondsSince(start);
  std::error_code ec;
  fs::remove_all(dir, ec);
  run.test_top1 = exported.test_accuracy;
  run.dense_test_top1 = exported.dense_test_accuracy;
  run.test_samples = exported.test_samples;
  run.fine_tune_kept_epoch = exported.fine_tune_kept_epoch;
  return run;
}

// Every run of one model; its best policies timed together (TimingOptions).
void BenchModel(const Args& args, const LoadedPredictor& predictor, const ModelArg& model,
                std::vector<QualityRun>* runs, nlohmann::json* out) {
  const TimingOptions timing{args.passes, args.threads, args.data, args.processes};
  const AnchoredModel anchored = AnchorModel(timing, predictor.predictor, model, /*probes=*/true);
  const size_t first = runs->size();
  for (double budget : args.budgets) {
    for (const std::string& agent : args.agents) {
      for (uint64_t seed : args.seeds) {
        SearchSessionOptions o = anchored.options;
        o.budget_ratio = budget;
        o.agent = agent;
        o.seed = seed;
        o.episodes = args.episodes;
        o.fine_tune_epochs = args.fine_tune_epochs;
        o.fine_tune_samples = args.fine_tune_samples;
        o.test_data_path = args.data;
        runs->push_back(SearchAndRecover(o, model.name()));
        const QualityRun& r = runs->back();
        std::printf("  %s %.2fx %s seed %llu: ", r.model.c_str(), budget, agent.c_str(),
                    static_cast<unsigned long long>(seed));
        if (r.ran()) {
          std::printf("searched %.0f s, recovered %.0f s, test top-1 %.2f%%\n", r.search_seconds, r.export_seconds,
                      100 * r.test_top1);
        } else {
          std::printf("skipped: %s\n", r.skipped.c_str());
        }
        std::fflush(stdout);
      }
    }
  }
  std::vector<Policy> policies;
  std::vector<QualityRun*> timed;
  for (size_t i = first; i < runs->size(); ++i) {
    if (!(*runs)[i].ran()) continue;
    policies.push_back((*runs)[i].policy);
    timed.push_back(&(*runs)[i]);
  }
  if (!policies.empty()) {
    const std::vector<PolicyTiming> timings = TimeInRounds(timing, model, policies);
    for (size_t i = 0; i < timed.size(); ++i) timed[i]->measured_ratio = timings[i].median_ratio();
  }
  *out = {{"model", model.name()},
          {"path", model.path},
          {"input", model.input},
          {"dense_min_us", anchored.dense.dense_min_us},
          {"uncompressed_ratio", anchored.dense.median_ratio()}};
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  if (args.train_tv) TrainTorchvision(args);
  for (const ModelArg& m : args.models) {
    if (!fs::exists(m.path)) {
      std::fprintf(stderr, "bench_quality: %s missing; %s\n", m.path.c_str(),
                   IsTorchvision(m) ? "pass --train-tv to train it" : "train it with `acs-zoo train` (docs/zoo.md)");
      return 1;
    }
  }
  const LoadedPredictor predictor = LoadPredictorOrDie("bench_quality", args.store, args.device_class);
  std::printf(
      "latency predictor v%lld of %s; %zu models x %zu budgets x %zu agents x %zu seeds, %d episodes, "
      "recovery %d epochs on %lld samples\n",
      static_cast<long long>(predictor.version), predictor.device_class.c_str(), args.models.size(),
      args.budgets.size(), args.agents.size(), args.seeds.size(), args.episodes, args.fine_tune_epochs,
      static_cast<long long>(args.fine_tune_samples));
  std::vector<QualityRun> runs;
  nlohmann::json out = {{"models", nlohmann::json::array()}};
  for (const ModelArg& m : args.models) {
    nlohmann::json model_json;
    BenchModel(args, predictor, m, &runs, &model_json);
    out["models"].push_back(model_json);
  }
  std::printf("\n");
  PrintRunHeader();
  nlohmann::json run_json = nlohmann::json::array();
  for (const QualityRun& r : runs) {
    PrintRun(r);
    run_json.push_back(r.ToJson());
  }
  out["runs"] = run_json;
  out["summary"] = PrintSummary(runs);
  out["device_class"] = predictor.device_class;
  out["predictor_version"] = predictor.version;
  out["agents"] = args.agents;
  out["seeds"] = args.seeds;
  out["budgets"] = args.budgets;
  out["episodes"] = args.episodes;
  out["fine_tune_epochs"] = args.fine_tune_epochs;
  out["fine_tune_samples"] = args.fine_tune_samples;
  out["passes"] = args.passes;
  out["processes"] = args.processes;
  out["threads"] = args.threads;
  if (!args.json.empty() && !WriteJsonFile(args.json, out)) return 1;
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
