// acs search MODEL --input SHAPE --data DATA --budget flops=0.5x ...: searches a per-layer
// policy within a budget, writes the best policy, the compressed model and a report.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "agents/latency_cost.h"
#include "agents/make_agent.h"
#include "agents/search.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/importer.h"

namespace acs::cli {
namespace {

const char kHelp[] =
    "usage: acs search MODEL.pt --input SHAPE --data DATA --budget KIND=RATIOx --out DIR\n"
    "                  [--agent amc|agmc|random|evo|uniform] [--episodes N] [--seed S]\n"
    "                  [--reward accuracy|error-log-cost] [--warmup N]\n"
    "                  [--val-samples N] [--calib-samples N] [--patterns LIST]\n"
    "                  [--block-sizes LIST] [--precisions LIST] [--max-sparsity S]\n"
    "\n"
    "Searches a per-layer compression policy whose cost stays within the budget (every\n"
    "episode's policy is clamped to it) and that keeps the most accuracy after\n"
    "compression with reconstruction and batch-norm recalibration, without fine-tuning.\n"
    "\n"
    "  --input SHAPE        model input shape, e.g. 1x3x32x32 (required)\n"
    "  --data DATA          labelled data (unlabelled: agreement with the dense model)\n"
    "  --budget K=Rx        cost budget as a share of the dense model: latency, flops,\n"
    "                       params or bytes, e.g. latency=0.5x (required); latency is\n"
    "                       predicted by the device class's trained predictor (acs predictor)\n"
    "  --device-class ID    latency: 'local' (this machine, default) or a stored device class\n"
    "  --store PATH         latency: the predictor store (default data/predictors.db)\n"
    "  --threads T          latency: threads the model will run with (default 1)\n"
    "  --out DIR            writes policy.json, compressed.pt and report.json (required)\n"
    "  --agent NAME         amc (DDPG), agmc (DDPG with a graph encoder), random (default),\n"
    "                       evo (evolutionary) or uniform\n"
    "  --reward KIND        accuracy (default; the budget is enforced) or error-log-cost:\n"
    "                       -(1 - accuracy) x log(cost), for unconstrained search\n"
    "                       (--budget then defaults to flops=1x)\n"
    "  --warmup N           amc / agmc: episodes of random actions before learning\n"
    "                       (default 100, at most a quarter of the episodes)\n"
    "  --episodes N         episodes to run (default 100)\n"
    "  --seed S             seed of the agent (default 1); the same seed repeats the search\n"
    "  --calib-samples N    calibration samples: the first N of the training split (default 256)\n"
    "  --val-samples N      validation samples: the next N of the training split, disjoint\n"
    "                       from calibration and from the test split (default 500)\n"
    "  --patterns LIST      of dense,unstructured,block,nm,channel (default channel,block)\n"
    "  --block-sizes LIST   1xN block sizes (default 4,8)\n"
    "  --precisions LIST    of fp32,bf16,int8,int4w (default fp32)\n"
    "  --max-sparsity S     largest sparsity of one layer (default 0.9)\n"
    "  --skip LIST          layer names never compressed (the first conv and the last\n"
    "                       linear layer are always skipped)\n";

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string token; std::getline(in, token, ',');) {
    if (!token.empty()) out.push_back(token);
  }
  return out;
}

StatusOr<std::pair<std::string, double>> ParseBudget(const std::string& text) {
  const size_t eq = text.find('=');
  std::string value = eq == std::string::npos ? "" : text.substr(eq + 1);
  if (!value.empty() && (value.back() == 'x' || value.back() == 'X')) value.pop_back();
  try {
    size_t used = 0;
    double ratio = std::stod(value, &used);
    if (used == value.size() && ratio > 0 && ratio <= 1) return std::make_pair(text.substr(0, eq), ratio);
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("--budget expects KIND=RATIOx with KIND latency, flops, params or bytes and RATIO in (0, 1], got '" +
                                 text + "'");
}

StatusOr<SearchSpace> ParseSpace(const Flags& args) {
  SearchSpace space;
  if (args.Has("patterns")) {
    space.patterns.clear();
    for (const std::string& p : Split(args.Get("patterns"))) {
      ACS_ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(p));
      space.patterns.push_back(pattern);
    }
  }
  if (args.Has("precisions")) {
    space.precisions.clear();
    for (const std::string& p : Split(args.Get("precisions"))) {
      ACS_ASSIGN_OR_RETURN(Precision precision, ParsePrecision(p));
      space.precisions.push_back(precision);
    }
  }
  if (args.Has("block-sizes")) {
    space.block_sizes.clear();
    for (const std::string& b : Split(args.Get("block-sizes"))) {
      try {
        space.block_sizes.push_back(std::stoi(b));
      } catch (const std::exception&) {
        return Status::InvalidArgument("--block-sizes expects integers, got '" + b + "'");
      }
    }
  }
  if (args.Has("max-sparsity")) {
    try {
      space.max_sparsity = std::stod(args.Get("max-sparsity"));
    } catch (const std::exception&) {
      return Status::InvalidArgument("--max-sparsity expects a number");
    }
  }
  return space;
}

std::string Seconds(double s) {
  const long total = std::lround(s);
  char buf[32];
  if (total < 120) std::snprintf(buf, sizeof buf, "%lds", total);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", total / 60, total % 60);
  return buf;
}

std::string Ratio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fx", r);
  return buf;
}

void PrintPolicy(const Graph& g, const Env& env, const Policy& policy, std::ostream& out) {
  const std::vector<int64_t> kept = KeptChannels(g, policy);
  Table table({"layer", "pattern", "sparsity", "precision", "out ch", "in ch", env.cost_model().name()});
  for (const Layer& layer : g.layers) {
    if (!layer.compressible) continue;
    LayerConfig c = policy.Get(layer.name);
    std::string pattern = PatternName(c.pattern);
    if (c.pattern == Pattern::kBlock) pattern += " 1x" + std::to_string(c.block);
    if (c.pattern == Pattern::kNM) pattern += " " + std::to_string(c.nm_n) + ":" + std::to_string(c.nm_m);
    Layer shrunk = ShrinkLayer(layer, g, kept);
    auto change = [](int64_t a, int64_t b) { return a == b ? std::to_string(a) : std::to_string(a) + " -> " + std::to_string(b); };
    double before = env.cost_model().LayerCost(layer, LayerConfig{});
    double after = env.cost_model().LayerCost(shrunk, c);
    table.AddRow({layer.name, pattern, Percent(c.EffectiveSparsity(), 0), PrecisionName(c.precision),
                  change(layer.out_channels, shrunk.out_channels), change(layer.in_channels, shrunk.in_channels),
                  HumanCount(before) + " -> " + HumanCount(after)});
  }
  table.Print(out);
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return f.good() ? Status::Ok() : Status::FailedPrecondition("cannot write " + path);
}

}  // namespace

int SearchCommand(int argc, char** argv) {
  std::set<std::string> valued = {"input", "data", "budget", "out", "agent", "episodes", "seed", "val-samples",
                                  "calib-samples", "patterns", "block-sizes", "precisions", "max-sparsity", "skip",
                                  "reward", "warmup", "threads"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  valued.insert(kPredictorFlags.begin(), kPredictorFlags.end());
  auto args = ParseFlags(argc, argv, 2, valued, {"help"});
  if (!args.ok()) return Fail("search", args.status());
  if (args->Has("help")) {
    std::cout << kHelp << "\n" << kDataHelp;
    return 0;
  }
  if (args->positional.size() != 1) {
    std::cerr << "acs search: expected one MODEL file\n\n" << kHelp;
    return 2;
  }
  const std::string reward_name = args->Get("reward", "accuracy");
  if (reward_name != "accuracy" && reward_name != "error-log-cost") {
    return Fail("search", Status::InvalidArgument("--reward expects accuracy or error-log-cost, got '" + reward_name + "'"));
  }
  const bool unconstrained = reward_name == "error-log-cost";
  for (const char* flag : {"input", "data", "budget", "out"}) {
    if (!args->Has(flag) && !(unconstrained && std::string(flag) == "budget")) {
      return Fail("search", Status::InvalidArgument(std::string("--") + flag + " is required"));
    }
  }
  auto input = ParseShape(args->Get("input"));
  if (!input.ok()) return Fail("search", input.status());
  auto budget = ParseBudget(args->Get("budget", "flops=1x"));
  if (!budget.ok()) return Fail("search", budget.status());
  const bool latency = budget->first == "latency";
  auto cost = latency ? StatusOr<std::shared_ptr<CostModel>>(std::shared_ptr<CostModel>()) : MakeCostModel(budget->first);
  if (!cost.ok()) return Fail("search", cost.status());
  auto threads = args->GetInt("threads", 1);
  if (!threads.ok()) return Fail("search", threads.status());
  if (*threads < 1) return Fail("search", Status::InvalidArgument("--threads must be >= 1"));
  auto space = ParseSpace(*args);
  if (!space.ok()) return Fail("search", space.status());
  auto episodes = args->GetInt("episodes", 100);
  auto seed = args->GetInt("seed", 1);
  auto val_samples = args->GetInt("val-samples", 500);
  auto calib_samples = args->GetInt("calib-samples", 256);
  auto warmup = args->GetInt("warmup", DdpgOptions().warmup_episodes);
  for (const auto* v : {&episodes, &seed, &val_samples, &calib_samples, &warmup}) {
    if (!v->ok()) return Fail("search", v->status());
  }
  if (*val_samples < 1 || *calib_samples < 0 || *episodes < 1 || *warmup < 0) {
    return Fail("search", Status::InvalidArgument(
                              "--episodes and --val-samples must be >= 1, --calib-samples and --warmup >= 0"));
  }

  auto model = ImportTorchScript(args->positional[0], {*input});
  if (!model.ok()) return Fail("search", model.status());
  const Graph& graph = (*model)->graph;
  EnvOptions env_options;
  env_options.space = *space;
  env_options.budget = budget->second;
  std::optional<LatencyBudget> latency_budget;
  if (latency) {
    auto stored = LoadStoredPredictor(*args);
    if (!stored.ok()) return Fail("search", stored.status());
    auto lb = MakeLatencyBudget(graph, stored->predictor, static_cast<int>(*threads), budget->second);
    if (!lb.ok()) return Fail("search", lb.status());
    latency_budget = *lb;
    *cost = lb->cost;
    env_options.budget = lb->env_budget;
    std::cerr << "search: latency predictor v" << stored->record.version << " of " << stored->device_class
              << ", dense model " << lb->dense_us << " us predicted at " << *threads << " thread(s) (overhead "
              << lb->overhead_us << " us)\n";
  }
  env_options.skip = Split(args->Get("skip"));
  auto env = Env::Create(&graph, *cost, env_options);
  if (!env.ok()) return Fail("search", env.status());
  AgentOptions agent_options;
  agent_options.episodes = static_cast<int>(*episodes);
  agent_options.ddpg.warmup_episodes = static_cast<int>(*warmup);
  auto agent = MakeAgent(args->Get("agent", "random"), static_cast<uint64_t>(*seed), **env, agent_options);
  if (!agent.ok()) return Fail("search", agent.status());

  // Calibration and validation: disjoint slices of the training split.
  Flags data_args = *args;
  if (!data_args.Has("split")) data_args.values["split"] = "train";
  auto data = LoadDataFlag(data_args, args->Get("data"), *input, *calib_samples + *val_samples);
  if (!data.ok()) return Fail("search", data.status());
  const int64_t n = data->size();
  if (n <= *calib_samples) {
    return Fail("search", Status::InvalidArgument(data->source + " holds " + std::to_string(n) +
                                                  " samples, too few for calibration and validation"));
  }
  Dataset calib{data->images.slice(0, 0, *calib_samples), {}, data->source + " [calibration]"};
  Dataset val{data->images.slice(0, *calib_samples, n),
              data->has_labels() ? data->labels.slice(0, *calib_samples, n) : torch::Tensor(), data->source + " [validation]"};
  AccuracyRewardOptions reward_options;
  reward_options.kind = unconstrained ? RewardKind::kErrorLogCost : RewardKind::kAccuracy;
  AccuracyReward reward(model->get(), calib, val, reward_options);
  auto dense_accuracy = reward.DenseAccuracy();
  if (!dense_accuracy.ok()) return Fail("search", dense_accuracy.status());
  std::cerr << "search: " << (*env)->num_steps() << " layers, " << (*agent)->name() << " agent, " << *episodes
            << " episodes, budget " << args->Get("budget", "flops=1x") << " (min " << Ratio((*env)->min_cost() / (*env)->dense_cost())
            << "), calibration " << calib.size() << " / validation " << val.size() << " samples of the training split, dense "
            << (val.has_labels() ? "accuracy " : "agreement ") << Percent(*dense_accuracy) << "\n";

  SearchOptions options;
  options.episodes = static_cast<int>(*episodes);
  const auto start = std::chrono::steady_clock::now();
  options.on_episode = [&](const EpisodeRecord& e, const EpisodeRecord& best) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double eta = elapsed / (e.episode + 1) * (options.episodes - e.episode - 1);
    char line[200];
    std::snprintf(line, sizeof line, "episode %d/%d  reward %.4f  accuracy %.2f%%  cost %.3fx  best %.2f%% (ep %d)  ETA %s\n",
                  e.episode + 1, options.episodes, e.score.reward, 100 * e.score.accuracy, e.cost_ratio,
                  100 * best.score.accuracy, best.episode + 1, Seconds(eta).c_str());
    std::cerr << line;
  };
  auto result = RunSearch(**env, **agent, reward, options);
  if (!result.ok()) return Fail("search", result.status());
  const EpisodeRecord& best = result->episodes[result->best];

  std::cout << "best policy (episode " << best.episode + 1 << ", " << best.policy.Hash() << "):\n";
  PrintPolicy(graph, **env, best.policy, std::cout);
  std::cout << "\naccuracy " << Percent(*dense_accuracy, 2) << " -> " << Percent(best.score.accuracy, 2) << " on "
            << val.size() << " validation samples\n"
            << (*cost)->name() << " " << HumanCount((*env)->dense_cost()) << " -> " << HumanCount(best.score.cost) << " ("
            << Ratio(best.cost_ratio) << ", budget " << Ratio(env_options.budget) << ")\n";
  if (latency_budget) {
    const double best_us = best.score.cost + latency_budget->overhead_us;
    std::cout << "predicted latency " << Ratio(best_us / latency_budget->dense_us) << " of dense (" << std::lround(best_us)
              << " us vs " << std::lround(latency_budget->dense_us) << " us, " << Ratio(latency_budget->dense_us / best_us)
              << " speedup), budget " << Ratio(budget->second) << "\n";
  }
  std::cout << "\nPareto front (accuracy vs " << (*cost)->name() << "):\n";
  const std::vector<int> front = ParetoFront(result->episodes);
  Table pareto({"episode", "accuracy", (*cost)->name(), "ratio", "policy"});
  for (int i : front) {
    const EpisodeRecord& e = result->episodes[i];
    pareto.AddRow({std::to_string(e.episode + 1), Percent(e.score.accuracy, 2), HumanCount(e.score.cost), Ratio(e.cost_ratio),
                   e.policy.Hash()});
  }
  pareto.Print(std::cout);

  std::error_code ec;
  std::filesystem::create_directories(args->Get("out"), ec);
  if (ec) return Fail("search", Status::FailedPrecondition("cannot create " + args->Get("out") + ": " + ec.message()));
  const std::filesystem::path dir = args->Get("out");
  Status s = best.policy.ToFile((dir / "policy.json").string());
  if (!s.ok()) return Fail("search", s);
  CompressorOptions copts;
  copts.calibration = calib.images;
  auto compressed = Compress(**model, best.policy, copts);
  if (!compressed.ok()) return Fail("search", compressed.status());
  s = compressed->Save((dir / "compressed.pt").string());
  if (!s.ok()) return Fail("search", s);
  // The export reconstructs with the compressor's defaults, the search more cheaply.
  auto exported_accuracy = reward.Measure(*compressed);
  if (!exported_accuracy.ok()) return Fail("search", exported_accuracy.status());
  std::cout << "\nexported model (full reconstruction): accuracy " << Percent(*exported_accuracy, 2) << " on the "
            << val.size() << " validation samples\n";
  nlohmann::json report = {
      {"model", args->positional[0]}, {"input", args->Get("input")}, {"agent", (*agent)->name()}, {"seed", *seed},
      {"reward", reward_name},
      {"budget", {{"cost", (*cost)->name()}, {"ratio", budget->second}, {"dense", (*env)->dense_cost()},
                  {"min_ratio", (*env)->min_cost() / (*env)->dense_cost()}}},
      {"data", {{"source", data->source}, {"calibration", calib.size()}, {"validation", val.size()},
                {"split", "train: calibration first, validation next"}, {"labels", val.has_labels()}}},
      {"dense_accuracy", *dense_accuracy}, {"exported_accuracy", *exported_accuracy}, {"best_episode", best.episode},
      {"pareto", front}};
  if (latency_budget) {
    report["budget"]["latency"] = {{"dense_us", latency_budget->dense_us},
                                   {"overhead_us", latency_budget->overhead_us},
                                   {"best_us", best.score.cost + latency_budget->overhead_us},
                                   {"threads", *threads},
                                   {"layers_budget_ratio", env_options.budget}};
  }
  for (const EpisodeRecord& e : result->episodes) {
    report["episodes"].push_back({{"episode", e.episode}, {"reward", e.score.reward}, {"accuracy", e.score.accuracy},
                                  {"cost", e.score.cost}, {"cost_ratio", e.cost_ratio}, {"seconds", e.seconds},
                                  {"policy_hash", e.policy.Hash()}, {"policy", nlohmann::json::parse(e.policy.ToJson(-1))}});
  }
  s = WriteText((dir / "report.json").string(), report.dump(2) + "\n");
  if (!s.ok()) return Fail("search", s);
  std::cout << "\nwrote " << (dir / "policy.json").string() << ", " << (dir / "compressed.pt").string() << " ("
            << FileSize((dir / "compressed.pt").string()) << "), " << (dir / "report.json").string() << "\n";
  return 0;
}

}  // namespace acs::cli
