// The records of a job as the store keeps them (JobRecord::request_json and
// progress_json): what was submitted, and how far it got. No gRPC, no LibTorch.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace acs::server {

// What a client submits, as stored in JobRecord::request_json.
struct JobRequest {
  std::string model_sha256;             // an uploaded model
  std::vector<int64_t> input_shape;     // e.g. {1, 1, 28, 28}
  std::string dataset_sha256;           // an uploaded dataset, or ...
  std::string dataset_name;             // ... one the server has (SchedulerOptions::datasets_dir)
  std::string device_class;             // empty: the only registered class, if any
  std::string budget_kind = "latency";  // "latency", "flops", "params" or "bytes"
  double budget_ratio = 0.5;            // in (0, 1]
  std::string agent = "amc";
  std::vector<std::string> patterns;  // empty: the search's defaults
  std::vector<int> block_sizes;
  std::vector<std::string> precisions;
  double max_sparsity = 0;  // 0: default
  std::vector<std::string> skip_layers;
  int episodes = 100;
  uint64_t seed = 1;
  bool fine_tune = false;  // fine-tune the exported model (labelled data only)
  int threads = 1;
  int top_k = 3;  // policies verified on workers
  // The preprocessing spec's steps (core/preprocess.h), validated at Submit; empty: the
  // images fitted to input_shape.
  nlohmann::json preprocess = nlohmann::json::array();
  // The split (core/data_split.h's JSON), validated at Submit; empty: the defaults.
  nlohmann::json split = nlohmann::json::object();
  std::string test_dataset_sha256;  // a test set uploaded, or ...
  std::string test_dataset_name;    // ... one the server has; both empty: none
  // Wall-clock seconds its runners may run it in all (JobProgress::run_seconds); 0: the
  // server's limit, which also caps a larger one (JobTimeLimit, server/jobs.h).
  int64_t time_limit_seconds = 0;

  nlohmann::json ToJson() const;
  static StatusOr<JobRequest> FromJson(const std::string& text);
};

struct ArtifactRef {
  std::string name;  // "policy.json", "compressed.pt", "compressed.acs.pt", "report.json"
  std::string sha256;
  int64_t bytes = 0;
};

// One policy measured end to end on a worker.
struct Verification {
  int rank = 0;  // 0 = the exported (best) policy
  int run = 0;   // a policy is measured in several tasks: which
  std::string policy_hash;
  std::string task_id;
  double accuracy = 0;      // the policy's search accuracy; rank 0: the exported model's
  double predicted_us = 0;  // 0 without a latency predictor
  double measured_us = 0;   // runtime median, 0 until measured
  double dense_measured_us = 0;
  double stock_us = 0;     // compressed.pt run by LibTorch alone (stock PyTorch), same task
  double acs_file_us = 0;  // compressed.acs.pt loaded back with the acs_rt ops, same task
  std::string error;       // the task's error when it failed
};

// JobRecord::progress_json.
struct JobProgress {
  int episodes_done = 0;
  double best_reward = 0, best_accuracy = 0, dense_accuracy = 0;
  double exported_accuracy = 0;                       // of the model the user downloads (compressed.pt as exported,
                                                      // fine-tuned or not) on the validation samples; 0 before export
  double test_accuracy = 0, dense_test_accuracy = 0;  // on the request's test set
  int64_t test_samples = 0;                           // 0: no test set, or not exported yet
  double best_cost_ratio = 0;
  double best_predicted_us = 0, dense_predicted_us = 0;
  double best_measured_us = 0, dense_measured_us = 0;
  double stock_measured_us = 0;     // the exported policy's compressed.pt in stock PyTorch, same run
  double acs_file_measured_us = 0;  // its compressed.acs.pt with the acs_rt ops, same run
  double eta_seconds = 0;
  std::string device_class;  // resolved
  std::vector<ArtifactRef> artifacts;
  std::vector<Verification> verifications;
  std::vector<std::string> verify_policies;  // policy JSON of each verified rank
  // Latency jobs, before the search: the model's own layers measured on the device class
  // (a campaign that retrains its predictor) and the dense model measured end to end.
  bool layers_campaign_started = false;
  bool layers_measured = false;
  std::string calibration_task;       // the measure-model task of the dense model (profiled)
  std::vector<std::string> calibration_repeats;  // more of them, unprofiled (verify_runs in all)
  double dense_calibration_us = 0;    // their fastest runs' median, dense baseline: the budget's 1.0x
  double runtime_calibration_us = 0;  // the runtime, nothing compressed, in the dense baseline's
                                      // units (that x their median ratio): anchors the predictions
  double outside_layers_share = 0;    // of a run on plain tensors, the share outside conv /
                                      // linear ops and batch norms
  std::vector<std::string> probe_tasks;  // measure-model tasks of the model's ProbePolicies, each
                                         // policy verify_runs times
  // Their measured ratios (each policy's median over its tasks of the runtime / dense baseline
  // medians): ModelCalibration::probes.
  std::vector<std::pair<std::string, double>> probe_policies;  // policy JSON, ratio
  // The closed loop: a verified result over its latency budget has its policies' layers
  // measured, the predictor retrained and the search continued, for a bounded number of
  // rounds. round counts the rounds started (0 = the first search).
  int round = 0;
  bool round_campaign_started = false;
  std::string budget_outcome;  // the last verification's miss, as MeasuredBudgetOutcome says it
  // Every policy verified in an earlier round, with its measured ratio (median run): the
  // next round refits the layers' predictions on them (ModelCalibration::verified).
  std::vector<std::pair<std::string, double>> measured_policies;  // policy JSON, ratio
  // Policies of the same model (sha256, input shape, threads) that earlier jobs measured on
  // the device class, looked up once before the first search and kept for resumes: every
  // round refits on them too, so a model seen before starts with its correction.
  std::vector<std::pair<std::string, double>> earlier_policies;  // policy JSON, ratio
  bool earlier_policies_looked_up = false;
  // A result that beat its budget by more than the tolerance, kept (this progress as JSON,
  // without kept_result) while a later round searches for a more accurate one; empty when
  // none is kept.
  std::string kept_result;
  int runner_deaths = 0;  // job runner processes that ended abnormally
  // Wall-clock seconds its runner processes ran, summed by the server when each one ends
  // (a runner's own writes of it are replaced): what a time limit counts.
  double run_seconds = 0;

  nlohmann::json ToJson() const;
  static JobProgress FromJson(const std::string& text);  // defaults for malformed text
  // Makes `kept`'s result (artifacts, verifications and the best policy's figures) this
  // progress's result; the rest (episodes, rounds, calibration) stays.
  void TakeResultOf(const JobProgress& kept);
};

// A latency job's result meets its budget when the exported policy, timed alternately with
// the dense model on a worker, runs at most budget x (1 + this) of the dense latency.
inline constexpr double kMeasuredBudgetTolerance = 0.05;

// Of the measured runs of verified rank `rank`, the one whose runtime / dense ratio is the
// median (the lower of the two middle ones); null when none was measured.
const Verification* MedianRun(const JobProgress& progress, int rank);

// Appends unmeasured runs (no task yet) of every verified rank that has fewer than `runs`,
// each a copy of the rank's first with the next run number: before a later round refits
// on the ranks' medians. False when no rank lacked a run.
bool AddRunsOfEveryRank(JobProgress& progress, int runs);

// {"met": true} for jobs without a latency budget or measurement; otherwise {"kind",
// "budget_ratio", "allowed_ratio", "measured_ratio" (the exported policy's median run),
// "runs", "ratio_min", "ratio_max" (over its runs), "predicted_ratio" (when predicted),
// "met", "under" (faster than budget x (1 - the tolerance): the search over-compressed),
// "message" (when not met: "budget not met: measured 0.83x of dense latency ...")}; for a
// latency job whose exported policy has no measured run: {"met": false, "unmeasured": true,
// "message"}.
nlohmann::json MeasuredBudgetOutcome(const JobRequest& request, const JobProgress& progress);

// What a job does once its policies are verified, given MeasuredBudgetOutcome and whether
// a round is left (rounds started < the limit, and a checkpoint to continue from).
enum class AfterVerification {
  kSucceed,            // met (or nothing to judge); a kept earlier result is dropped
  kSearchForAccuracy,  // met "under" the budget, no result kept yet: keep this one and
                       // search on with predictions refitted on the measured policies
  kKeepEarlier,        // a kept result is better: the new one missed or is less accurate
  kSearchForBudget,    // missed: measure the verified layers, retrain, refit, search on
  kBudgetNotMet,       // missed with no round left
};
AfterVerification NextAfterVerification(const JobProgress& progress, const nlohmann::json& outcome, bool round_left);

}  // namespace acs::server
