// bench_search: the search agents on the zoo models (data/zoo: vgg, resnet20,
// mobilenetv2; input 1x1x28x28) at a latency budget (the device class's trained predictor
// from the store, as `acs search --budget latency=R`) or a FLOPs budget (--cost flops).
// Every agent gets the same episodes on
// the same reward (validation accuracy after compression, as `acs search` scores it) for
// each seed; the table gives, per model and agent, the mean and sample standard deviation
// over seeds of the best validation accuracy found, the test accuracy of that best
// policy, and the seconds per episode (scoring included; the reward cache is per run).
//
//   bench_search [--zoo DIR] [--data DIR] [--models vgg,resnet20,mobilenetv2]
//                [--agents uniform,random,evo,amc,agmc] [--episodes 100] [--seeds 1,2,3]
//                [--budget 0.5] [--cost latency|flops] [--store data/predictors.db]
//                [--device-class local|ID] [--threads 1] [--warmup N] [--calib-samples N]
//                [--val-samples N] [--test-samples 1000] [--recon-images N] [--recon-columns N]
//                [--json PATH]
//
// Calibration and validation are disjoint slices of the training split, as in
// `acs search`; the test accuracy uses the first --test-samples of the test split.
// --recon-images sets the calibration images of the reward's least-squares reconstruction
// (0 turns it off) and --recon-columns the output positions it samples per layer; the
// defaults are those of SearchCompressorOptions(). --profile-reward N instead times the
// reward of N random policies of each model under a few compressor settings, alternately.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/baselines.h"
#include "agents/latency_cost.h"
#include "agents/make_agent.h"
#include "agents/search.h"
#include "core/compressor.h"
#include "core/dataset.h"
#include "core/evaluator.h"
#include "core/flags.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/runtime/runtime.h"
#include "experiments/bench/bench_common.h"

#ifndef ACS_SOURCE_DIR
#define ACS_SOURCE_DIR "."
#endif

namespace acs::bench {
namespace {

struct Args {
  std::string zoo = std::string(ACS_SOURCE_DIR) + "/data/zoo";
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::vector<std::string> models = {"vgg", "resnet20", "mobilenetv2"};
  std::vector<std::string> agents = {"uniform", "random", "evo", "amc", "agmc"};
  int episodes = 100;
  std::vector<uint64_t> seeds = {1, 2, 3};
  double budget = 0.5;
  std::string cost = "latency";  // or "flops"
  std::string store = std::string(ACS_SOURCE_DIR) + "/data/predictors.db";
  std::string device_class = "local";
  int threads = 1;  // of the predicted latency
  int warmup = DdpgOptions().warmup_episodes;  // capped at a quarter of the episodes
  int64_t calib_samples = 256;
  int64_t val_samples = 500;
  int64_t test_samples = 1000;
  int64_t recon_images = AccuracyRewardOptions().compressor.reconstruction_images;  // 0: no reconstruction
  int64_t recon_columns = AccuracyRewardOptions().compressor.reconstruction_columns;
  std::string json = std::string(ACS_SOURCE_DIR) + "/data/bench/bench_search.json";
  int profile = 0;  // > 0: only time the reward of this many random policies per variant
};

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
  return out;
}

const char kUsage[] =
    "usage: bench_search [--zoo DIR] [--data DIR] [--models vgg,resnet20,mobilenetv2]\n"
    "                    [--agents uniform,random,evo,amc,agmc] [--episodes N] [--seeds 1,2,3]\n"
    "                    [--budget R] [--cost latency|flops] [--store PATH] [--device-class ID]\n"
    "                    [--threads T] [--warmup N] [--calib-samples N] [--val-samples N]\n"
    "                    [--test-samples N] [--recon-images N] [--recon-columns N] [--json PATH]\n"
    "                    [--profile-reward N]\n";

Args ParseArgs(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv, 1,
                          {"zoo", "data", "models", "agents", "episodes", "seeds", "budget", "cost", "store",
                           "device-class", "threads", "warmup", "calib-samples",
                           "val-samples", "test-samples", "recon-images", "recon-columns", "json", "profile-reward"},
                          {"help"});
  if (!flags.ok() || flags->Has("help")) {
    if (!flags.ok()) std::fprintf(stderr, "%s\n", flags.status().ToString().c_str());
    std::fprintf(flags.ok() ? stdout : stderr, "%s", kUsage);
    std::exit(flags.ok() ? 0 : 2);
  }
  Args a;
  auto integer = [&](const std::string& name, int64_t fallback) {
    auto v = flags->GetInt(name, fallback);
    if (!v.ok()) {
      std::fprintf(stderr, "%s\n%s", v.status().ToString().c_str(), kUsage);
      std::exit(2);
    }
    return *v;
  };
  a.zoo = flags->Get("zoo", a.zoo);
  a.data = flags->Get("data", a.data);
  if (flags->Has("models")) a.models = Split(flags->Get("models"));
  if (flags->Has("agents")) a.agents = Split(flags->Get("agents"));
  if (flags->Has("seeds")) {
    a.seeds.clear();
    for (const std::string& s : Split(flags->Get("seeds"))) a.seeds.push_back(static_cast<uint64_t>(std::atoll(s.c_str())));
  }
  auto budget = flags->GetDouble("budget", a.budget);
  a.budget = budget.ok() ? *budget : -1;
  a.cost = flags->Get("cost", a.cost);
  a.store = flags->Get("store", a.store);
  a.device_class = flags->Get("device-class", a.device_class);
  a.threads = static_cast<int>(integer("threads", a.threads));
  a.episodes = static_cast<int>(integer("episodes", a.episodes));
  a.warmup = static_cast<int>(integer("warmup", a.warmup));
  a.calib_samples = integer("calib-samples", a.calib_samples);
  a.val_samples = integer("val-samples", a.val_samples);
  a.test_samples = integer("test-samples", a.test_samples);
  a.recon_images = integer("recon-images", a.recon_images);
  a.recon_columns = integer("recon-columns", a.recon_columns);
  a.profile = static_cast<int>(integer("profile-reward", a.profile));
  a.json = flags->Get("json", a.json);
  if (a.episodes < 1 || a.seeds.empty() || a.val_samples < 1 || a.calib_samples < 0 ||
      !(a.budget > 0 && a.budget <= 1) || (a.cost != "latency" && a.cost != "flops") || a.threads < 1) {
    std::fprintf(stderr,
                 "need --episodes >= 1, a seed, --val-samples >= 1, --calib-samples >= 0, --budget in (0, 1],\n"
                 "--cost latency or flops, --threads >= 1\n%s",
                 kUsage);
    std::exit(2);
  }
  return a;
}

struct Run {
  std::string model, agent;
  uint64_t seed = 0;
  double best_accuracy = 0, test_accuracy = -1, cost_ratio = 0, seconds_per_episode = 0;
  int best_episode = 0;
  int64_t cache_hits = 0;
  std::vector<double> accuracies;  // of every episode, in order
};

struct Stats {
  double mean = 0, sd = 0, min = 0, max = 0;
};

Stats Summarize(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (double x : v) s.mean += x / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

nlohmann::json ToJson(const Stats& s) { return {{"mean", s.mean}, {"sd", s.sd}, {"min", s.min}, {"max", s.max}}; }

AccuracyRewardOptions RewardOptions(const Args& args) {
  AccuracyRewardOptions options;
  options.compressor.reconstruct = args.recon_images > 0;
  if (args.recon_images > 0) options.compressor.reconstruction_images = args.recon_images;
  options.compressor.reconstruction_columns = args.recon_columns;
  return options;
}

// Test accuracy of `policy` compressed as the reward compresses it.
double TestAccuracy(const Args& args, const ImportedModel& model, const Policy& policy, const Dataset& calib,
                    const Dataset& test) {
  if (test.size() == 0) return -1;
  CompressorOptions options = RewardOptions(args).compressor;
  options.calibration = calib.images;
  CompressedModel compressed = OrDie(Compress(model, policy, options), "compress");
  ModelFn fn = [&compressed](const torch::Tensor& batch) {
    torch::NoGradGuard no_grad;
    return compressed.module.forward({batch}).toTensor();
  };
  return OrDie(EvaluateAccuracy(fn, test), "evaluate").top1;
}

// Seconds per reward evaluation and mean accuracy of the same random policies under
// compressor settings that trade accuracy for speed, timed round-robin.
void ProfileReward(const Args& args, const ImportedModel& model, Env& env, const Dataset& calib, const Dataset& val) {
  struct Variant {
    std::string name;
    CompressorOptions options;
    double seconds = 0, accuracy = 0;
  };
  std::vector<Variant> variants;
  auto add = [&](const std::string& name, bool reconstruct, int64_t images, int64_t columns) {
    Variant v{name, SearchCompressorOptions()};
    v.options.reconstruct = reconstruct;
    v.options.reconstruction_images = images;
    v.options.reconstruction_columns = columns;
    variants.push_back(v);
  };
  add("export (64 images, 4096 columns)", true, 64, 4096);
  add("64 images, 2048 columns", true, 64, 2048);
  add("64 images, 1024 columns", true, 64, 1024);
  add("32 images, 1024 columns", true, 32, 1024);
  add("no reconstruction", false, 64, 4096);
  RandomAgent agent(1);
  for (int p = 0; p < args.profile; ++p) {
    std::vector<double> state = env.Reset();
    agent.BeginEpisode(env.num_steps(), kActionDim);
    for (bool done = false; !done;) {
      Env::StepResult step = env.Step(agent.Act(state));
      done = step.done;
      state = step.next_state;
    }
    for (Variant& v : variants) {
      AccuracyRewardOptions options;
      options.compressor = v.options;
      AccuracyReward reward(&model, calib, val, options);
      const auto start = std::chrono::steady_clock::now();
      const Score score = OrDie(reward.Evaluate(env.policy(), 0), "reward");
      v.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / args.profile;
      v.accuracy += 100 * score.accuracy / args.profile;
    }
  }
  for (const Variant& v : variants) {
    std::printf("  %-34s %6.3f s/evaluation  mean accuracy %.2f%%\n", v.name.c_str(), v.seconds, v.accuracy);
  }
}

// `predictor` null: FLOPs budget; else the latency budget it predicts.
void BenchModel(const Args& args, const predictors::TrainedPredictor* predictor, const std::string& name,
                const Dataset& train, const Dataset& test, std::vector<Run>* runs, nlohmann::json* model_json) {
  const std::string path = args.zoo + "/" + name + ".pt";
  if (!std::filesystem::exists(path)) {
    std::printf("%-12s skipped: %s does not exist (train it with experiments/zoo)\n", name.c_str(), path.c_str());
    return;
  }
  const auto model = OrDie(ImportTorchScript(path, ImportOptions{{1, 1, 28, 28}}), name);
  EnvOptions env_options;
  env_options.budget = args.budget;
  std::shared_ptr<const CostModel> cost;
  std::optional<LatencyBudget> latency;
  // A budget the model cannot meet skips the model (printed, kept in the JSON).
  auto skip = [&](const Status& why) {
    std::printf("%-12s skipped: %s\n", name.c_str(), why.message().c_str());
    *model_json = {{"model", name}, {"skipped", why.message()}};
  };
  if (predictor) {
    StatusOr<LatencyBudget> lb = MakeLatencyBudget(model->graph, *predictor, args.threads, args.budget);
    if (!lb.ok()) return skip(lb.status());
    latency = *lb;
    cost = latency->cost;
    env_options.budget = latency->env_budget;
    std::printf("%-12s predicted dense latency %.1f us at %d thread(s), %.1f us of it overhead outside the layers:\n"
                "%-12s the layers get %.3fx of their dense latency\n",
                name.c_str(), latency->dense_us, args.threads, latency->overhead_us, "", latency->env_budget);
  } else {
    cost = OrDie(MakeCostModel("flops"), "cost");
  }
  StatusOr<std::unique_ptr<Env>> created = Env::Create(&model->graph, cost, env_options);
  if (!created.ok()) return skip(created.status());
  std::unique_ptr<Env> env = std::move(created).value();
  const int64_t c = std::min(args.calib_samples, train.size());
  Dataset calib{train.images.slice(0, 0, c), {}, "calibration"};
  Dataset val{train.images.slice(0, c, train.size()), train.labels.slice(0, c, train.size()), "validation"};
  const double dense_val = OrDie(AccuracyReward(model.get(), calib, val).DenseAccuracy(), "dense accuracy");
  const double dense_test = TestAccuracy(args, *model, Policy(), calib, test);
  std::printf("%-12s %d layers searched, dense validation %.2f%%, test %.2f%%\n", name.c_str(), env->num_steps(),
              100 * dense_val, 100 * dense_test);
  if (args.profile > 0) return ProfileReward(args, *model, *env, calib, val);
  *model_json = {{"model", name}, {"layers_searched", env->num_steps()}, {"dense_validation_accuracy", dense_val},
                 {"dense_test_accuracy", dense_test}, {"min_cost_ratio", env->min_cost() / env->dense_cost()}};
  if (latency) {
    (*model_json)["predicted_dense_us"] = latency->dense_us;
    (*model_json)["predicted_overhead_us"] = latency->overhead_us;
  }
  for (const std::string& agent_name : args.agents) {
    for (uint64_t seed : args.seeds) {
      AgentOptions agent_options;
      agent_options.episodes = args.episodes;
      agent_options.ddpg.warmup_episodes = args.warmup;
      auto agent = OrDie(MakeAgent(agent_name, seed, *env, agent_options), agent_name);
      AccuracyReward reward(model.get(), calib, val, RewardOptions(args));
      SearchOptions options;
      options.episodes = args.episodes;
      const SearchResult result = OrDie(RunSearch(*env, *agent, reward, options), agent_name);
      const EpisodeRecord& best = result.episodes[result.best];
      Run r;
      r.model = name;
      r.agent = agent_name;
      r.seed = seed;
      r.best_accuracy = best.score.accuracy;
      r.best_episode = best.episode;
      // Whole-model ratio: with latency the per-model overhead counts too.
      r.cost_ratio = latency ? latency->PredictUs(model->graph, best.policy) / latency->dense_us : best.cost_ratio;
      double seconds = 0;
      for (const EpisodeRecord& e : result.episodes) seconds += e.seconds;
      r.seconds_per_episode = seconds / static_cast<double>(result.episodes.size());
      r.cache_hits = reward.cache_hits();
      for (const EpisodeRecord& e : result.episodes) r.accuracies.push_back(e.score.accuracy);
      r.test_accuracy = TestAccuracy(args, *model, best.policy, calib, test);
      std::fprintf(stderr, "  %s %s seed %llu: best %.2f%% (episode %d, %.3fx %s), test %.2f%%, %.2f s/episode\n",
                   name.c_str(), agent_name.c_str(), static_cast<unsigned long long>(seed), 100 * r.best_accuracy,
                   r.best_episode + 1, r.cost_ratio, cost->name().c_str(), 100 * r.test_accuracy,
                   r.seconds_per_episode);
      runs->push_back(r);
    }
  }
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  DatasetOptions train_options;
  train_options.split = "train";
  train_options.limit = args.calib_samples + args.val_samples;
  const Dataset train = OrDie(LoadDataset(args.data, train_options), "training data");
  DatasetOptions test_options;
  test_options.limit = args.test_samples;
  const Dataset test = args.test_samples > 0 ? OrDie(LoadDataset(args.data, test_options), "test data") : Dataset{};
  // The latency budget's predictor: the device class's newest one in the store.
  std::shared_ptr<const predictors::TrainedPredictor> predictor;
  std::string device_class = args.device_class;
  if (args.cost == "latency") {
    if (device_class == "local") device_class = measure::DetectDeviceClass({1, runtime::RuntimeVersion()}).MachineId();
    auto store = OrDie(predictors::OpenSqliteStore(args.store), "store " + args.store);
    auto stored = OrDie(predictors::LoadLatestPredictor(*store, device_class), "predictor");
    if (!stored) {
      std::fprintf(stderr,
                   "bench_search: no trained latency predictor of %s in %s; run 'acs predictor collect' and "
                   "'acs predictor train', or use --cost flops\n",
                   device_class.c_str(), args.store.c_str());
      return 1;
    }
    predictor = stored->predictor;
    std::printf("latency predictor v%lld of %s (%s)\n", static_cast<long long>(stored->record.version),
                device_class.c_str(), args.store.c_str());
  }
  std::printf("budget %s=%.2fx, %d episodes per run, seeds", args.cost.c_str(), args.budget, args.episodes);
  for (uint64_t s : args.seeds) std::printf(" %llu", static_cast<unsigned long long>(s));
  std::printf("; calibration %lld / validation %lld training images, test %lld images\n\n",
              static_cast<long long>(std::min(args.calib_samples, train.size())),
              static_cast<long long>(train.size() - std::min(args.calib_samples, train.size())),
              static_cast<long long>(test.size()));

  std::vector<Run> runs;
  nlohmann::json out;
  out["models"] = nlohmann::json::array();
  for (const std::string& name : args.models) {
    nlohmann::json model_json;
    BenchModel(args, predictor.get(), name, train, test, &runs, &model_json);
    if (!model_json.is_null()) out["models"].push_back(model_json);
  }

  std::printf("\n%-12s %-8s %22s %22s %12s\n", "model", "agent", "best val top1 (mean±sd)", "its test top1", "s/episode");
  out["summary"] = nlohmann::json::array();
  for (const std::string& model : args.models) {
    for (const std::string& agent : args.agents) {
      std::vector<double> val, test_acc, seconds;
      for (const Run& r : runs) {
        if (r.model != model || r.agent != agent) continue;
        val.push_back(100 * r.best_accuracy);
        test_acc.push_back(100 * r.test_accuracy);
        seconds.push_back(r.seconds_per_episode);
      }
      if (val.empty()) continue;
      const Stats v = Summarize(val), t = Summarize(test_acc), s = Summarize(seconds);
      std::printf("%-12s %-8s %14.2f ± %5.2f %14.2f ± %5.2f %12.2f\n", model.c_str(), agent.c_str(), v.mean, v.sd,
                  t.mean, t.sd, s.mean);
      out["summary"].push_back({{"model", model}, {"agent", agent}, {"best_validation_top1_percent", ToJson(v)},
                                {"test_top1_percent", ToJson(t)}, {"seconds_per_episode", ToJson(s)}});
    }
  }
  out["budget"] = {{"cost", args.cost}, {"ratio", args.budget}};
  if (predictor) out["budget"].update({{"device_class", device_class}, {"threads", args.threads}});
  out["episodes"] = args.episodes;
  out["seeds"] = args.seeds;
  out["warmup"] = args.warmup;
  out["calibration_samples"] = args.calib_samples;
  out["validation_samples"] = args.val_samples;
  out["test_samples"] = test.size();
  out["reconstruction_images"] = args.recon_images;
  out["reconstruction_columns"] = args.recon_columns;
  out["runs"] = nlohmann::json::array();
  for (const Run& r : runs) {
    out["runs"].push_back({{"model", r.model}, {"agent", r.agent}, {"seed", r.seed},
                           {"best_validation_top1", r.best_accuracy}, {"best_episode", r.best_episode},
                           {"test_top1", r.test_accuracy}, {"cost_ratio", r.cost_ratio},
                           {"seconds_per_episode", r.seconds_per_episode}, {"cache_hits", r.cache_hits},
                           {"accuracies", r.accuracies}});
  }
  if (!args.json.empty()) {
    if (!WriteJsonFile(args.json, out)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
