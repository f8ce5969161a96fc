// One search from a model file to exported artifacts (DESIGN §4), shared by `acs search`
// and the server's jobs: import the model at an input shape, load calibration and
// validation slices of a dataset, build the cost model (a latency predictor or FLOPs /
// params / bytes), the environment, the agent and the accuracy reward; run episodes
// (resumable from a checkpoint, stoppable between episodes); export the best policy.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/latency_cost.h"
#include "agents/make_agent.h"
#include "agents/reward.h"
#include "agents/search.h"
#include "core/dataset.h"
#include "core/fine_tune.h"
#include "core/importer.h"

namespace acs {

struct SearchSessionOptions {
  std::string model_path;             // TorchScript file (required)
  Shape input_shape;                  // e.g. {1, 1, 28, 28} (required)
  std::string data_path;              // a dataset LoadDataset reads (required)
  DatasetOptions data;                // split, pad, normalization; limit / offset and the
                                      // fit to the input shape are set by the session
  std::string budget_kind = "flops";  // "latency", "flops", "params" or "bytes"
  double budget_ratio = 0.5;          // share of the dense model's cost, in (0, 1]
  // Latency budgets: the device class's trained predictor (required then).
  std::shared_ptr<const predictors::TrainedPredictor> predictor;
  // Latency budgets: the model measured on the device class (the dense baseline, the
  // uncompressed runtime), which anchors the budget (MakeLatencyBudget); zeros = not measured.
  ModelCalibration measured;
  int threads = 1;               // threads the model will run with (latency)
  std::string agent = "random";  // MakeAgent's names
  int episodes = 100;            // >= 1
  int agent_episodes = 0;        // the agent's schedule (uniform grid, warm-up cap);
                                 // 0 = episodes (a continued search keeps its first)
  uint64_t seed = 1;
  int warmup = -1;  // amc / agmc warm-up episodes; < 0: DdpgOptions' default
  RewardKind reward = RewardKind::kAccuracy;
  // Before the agent's first episode, one episode per precision of the space after the
  // first: that precision on every layer with no sparsity (the action wall adds what the
  // budget needs), as one would quantize first and prune what is left. They count among
  // the episodes; the agent does not learn from them.
  bool precision_seeds = true;
  int64_t calibration_samples = 256;  // the first N of the split
  int64_t validation_samples = 500;   // the next N, disjoint from calibration
  SearchSpace space;                  // EnvOptions' defaults
  std::vector<std::string> skip;      // layer names never compressed
  // Export: fine-tune the compressed model (core/fine_tune) for this many epochs on the
  // next fine_tune_samples labelled samples of the split (after calibration and
  // validation); 0 = no fine-tuning. The weights of the epoch (or those before) that score
  // best on the validation samples are kept.
  int fine_tune_epochs = 0;
  int64_t fine_tune_samples = 5000;
  double fine_tune_learning_rate = FineTuneOptions{}.learning_rate;
  // Distillation from the dense model while fine-tuning (FineTuneOptions::distill_weight):
  // 0 = cross-entropy on the labels alone; unlabelled data always distills alone (1).
  double fine_tune_distill = FineTuneOptions{}.distill_weight;
  bool fine_tune_int8 = FineTuneOptions{}.int8_aware;  // int8 layers train quantization-aware
  // A test set, read whole with `data`'s preprocessing and test_split (no shuffle); when
  // set, the export scores the dense and the exported model on it. Empty = none.
  std::string test_data_path;
  std::string test_split = "test";  // for a directory of IDX files
  // Export: also writes the model as a device's runtime compiles it into the export
  // directory (e.g. compressed.acs.pt, devices/runtime) from the imported model, the policy
  // and the exported model before its int8 layers become PyTorch's quantized ops (after
  // fine-tuning); returns the file's path. Null: none.
  std::function<StatusOr<std::string>(const ImportedModel&, const Policy&, const CompressedModel&,
                                      const std::string& dir)>
      runtime_export;
};

struct ExportedSearch {
  std::string policy_path, model_path, report_path;  // in the export directory
  std::string runtime_model_path;                    // SearchSessionOptions::runtime_export's; empty: none
  double exported_accuracy = 0;                      // of the compressed model, full reconstruction (and fine-tuning)
  double simulated_accuracy = 0;                     // of the same before its int8 layers became quantized ops
  std::string int8_export;                           // QuantizedExportSummary of compressed.pt
  int int8_layers = 0;                               // of compressed.pt: as quantized ops or in fp32 (see int8_export)
  double accuracy_before_fine_tune = -1;             // -1 without fine-tuning
  int64_t fine_tune_kept_epoch = -1;                 // the epoch whose weights were kept, 0 = none
                                                     // improved on those before; -1 without
  // On the test set (SearchSessionOptions::test_data_path); -1 without one.
  double test_accuracy = -1, dense_test_accuracy = -1;
  int64_t test_samples = 0;
  std::string test_source;
};

class SearchSession {
 public:
  // Errors name the problem: the importer's (corrupt model, wrong input shape, unknown
  // op), the dataset's, an unmeetable budget (FailedPrecondition), a latency budget
  // without predictor, an unknown agent.
  static StatusOr<std::unique_ptr<SearchSession>> Create(const SearchSessionOptions& options);

  // Runs the remaining episodes; on_episode after each; stop() is checked before each
  // episode and ends the run early (then stopped() is true).
  Status Run(const std::function<void(const EpisodeRecord& episode, const EpisodeRecord& best)>& on_episode,
             const std::function<bool()>& stop = nullptr);
  bool stopped() const { return stopped_; }
  bool finished() const { return static_cast<int>(episodes_.size()) >= options_.episodes; }

  // A checkpoint comes in two parts, so that a long search writes each episode once: the
  // episode log, EpisodeJson(i) for every episode, which the caller saves as episodes
  // finish, and a Snapshot(), the agent's state and how many episodes it covers (format 2;
  // its size does not grow with the episodes). Both are JSON text. Restoring both on a
  // session of the same options continues as if never interrupted.
  std::string Snapshot() const;
  std::string EpisodeJson(int i) const;  // 0 <= i < episodes().size()
  // How many logged episodes Restore needs with `checkpoint`: the count a snapshot covers,
  // 0 for a format-1 checkpoint (the agent's state and every episode in one blob, as
  // written before snapshots), which holds its own. InvalidArgument when malformed.
  static StatusOr<int> LoggedEpisodesNeeded(const std::string& checkpoint);
  // Restores a snapshot and the first episodes of the log (`episodes`, in order); any
  // beyond the snapshot's count (finished after it, before a crash) are ignored, since the
  // agent's state does not cover them: Run re-runs them, as if never interrupted. A
  // format-1 checkpoint restores from its own episodes (`episodes` is then ignored).
  // Restore costs the restored policies again under this session's cost model: those over
  // its budget (a retrained latency predictor) stay in the log but are never best() nor in
  // TopK(). InvalidArgument for a malformed checkpoint, one of another agent, or a log
  // shorter than the snapshot's count or out of order.
  Status Restore(const std::string& checkpoint, const std::vector<std::string>& episodes = {});

  // Compresses `policy` with the export's full reconstruction (then fine-tunes it when the
  // options say so) and writes policy.json,
  // compressed.pt and report.json (the report: options, dense / exported accuracy,
  // budget, Pareto front, every episode, plus `extra` merged at the top level) into dir.
  StatusOr<ExportedSearch> Export(const Policy& policy, const std::string& dir, const nlohmann::json& extra = {});

  const std::vector<EpisodeRecord>& episodes() const { return episodes_; }
  // Index of the best episode within the budget, -1 before the first.
  int best() const { return best_; }
  // Indices of distinct policies within the budget by decreasing reward, at most k.
  std::vector<int> TopK(int k) const;
  // Restored episodes whose policy is over the budget under this session's cost model.
  int episodes_over_budget() const;

  // Spends what the best policy leaves of the budget: its layers' sparsities (not N:M, not
  // precision) scaled down as far as its cost stays within the budget (bisection on the
  // cost model: one factor for all, then layer by layer, the sparsest first), scored and
  // added as one more episode when it differs. Returns that episode's index, or -1 when
  // there was nothing to relax.
  StatusOr<int> FillBudget();

  const SearchSessionOptions& options() const { return options_; }
  const Graph& graph() const { return model_->graph; }
  const Env& env() const { return *env_; }
  const Agent& agent() const { return *agent_; }
  double dense_accuracy() const { return dense_accuracy_; }
  // Set for latency budgets.
  const std::optional<LatencyBudget>& latency() const { return latency_; }
  // Predicted whole-model microseconds of a policy (latency budgets; 0 otherwise).
  double PredictedUs(const Policy& policy) const;
  const Dataset& calibration() const { return calibration_; }
  const Dataset& validation() const { return validation_; }
  std::string data_source() const { return data_source_; }

 private:
  SearchSession() = default;
  SearchSessionOptions options_;
  std::shared_ptr<ImportedModel> model_;
  std::shared_ptr<CostModel> cost_;
  std::optional<LatencyBudget> latency_;
  std::unique_ptr<Env> env_;
  std::unique_ptr<Agent> agent_;
  Dataset calibration_, validation_;
  std::string data_source_;
  std::unique_ptr<AccuracyReward> reward_;
  double dense_accuracy_ = 0;
  bool WithinBudget(int episode) const;
  // The policy of one rollout of the environment at `precision`, no sparsity asked.
  Policy PrecisionSeed(Precision precision);
  // Scores `policy`, appends it to the episodes and updates best(); its index.
  StatusOr<int> AddScoredEpisode(const Policy& policy);
  std::vector<EpisodeRecord> episodes_;
  std::vector<bool> over_budget_;  // per episode
  int best_ = -1;
  bool stopped_ = false;
};

}  // namespace acs
