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
#include "agents/search_session.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/image_files.h"
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
    "  --precisions LIST    of fp32,bf16,int8,int4w (default fp32,int8)\n"
    "  --max-sparsity S     largest sparsity of one layer (default 0.9)\n"
    "  --fine-tune-epochs N fine-tune the exported model for N epochs (default 0: none) on\n"
    "                       the samples of the split after calibration and validation\n"
    "  --fine-tune-samples N  at most this many (default 5000)\n"
    "  --fine-tune-distill W  distillation from the dense model while fine-tuning: the loss\n"
    "                       W x KL(dense || model) + (1 - W) x cross-entropy, W in [0, 1]\n"
    "                       (default 0.7; unlabelled data: 1)\n"
    "  --fine-tune-int8 M   train (default): int8 layers train quantization-aware (weights\n"
    "                       rounded to their int8 grid in the forward pass, gradients passed\n"
    "                       straight through); keep: they keep their weights\n"
    "  --test-data DATA     a labelled test set (a directory of IDX files: its t10k files):\n"
    "                       the exported and the dense model are scored on all of it\n"
    "  --skip LIST          layer names never compressed (the first conv and the last\n"
    "                       linear layer are always skipped)\n";

StatusOr<SearchSpace> ParseSpace(const Flags& args) {
  SearchSpace space;
  if (args.Has("patterns")) {
    space.patterns.clear();
    for (const std::string& p : SplitList(args.Get("patterns"))) {
      ACS_ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(p));
      space.patterns.push_back(pattern);
    }
  }
  if (args.Has("precisions")) {
    space.precisions.clear();
    for (const std::string& p : SplitList(args.Get("precisions"))) {
      ACS_ASSIGN_OR_RETURN(Precision precision, ParsePrecision(p));
      space.precisions.push_back(precision);
    }
  }
  if (args.Has("block-sizes")) {
    space.block_sizes.clear();
    for (const std::string& b : SplitList(args.Get("block-sizes"))) {
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

}  // namespace

int SearchCommand(int argc, char** argv) {
  std::set<std::string> valued = {"input", "data", "budget", "out", "agent", "episodes", "seed", "val-samples",
                                  "calib-samples", "patterns", "block-sizes", "precisions", "max-sparsity", "skip",
                                  "reward", "warmup", "threads", "fine-tune-epochs", "fine-tune-samples", "test-data",
                                  "fine-tune-distill", "fine-tune-int8"};
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
  auto space = ParseSpace(*args);
  if (!space.ok()) return Fail("search", space.status());
  auto threads = args->GetInt("threads", 1);
  auto episodes = args->GetInt("episodes", 100);
  auto seed = args->GetInt("seed", 1);
  auto val_samples = args->GetInt("val-samples", 500);
  auto calib_samples = args->GetInt("calib-samples", 256);
  auto warmup = args->GetInt("warmup", DdpgOptions().warmup_episodes);
  auto fine_tune_epochs = args->GetInt("fine-tune-epochs", 0);
  auto fine_tune_samples = args->GetInt("fine-tune-samples", 5000);
  for (const auto* v : {&threads, &episodes, &seed, &val_samples, &calib_samples, &warmup, &fine_tune_epochs,
                        &fine_tune_samples}) {
    if (!v->ok()) return Fail("search", v->status());
  }
  if (*val_samples < 1 || *calib_samples < 0 || *episodes < 1 || *warmup < 0 || *threads < 1 ||
      *fine_tune_epochs < 0 || *fine_tune_samples < 1) {
    return Fail("search", Status::InvalidArgument("--episodes, --threads, --val-samples and --fine-tune-samples must "
                                                  "be >= 1, --calib-samples, --warmup and --fine-tune-epochs >= 0"));
  }
  Flags data_args = *args;
  if (!data_args.Has("split")) data_args.values["split"] = "train";
  if (!data_args.Has("shuffle-seed") && IsImageFolder(args->Get("data"))) {
    data_args.values["shuffle-seed"] = "1";  // a window of a folder holds every class
  }
  auto data_options = DataOptionsFlag(data_args, {});
  if (!data_options.ok()) return Fail("search", data_options.status());

  SearchSessionOptions options;
  options.model_path = args->positional[0];
  options.input_shape = *input;
  options.data_path = args->Get("data");
  options.data = *data_options;
  options.budget_kind = budget->kind;
  options.budget_ratio = budget->ratio;
  options.threads = static_cast<int>(*threads);
  options.agent = args->Get("agent", "random");
  options.episodes = static_cast<int>(*episodes);
  options.seed = static_cast<uint64_t>(*seed);
  options.warmup = static_cast<int>(*warmup);
  options.reward = unconstrained ? RewardKind::kErrorLogCost : RewardKind::kAccuracy;
  options.calibration_samples = *calib_samples;
  options.validation_samples = *val_samples;
  options.space = *space;
  options.skip = SplitList(args->Get("skip"));
  options.fine_tune_epochs = static_cast<int>(*fine_tune_epochs);
  options.fine_tune_samples = *fine_tune_samples;
  auto distill = args->GetDouble("fine-tune-distill", FineTuneOptions{}.distill_weight);
  if (!distill.ok()) return Fail("search", distill.status());
  if (!(*distill >= 0 && *distill <= 1)) {
    return Fail("search", Status::InvalidArgument("--fine-tune-distill must be in [0, 1]"));
  }
  options.fine_tune_distill = *distill;
  const std::string fine_tune_int8 = args->Get("fine-tune-int8", "train");
  if (fine_tune_int8 != "train" && fine_tune_int8 != "keep") {
    return Fail("search",
                Status::InvalidArgument("--fine-tune-int8 is 'train' or 'keep', not '" + fine_tune_int8 + "'"));
  }
  options.fine_tune_int8 = fine_tune_int8 == "train";
  options.test_data_path = args->Get("test-data");
  if (budget->kind == "latency") {
    auto stored = LoadStoredPredictor(*args);
    if (!stored.ok()) return Fail("search", stored.status());
    options.predictor = stored->predictor;
    std::cerr << "search: latency predictor v" << stored->record.version << " of " << stored->device_class << "\n";
  }
  auto session = SearchSession::Create(options);
  if (!session.ok()) return Fail("search", session.status());
  SearchSession& search = **session;
  const Env& env = search.env();
  const Graph& graph = search.graph();
  if (search.latency()) {
    std::cerr << "search: dense model " << search.latency()->dense_us << " us predicted at " << *threads
              << " thread(s) (overhead " << search.latency()->overhead_us << " us)\n";
  }
  std::cerr << "search: " << env.num_steps() << " layers, " << search.agent().name() << " agent, " << *episodes
            << " episodes, budget " << args->Get("budget", "flops=1x") << " (min " << Ratio(env.min_cost() / env.dense_cost())
            << "), calibration " << search.calibration().size() << " / validation " << search.validation().size()
            << " samples of the training split, dense " << (search.validation().has_labels() ? "accuracy " : "agreement ")
            << Percent(search.dense_accuracy()) << "\n";

  const auto start = std::chrono::steady_clock::now();
  Status run = search.Run([&](const EpisodeRecord& e, const EpisodeRecord& best) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double eta = elapsed / (e.episode + 1) * (options.episodes - e.episode - 1);
    char line[200];
    std::snprintf(line, sizeof line, "episode %d/%d  reward %.4f  accuracy %.2f%%  cost %.3fx  best %.2f%% (ep %d)  ETA %s\n",
                  e.episode + 1, options.episodes, e.score.reward, 100 * e.score.accuracy, e.cost_ratio,
                  100 * best.score.accuracy, best.episode + 1, Seconds(eta).c_str());
    std::cerr << line;
  });
  if (!run.ok()) return Fail("search", run);
  const EpisodeRecord& best = search.episodes()[search.best()];
  const CostModel& cost = env.cost_model();

  std::cout << "best policy (episode " << best.episode + 1 << ", " << best.policy.Hash() << "):\n";
  PrintPolicy(graph, env, best.policy, std::cout);
  std::cout << "\naccuracy " << Percent(search.dense_accuracy(), 2) << " -> " << Percent(best.score.accuracy, 2) << " on "
            << search.validation().size() << " validation samples\n"
            << cost.name() << " " << HumanCount(env.dense_cost()) << " -> " << HumanCount(best.score.cost) << " ("
            << Ratio(best.cost_ratio) << ", budget " << Ratio(env.budget_cost() / env.dense_cost()) << ")\n";
  if (search.latency()) {
    const double best_us = search.PredictedUs(best.policy), dense_us = search.latency()->dense_us;
    std::cout << "predicted latency " << Ratio(best_us / dense_us) << " of dense (" << std::lround(best_us) << " us vs "
              << std::lround(dense_us) << " us, " << Ratio(dense_us / best_us) << " speedup), budget "
              << Ratio(budget->ratio) << "\n";
  }
  std::cout << "\nPareto front (accuracy vs " << cost.name() << "):\n";
  Table pareto({"episode", "accuracy", cost.name(), "ratio", "policy"});
  for (int i : ParetoFront(search.episodes())) {
    const EpisodeRecord& e = search.episodes()[i];
    pareto.AddRow({std::to_string(e.episode + 1), Percent(e.score.accuracy, 2), HumanCount(e.score.cost), Ratio(e.cost_ratio),
                   e.policy.Hash()});
  }
  pareto.Print(std::cout);

  auto exported = search.Export(best.policy, args->Get("out"));
  if (!exported.ok()) return Fail("search", exported.status());
  std::cout << "\nexported model (full reconstruction" << (exported->fine_tune_kept_epoch > 0 ? ", fine-tuned" : "")
            << "): accuracy " << Percent(exported->exported_accuracy, 2) << " on the " << search.validation().size()
            << " validation samples";
  if (exported->fine_tune_kept_epoch > 0) {
    std::cout << " (" << Percent(exported->accuracy_before_fine_tune, 2) << " before fine-tuning)";
  } else if (exported->fine_tune_kept_epoch == 0) {
    std::cout << " (not fine-tuned: no epoch scored above " << Percent(exported->accuracy_before_fine_tune, 2) << ")";
  }
  std::cout << "\n";
  if (exported->test_samples > 0) {
    std::cout << "test set: " << Percent(exported->test_accuracy, 2) << " (dense " << Percent(exported->dense_test_accuracy, 2)
              << ") on the " << exported->test_samples << " samples of " << exported->test_source << "\n";
  }
  std::cout << "\nwrote " << exported->policy_path << ", " << exported->model_path << " ("
            << FileSize(exported->model_path) << "), " << exported->report_path << "\n";
  return 0;
}

}  // namespace acs::cli
