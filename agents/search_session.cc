#include "agents/search_session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "agents/policy_layers.h"
#include "core/fine_tune.h"
#include "core/quantized_export.h"

namespace acs {
namespace {

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return f.good() ? Status::Ok() : Status::FailedPrecondition("cannot write " + path);
}

nlohmann::json EpisodeToJson(const EpisodeRecord& e) {
  return {{"episode", e.episode},           {"reward", e.score.reward},
          {"accuracy", e.score.accuracy},   {"cost", e.score.cost},
          {"cost_ratio", e.cost_ratio},     {"seconds", e.seconds},
          {"policy_hash", e.policy.Hash()}, {"policy", nlohmann::json::parse(e.policy.ToJson(-1))}};
}

StatusOr<EpisodeRecord> EpisodeFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("policy")) return Status::InvalidArgument("checkpoint episode without policy");
  EpisodeRecord e;
  try {
    e.episode = j.at("episode").get<int>();
    e.score.reward = j.at("reward").get<double>();
    e.score.accuracy = j.at("accuracy").get<double>();
    e.score.cost = j.at("cost").get<double>();
    e.cost_ratio = j.at("cost_ratio").get<double>();
    e.seconds = j.value("seconds", 0.0);
  } catch (const std::exception& ex) {
    return Status::InvalidArgument(std::string("malformed checkpoint episode: ") + ex.what());
  }
  ACS_ASSIGN_OR_RETURN(e.policy, Policy::FromJson(j["policy"].dump()));
  return e;
}

// Snapshot(): {"format": 2, "agent_name", "agent": the agent's Checkpoint(), "episodes":
// how many of the log it covers}. Format 1 had the log itself as "episodes" (an array).
constexpr int kSnapshotFormat = 2;

// A checkpoint of either format, its fields checked.
StatusOr<nlohmann::json> ParseCheckpoint(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  auto is = [&](const char* key, auto test) { return j.contains(key) && test(j[key]); };
  auto integer = [](const nlohmann::json& v) { return v.is_number_integer(); };
  auto string = [](const nlohmann::json& v) { return v.is_string(); };
  if (!j.is_object() || !is("format", integer) || !is("agent", string) || !is("agent_name", string)) {
    return Status::InvalidArgument("malformed search checkpoint");
  }
  const int64_t format = j["format"].get<int64_t>();
  const bool log_inside = format == 1 && is("episodes", [](const nlohmann::json& v) { return v.is_array(); });
  const bool count = format == kSnapshotFormat && is("episodes", integer) && j["episodes"].get<int64_t>() >= 0 &&
                     j["episodes"].get<int64_t>() <= std::numeric_limits<int>::max();
  if (!log_inside && !count) return Status::InvalidArgument("malformed search checkpoint");
  return j;
}

// A latency budget the Env cannot meet, said of the whole model: the layers' share is
// what the Env sees, but the user asked for a share of the whole model's latency.
Status LatencyBudgetUnreachable(const Graph& graph, const LatencyBudget& budget, EnvOptions env_options, double ratio) {
  env_options.budget = 1.0;
  StatusOr<std::unique_ptr<Env>> loose = Env::Create(&graph, budget.cost, env_options);
  char m[512];
  if (!loose.ok()) return loose.status();
  const double min_us = budget.layer_scale * (*loose)->min_cost() + budget.overhead_us;
  std::snprintf(m, sizeof m,
                "a latency budget of %.2fx cannot be met: the dense model %s %.1f us, of which %.1f us is spent "
                "outside its conv / linear layers; at maximum compression it would still take %.1f us (%.2fx); "
                "use a budget of at least that",
                ratio, budget.calibrated ? "measures" : "is predicted at", budget.dense_us, budget.overhead_us, min_us,
                min_us / budget.dense_us);
  return Status::FailedPrecondition(m);
}

}  // namespace

StatusOr<std::unique_ptr<SearchSession>> SearchSession::Create(const SearchSessionOptions& options) {
  if (options.episodes < 1) return Status::InvalidArgument("a search needs at least one episode");
  if (options.validation_samples < 1 || options.calibration_samples < 0) {
    return Status::InvalidArgument("a search needs validation samples >= 1 and calibration samples >= 0");
  }
  if (options.threads < 1) return Status::InvalidArgument("threads must be >= 1");
  std::unique_ptr<SearchSession> s(new SearchSession());
  s->options_ = options;
  ACS_ASSIGN_OR_RETURN(s->model_, ImportTorchScript(options.model_path, {options.input_shape}));
  const Graph& graph = s->model_->graph;
  EnvOptions env_options;
  env_options.space = options.space;
  env_options.skip = options.skip;
  env_options.budget = options.budget_ratio;
  if (options.budget_kind == "latency") {
    if (!options.predictor)
      return Status::FailedPrecondition("a latency budget needs the device class's trained predictor");
    ACS_ASSIGN_OR_RETURN(LatencyBudget lb, MakeLatencyBudget(graph, *options.predictor, options.threads,
                                                             options.budget_ratio, options.measured));
    s->latency_ = lb;
    s->cost_ = lb.cost;
    env_options.budget = lb.env_budget;
  } else {
    ACS_ASSIGN_OR_RETURN(s->cost_, MakeCostModel(options.budget_kind));
  }
  StatusOr<std::unique_ptr<Env>> env = Env::Create(&graph, s->cost_, env_options);
  if (!env.ok() && env.status().code() == StatusCode::kFailedPrecondition && s->latency_) {
    return LatencyBudgetUnreachable(graph, *s->latency_, env_options, options.budget_ratio);
  }
  ACS_RETURN_IF_ERROR(env.status());
  s->env_ = std::move(env).value();
  AgentOptions agent_options;
  agent_options.episodes = options.agent_episodes > 0 ? options.agent_episodes : options.episodes;
  if (options.warmup >= 0) agent_options.ddpg.warmup_episodes = options.warmup;
  ACS_ASSIGN_OR_RETURN(s->agent_, MakeAgent(options.agent, options.seed, *s->env_, agent_options));

  // Calibration and validation: disjoint slices of the split.
  DatasetOptions data = options.input_shape.size() == 4 ? FitToInput(options.input_shape, options.data) : options.data;
  data.limit = options.calibration_samples + options.validation_samples;
  ACS_ASSIGN_OR_RETURN(Dataset all, LoadDataset(options.data_path, data));
  const int64_t n = all.size();
  const int64_t calib = options.calibration_samples;
  if (n <= calib) {
    return Status::InvalidArgument(all.source + " holds " + std::to_string(n) +
                                   " samples, too few for calibration and validation");
  }
  s->data_source_ = all.source;
  s->calibration_ = Dataset{all.images.slice(0, 0, calib), {}, all.source + " [calibration]"};
  s->validation_ =
      Dataset{all.images.slice(0, calib, n), all.has_labels() ? all.labels.slice(0, calib, n) : torch::Tensor(),
              all.source + " [validation]"};
  AccuracyRewardOptions reward_options;
  reward_options.kind = options.reward;
  s->reward_ = std::make_unique<AccuracyReward>(s->model_.get(), s->calibration_, s->validation_, reward_options);
  ACS_ASSIGN_OR_RETURN(s->dense_accuracy_, s->reward_->DenseAccuracy());
  return s;
}

Status SearchSession::Run(const std::function<void(const EpisodeRecord&, const EpisodeRecord&)>& on_episode,
                          const std::function<bool()>& stop) {
  stopped_ = false;
  if (finished()) return Status::Ok();
  SearchOptions options;
  options.episodes = options_.episodes;
  options.first_episode = static_cast<int>(episodes_.size());
  options.stop = stop;
  options.on_episode = [&](const EpisodeRecord& e, const EpisodeRecord&) {
    episodes_.push_back(e);
    over_budget_.push_back(false);  // the action wall keeps every new policy within it
    const int i = static_cast<int>(episodes_.size()) - 1;
    if (best_ < 0 || episodes_[i].score.reward > episodes_[best_].score.reward) best_ = i;
    if (on_episode) on_episode(episodes_[i], episodes_[best_]);
  };
  if (episodes_.empty() && options_.precision_seeds) {
    const std::vector<Precision>& precisions = options_.space.precisions;
    for (size_t k = 1; k < precisions.size() && !finished() && !(stop && stop()); ++k) {
      ACS_ASSIGN_OR_RETURN(int i, AddScoredEpisode(PrecisionSeed(precisions[k])));
      if (on_episode) on_episode(episodes_[i], episodes_[best_]);
    }
    options.first_episode = static_cast<int>(episodes_.size());
    if (finished()) return Status::Ok();
  }
  ACS_ASSIGN_OR_RETURN(SearchResult result, RunSearch(*env_, *agent_, *reward_, options));
  stopped_ = result.stopped;
  return Status::Ok();
}

Policy SearchSession::PrecisionSeed(Precision precision) {
  env_->Reset();
  for (int t = 0; t < env_->num_steps(); ++t) {
    const LayerChoices choices = env_->ChoicesAt(t, env_->policy());
    LayerConfig want;
    want.pattern = choices.patterns.empty() ? Pattern::kDense : choices.patterns[0];
    if (!choices.block_sizes.empty()) want.block = choices.block_sizes[0];
    want.sparsity = 0;
    const bool offered =
        std::find(choices.precisions.begin(), choices.precisions.end(), precision) != choices.precisions.end();
    want.precision = offered || choices.precisions.empty() ? precision : choices.precisions[0];
    if (env_->Step(ConfigToAction(want, choices)).done) break;
  }
  return env_->policy();
}

StatusOr<int> SearchSession::AddScoredEpisode(const Policy& policy) {
  const auto start = std::chrono::steady_clock::now();
  const double cost = env_->Cost(policy);
  ACS_ASSIGN_OR_RETURN(Score score, reward_->Evaluate(policy, cost));
  EpisodeRecord e;
  e.episode = static_cast<int>(episodes_.size());
  e.policy = policy;
  e.score = score;
  e.cost_ratio = cost / env_->dense_cost();
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  episodes_.push_back(std::move(e));
  over_budget_.push_back(false);
  const int i = static_cast<int>(episodes_.size()) - 1;
  if (best_ < 0 || episodes_[i].score.reward > episodes_[best_].score.reward) best_ = i;
  return i;
}

std::string SearchSession::Snapshot() const {
  return nlohmann::json{{"format", kSnapshotFormat},
                        {"agent_name", agent_->name()},
                        {"agent", agent_->Checkpoint()},
                        {"episodes", static_cast<int64_t>(episodes_.size())}}
      .dump();
}

std::string SearchSession::EpisodeJson(int i) const { return EpisodeToJson(episodes_.at(i)).dump(); }

StatusOr<int> SearchSession::LoggedEpisodesNeeded(const std::string& checkpoint) {
  ACS_ASSIGN_OR_RETURN(nlohmann::json j, ParseCheckpoint(checkpoint));
  return j["episodes"].is_array() ? 0 : j["episodes"].get<int>();
}

Status SearchSession::Restore(const std::string& checkpoint, const std::vector<std::string>& log) {
  ACS_ASSIGN_OR_RETURN(nlohmann::json j, ParseCheckpoint(checkpoint));
  if (j["agent_name"].get<std::string>() != agent_->name()) {
    return Status::InvalidArgument("the checkpoint is of agent '" + j["agent_name"].get<std::string>() + "', not '" +
                                   agent_->name() + "'");
  }
  std::vector<EpisodeRecord> episodes;
  if (j["episodes"].is_array()) {  // format 1
    for (const nlohmann::json& e : j["episodes"]) {
      ACS_ASSIGN_OR_RETURN(EpisodeRecord record, EpisodeFromJson(e));
      episodes.push_back(std::move(record));
    }
  } else {
    const int covered = j["episodes"].get<int>();
    if (static_cast<int>(log.size()) < covered) {
      return Status::InvalidArgument("the checkpoint covers " + std::to_string(covered) + " episodes, the log holds " +
                                     std::to_string(log.size()));
    }
    for (int i = 0; i < covered; ++i) {
      const nlohmann::json e = nlohmann::json::parse(log[i], nullptr, false);
      ACS_ASSIGN_OR_RETURN(EpisodeRecord record, EpisodeFromJson(e));
      if (record.episode != i) {
        return Status::InvalidArgument("the episode log is out of order: episode " + std::to_string(record.episode) +
                                       " at " + std::to_string(i));
      }
      episodes.push_back(std::move(record));
    }
  }
  ACS_RETURN_IF_ERROR(agent_->Restore(j["agent"].get<std::string>()));
  episodes_ = std::move(episodes);
  over_budget_.assign(episodes_.size(), false);
  best_ = -1;
  const double budget = env_->budget_cost() * (1 + 1e-9);
  for (int i = 0; i < static_cast<int>(episodes_.size()); ++i) {
    EpisodeRecord& e = episodes_[i];
    e.cost_ratio = env_->Cost(e.policy) / env_->dense_cost();
    over_budget_[i] = env_->Cost(e.policy) > budget;
    if (!over_budget_[i] && (best_ < 0 || e.score.reward > episodes_[best_].score.reward)) best_ = i;
  }
  return Status::Ok();
}

bool SearchSession::WithinBudget(int episode) const {
  return episode < static_cast<int>(over_budget_.size()) && !over_budget_[episode];
}

int SearchSession::episodes_over_budget() const {
  int n = 0;
  for (bool over : over_budget_) n += over;
  return n;
}

std::vector<int> SearchSession::TopK(int k) const {
  std::vector<int> order(episodes_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return episodes_[a].score.reward > episodes_[b].score.reward; });
  std::vector<int> out;
  std::set<std::string> seen;
  for (int i : order) {
    if (static_cast<int>(out.size()) >= k) break;
    if (WithinBudget(i) && seen.insert(episodes_[i].policy.Hash()).second) out.push_back(i);
  }
  return out;
}

StatusOr<int> SearchSession::FillBudget() {
  if (best_ < 0) return -1;
  const Policy base = episodes_[best_].policy;
  const double budget = env_->budget_cost() * (1 - 1e-9);
  // The smallest factor in [0, 1] on the sparsity of `scale`d layers that keeps `p` within
  // the budget (p itself is), by bisection; scaled(p, t) applies it.
  auto relax = [&](const Policy& p, const std::function<Policy(const Policy&, double)>& scaled) {
    if (env_->Cost(scaled(p, 0)) <= budget) return scaled(p, 0);
    double over = 0, within = 1;
    for (int i = 0; i < 14; ++i) {
      const double mid = 0.5 * (over + within);
      (env_->Cost(scaled(p, mid)) <= budget ? within : over) = mid;
    }
    return scaled(p, within);
  };
  auto relaxable = [](const LayerConfig& c) { return c.pattern != Pattern::kNM && c.pattern != Pattern::kDense; };
  // First every layer alike, then what is left layer by layer, the sparsest first (a
  // uniform factor stalls where removing one channel less costs more than the rest).
  Policy filled = relax(base, [&](const Policy& p, double t) {
    Policy out = p;
    for (auto& [name, config] : out.layers) {
      if (relaxable(config)) config.sparsity *= t;
    }
    if (out.default_config && relaxable(*out.default_config)) out.default_config->sparsity *= t;
    return out;
  });
  std::vector<std::pair<double, std::string>> order;
  for (const auto& [name, config] : filled.layers) {
    if (relaxable(config) && config.sparsity > 0) order.emplace_back(-config.sparsity, name);
  }
  std::sort(order.begin(), order.end());
  for (const auto& [negative_sparsity, name] : order) {
    filled = relax(filled, [&name = name](const Policy& p, double t) {
      Policy out = p;
      out.layers[name].sparsity *= t;
      return out;
    });
  }
  if (filled.Hash() == base.Hash()) return -1;
  return AddScoredEpisode(filled);
}

double SearchSession::PredictedUs(const Policy& policy) const {
  return latency_ ? latency_->PredictUs(model_->graph, policy) : 0.0;
}

StatusOr<ExportedSearch> SearchSession::Export(const Policy& policy, const std::string& dir,
                                               const nlohmann::json& extra) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::FailedPrecondition("cannot create " + dir + ": " + ec.message());
  const std::filesystem::path d = dir;
  ExportedSearch out;
  out.policy_path = (d / "policy.json").string();
  out.model_path = (d / "compressed.pt").string();
  out.report_path = (d / "report.json").string();
  ACS_RETURN_IF_ERROR(policy.ToFile(out.policy_path));
  CompressorOptions copts;
  copts.calibration = calibration_.images;
  ACS_ASSIGN_OR_RETURN(CompressedModel compressed, Compress(*model_, policy, copts));
  nlohmann::json fine_tune;
  if (options_.fine_tune_epochs > 0) {
    DatasetOptions data =
        options_.input_shape.size() == 4 ? FitToInput(options_.input_shape, options_.data) : options_.data;
    data.offset = options_.calibration_samples + options_.validation_samples;
    data.limit = options_.fine_tune_samples;
    ACS_ASSIGN_OR_RETURN(Dataset train, LoadDataset(options_.data_path, data));
    if (train.size() < 1) {
      return Status::InvalidArgument(train.source +
                                     " has no samples left for fine-tuning after calibration and validation");
    }
    FineTuneOptions ft;
    ft.epochs = options_.fine_tune_epochs;
    ft.learning_rate = options_.fine_tune_learning_rate;
    ft.seed = options_.seed;
    ft.distill_weight = train.has_labels() ? options_.fine_tune_distill : 1.0;
    ft.int8_aware = options_.fine_tune_int8;
    ft.calibration = calibration_.images;  // batch norms and int8 ranges re-estimated after training
    std::shared_ptr<CompressedModel> teacher;
    if (ft.distill_weight > 0) {
      ACS_ASSIGN_OR_RETURN(CompressedModel dense, Compress(*model_, Policy()));
      teacher = std::make_shared<CompressedModel>(std::move(dense));
      ft.teacher = [teacher](const torch::Tensor& batch) { return teacher->module.forward({batch}).toTensor(); };
    }
    ACS_ASSIGN_OR_RETURN(FineTuneResult r, FineTune(compressed, train, ft, nullptr,
                                                    [&](CompressedModel& m) { return reward_->Measure(m); }));
    out.accuracy_before_fine_tune = r.score_before;
    out.fine_tune_kept_epoch = r.kept_epoch;
    fine_tune = {{"epochs", ft.epochs},
                 {"learning_rate", ft.learning_rate},
                 {"distill_weight", ft.distill_weight},
                 {"temperature", ft.temperature},
                 {"samples", train.size()},
                 {"steps", r.steps},
                 {"layers_tuned", r.layers_tuned},
                 {"layers_int8_aware", r.layers_int8},
                 {"layers_kept", r.layers_kept},
                 {"first_loss", r.first_loss},
                 {"last_loss", r.last_loss},
                 {"seconds", r.seconds},
                 {"accuracy_before", r.score_before},
                 {"epoch_accuracy", r.epoch_scores},
                 {"kept_epoch", r.kept_epoch},
                 {"kept", r.kept_epoch == 0 ? "the weights before fine-tuning (no epoch scored higher)"
                                            : "the weights after epoch " + std::to_string(r.kept_epoch)},
                 {"reestimated",
                  {{"kept", r.reestimation_kept},
                   {"batch_norms", r.batch_norms_reestimated},
                   {"int8_ranges", r.int8_ranges_reestimated},
                   {"accuracy", r.reestimated_score}}}};
    if (r.diverged_at_step >= 0) fine_tune["diverged_at_step"] = r.diverged_at_step;
  }
  // The export reconstructs with the compressor's defaults, the search more cheaply.
  ACS_ASSIGN_OR_RETURN(out.simulated_accuracy, reward_->Measure(compressed));
  if (options_.runtime_export) {
    ACS_ASSIGN_OR_RETURN(out.runtime_model_path, options_.runtime_export(*model_, policy, compressed, dir));
  }
  // The downloaded file runs its int8 layers as PyTorch's quantized ops; every accuracy
  // reported from here on is that file's.
  QuantizedExportOptions quantized;
  quantized.calibration = calibration_.images;
  ACS_ASSIGN_OR_RETURN(QuantizedExport stock, ExportQuantizedOps(compressed.module, quantized));
  compressed.module = stock.module;
  out.int8_export = QuantizedExportSummary(stock);
  out.int8_layers = stock.quantized_layers + stock.fp32_layers + stock.simulated_layers;
  ACS_RETURN_IF_ERROR(compressed.Save(out.model_path));
  ACS_ASSIGN_OR_RETURN(out.exported_accuracy, reward_->Measure(compressed));
  nlohmann::json test;
  if (!options_.test_data_path.empty()) {
    DatasetOptions data =
        options_.input_shape.size() == 4 ? FitToInput(options_.input_shape, options_.data) : options_.data;
    data.split = options_.test_split;
    data.offset = data.limit = 0;
    data.shuffle_seed = 0;
    ACS_ASSIGN_OR_RETURN(Dataset test_set, LoadDataset(options_.test_data_path, data));
    if (!test_set.has_labels()) return Status::InvalidArgument(test_set.source + ": a test set needs labels");
    out.test_samples = test_set.size();
    out.test_source = test_set.source;
    AccuracyReward on_test(model_.get(), calibration_, std::move(test_set));
    ACS_ASSIGN_OR_RETURN(out.dense_test_accuracy, on_test.DenseAccuracy());
    ACS_ASSIGN_OR_RETURN(out.test_accuracy, on_test.Measure(compressed));
    test = {{"source", out.test_source},
            {"samples", out.test_samples},
            {"dense_accuracy", out.dense_test_accuracy},
            {"exported_accuracy", out.test_accuracy}};
  }

  const int best_episode = best_ >= 0 ? episodes_[best_].episode : -1;
  nlohmann::json report = {
      {"model", options_.model_path},
      {"input", options_.input_shape},
      {"agent", agent_->name()},
      {"seed", options_.seed},
      {"reward", options_.reward == RewardKind::kAccuracy ? "accuracy" : "error-log-cost"},
      {"budget",
       {{"kind", options_.budget_kind},
        {"cost", cost_->name()},
        {"ratio", options_.budget_ratio},
        {"dense", env_->dense_cost()},
        {"min_ratio", env_->min_cost() / env_->dense_cost()}}},
      {"data",
       {{"source", data_source_},
        {"calibration", calibration_.size()},
        {"validation", validation_.size()},
        {"fine_tune", fine_tune.is_null() ? nlohmann::json(0) : fine_tune["samples"]},
        {"shuffle_seed", options_.data.shuffle_seed},
        {"split", options_.data.split},
        {"order", "calibration first, validation next, fine-tuning after"},
        {"preprocess", options_.data.preprocess.empty() ? nlohmann::json("fitted to the input (scaled to [0, 1], "
                                                                         "channels repeated, resized)")
                                                        : options_.data.preprocess.ToJson()},
        {"labels", validation_.has_labels()}}},
      {"dense_accuracy", dense_accuracy_},
      {"exported_accuracy", out.exported_accuracy},
      {"exported_policy_hash", policy.Hash()},
      {"compressed_pt",
       {{"int8", out.int8_export},
        {"accuracy", out.exported_accuracy},
        {"simulated_accuracy", out.simulated_accuracy},
        {"simulated", "int8 layers fake-quantized, as the search scored them and acs-worker runs them"}}},
      {"best_episode", best_episode},
      {"pareto", ParetoFront(episodes_)}};
  if (!fine_tune.is_null()) report["fine_tune"] = fine_tune;
  if (!out.runtime_model_path.empty()) {
    report["compressed_acs_pt"] = {
        {"file", std::filesystem::path(out.runtime_model_path).filename().string()},
        {"runs_with", "the acs_rt ops: torch.ops.load_library(\"libacs_ops.so\") before torch.jit.load"},
        {"layers",
         "as the acs runtime runs them; the layers left to LibTorch as plain ops (not optimized for "
         "inference)"}};
  }
  if (!test.is_null()) report["test"] = test;
  if (latency_) {
    report["budget"]["latency"] = {{"dense_us", latency_->dense_us},
                                   {"overhead_us", latency_->overhead_us},
                                   {"exported_us", PredictedUs(policy)},
                                   {"threads", options_.threads},
                                   {"layers_budget_ratio", env_->budget_cost() / env_->dense_cost()}};
    if (latency_->overhead_before_refit_us >= 0) {
      report["budget"]["latency"]["overhead_before_refit_us"] = latency_->overhead_before_refit_us;
    }
  }
  report["layers"] = PolicyLayersJson(model_->graph, policy, latency_ ? &*latency_ : nullptr);
  report["episodes"] = nlohmann::json::array();
  for (const EpisodeRecord& e : episodes_) report["episodes"].push_back(EpisodeToJson(e));
  if (extra.is_object()) report.update(extra);
  ACS_RETURN_IF_ERROR(WriteText(out.report_path, report.dump(2) + "\n"));
  return out;
}

}  // namespace acs
