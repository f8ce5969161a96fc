// The searching phase of a job: the search session run from its checkpoint with periodic
// checkpoints, the best policy exported into the blob store and the top-k kept for
// verification (part of JobScheduler, server/jobs.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agents/search_session.h"
#include "devices/runtime/runtime.h"
#include "predictors/predictor.h"
#include "server/jobs.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;

// How the closed loop rescaled the layers' predictions: "x1.08", or with the own-kernel
// layers refitted apart "x1.08 on aten ops and x0.91 on the runtime's own kernels" (and
// "(x0.85 on its int8 kernels)" when those changed apart), and with the overhead refitted
// ", the overhead outside them 310 us instead of 60 us".
std::string VerifiedRefit(const LatencyBudget& b) {
  char text[240];
  int n = 0;
  if (b.verified_int8_scale != b.verified_own_scale) {
    n = std::snprintf(text, sizeof text,
                      "x%.2f on aten ops and x%.2f on the runtime's own kernels (x%.2f on its int8 kernels)",
                      b.verified_scale, b.verified_own_scale, b.verified_int8_scale);
  } else if (b.verified_own_scale != 1) {
    n = std::snprintf(text, sizeof text, "x%.2f on aten ops and x%.2f on the runtime's own kernels", b.verified_scale,
                      b.verified_own_scale);
  } else {
    n = std::snprintf(text, sizeof text, "x%.2f", b.verified_scale);
  }
  if (b.overhead_before_refit_us >= 0 && n > 0 && n < static_cast<int>(sizeof text)) {
    std::snprintf(text + n, sizeof text - n, ", the overhead outside them %.0f us instead of %.0f us", b.overhead_us,
                  b.overhead_before_refit_us);
  }
  return text;
}

// Episodes each closed-loop round adds to the search.
int RoundEpisodes(const JobRequest& r, const SchedulerOptions& o) {
  return std::max(1, static_cast<int>(std::lround(r.episodes * o.round_episodes)));
}

}  // namespace

Status JobScheduler::Search(JobRecord& job, const JobRequest& request, JobProgress& progress) {
  SearchSessionOptions o;
  ACS_ASSIGN_OR_RETURN(o.model_path, blobs_->PathOf(request.model_sha256));
  ACS_ASSIGN_OR_RETURN(o.data_path, ReadableDatasetPath(request));
  o.input_shape = request.input_shape;
  ACS_ASSIGN_OR_RETURN(o.data, DataOptionsOf(request, o.data_path));
  ACS_ASSIGN_OR_RETURN(o.test_data_path, ReadableDatasetPath(request, DataRole::kTest));
  o.budget_kind = request.budget_kind;
  o.budget_ratio = request.budget_ratio;
  if (request.budget_kind == "latency") {
    ACS_ASSIGN_OR_RETURN(o.predictor, LatestPredictor(measurements_, progress.device_class));
    // Named fields: the switches (refit_overhead, int8_scale) keep their defaults.
    o.measured.dense_us = progress.dense_calibration_us;
    o.measured.uncompressed_us = progress.runtime_calibration_us;
    o.measured.outside_layers_share = progress.outside_layers_share;
    for (const auto& [text, ratio] : progress.probe_policies) {
      ACS_ASSIGN_OR_RETURN(Policy policy, Policy::FromJson(text));
      o.measured.probes.push_back({std::move(policy), ratio});
    }
    if (!progress.earlier_policies_looked_up && measurements_) {
      ACS_ASSIGN_OR_RETURN(progress.earlier_policies,
                           EarlierMeasuredPolicies(*measurements_, request, progress.device_class));
      progress.earlier_policies_looked_up = true;
      ACS_RETURN_IF_ERROR(Save(job, progress));
    }
    for (const auto* list : {&progress.earlier_policies, &progress.measured_policies}) {
      for (const auto& [text, ratio] : *list) {
        ACS_ASSIGN_OR_RETURN(Policy policy, Policy::FromJson(text));
        o.measured.verified.push_back({std::move(policy), ratio});
      }
    }
  }
  o.threads = request.threads;
  o.runtime_export = [threads = request.threads](const ImportedModel& model, const Policy& policy,
                                                 const CompressedModel& compressed,
                                                 const std::string& dir) -> StatusOr<std::string> {
    runtime::RuntimeOptions options;
    options.threads = threads;
    options.optimize_dense = false;  // Save writes the graph before optimize_for_inference
    ACS_ASSIGN_OR_RETURN(runtime::RuntimeModel rt, runtime::CompileForRuntime(model, policy, compressed, options));
    const std::string path = (fs::path(dir) / kRuntimeModelFile).string();
    ACS_RETURN_IF_ERROR(rt.Save(path));
    return path;
  };
  o.agent = request.agent;
  o.episodes = request.episodes + progress.round * RoundEpisodes(request, options_);
  o.agent_episodes = request.episodes;
  o.seed = request.seed;
  DatasetOptions first = FitToInput(request.input_shape, o.data);
  first.limit = 1;
  first.shuffle_seed = 0;  // for the count
  ACS_ASSIGN_OR_RETURN(Dataset sample, LoadDataset(o.data_path, first));
  ACS_ASSIGN_OR_RETURN(SplitCounts split, SplitOf(request, sample.total));
  o.calibration_samples = split.calibration;
  o.validation_samples = split.validation;
  ACS_ASSIGN_OR_RETURN(o.space, SearchSpaceOf(request));
  o.skip = request.skip_layers;
  if (request.fine_tune) {
    o.fine_tune_epochs = options_.fine_tune_epochs;
    o.fine_tune_samples = split.fine_tune;
    if (options_.fine_tune_distill >= 0) o.fine_tune_distill = options_.fine_tune_distill;
  }
  StatusOr<std::unique_ptr<SearchSession>> created = SearchSession::Create(o);
  if (!created.ok() && created.status().code() == StatusCode::kFailedPrecondition && progress.round > 0) {
    // The retrained predictor finds the budget out of reach: the last result stands.
    if (!progress.kept_result.empty()) {
      ACS_RETURN_IF_ERROR(RestoreKeptResult(job, progress));
      return SetState(job, kJobSucceeded, "the earlier result stands (" + created.status().message() + ")");
    }
    job.error = progress.budget_outcome + "; the retrained predictor then found the budget out of reach (" +
                created.status().message() + ")";
    return SetState(job, kJobBudgetNotMet, job.error);
  }
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<SearchSession> session, std::move(created));
  // The checkpoint: the episode log in the store (job_episodes), a row appended as each
  // episode finishes, and in job.checkpoint a snapshot of the agent covering its first N
  // rows, rewritten at most every checkpoint_seconds. Rows past the snapshot (a crash
  // between the two) are dropped at the resume and their episodes re-run.
  size_t logged = 0;  // the session's episodes in the store's log
  auto save_log = [&]() -> Status {
    std::vector<std::string> rows;
    for (size_t i = logged; i < session->episodes().size(); ++i) {
      rows.push_back(session->EpisodeJson(static_cast<int>(i)));
    }
    ACS_RETURN_IF_ERROR(host_->PutJobEpisodes(job.id, static_cast<int64_t>(logged), rows));
    logged = session->episodes().size();
    return Status::Ok();
  };
  if (job.checkpoint.empty()) {
    std::string message =
        "data: " + split.ToString() + " of the " + std::to_string(sample.total) + " samples" +
        (o.data.shuffle_seed > 0 ? ", shuffled by seed " + std::to_string(o.data.shuffle_seed) : ", in their order") +
        (o.test_data_path.empty() ? "" : "; the downloaded model is tested on a test set");
    if (progress.round == 0 && !progress.earlier_policies.empty() && session->latency()) {
      message += "; the layers' predictions " + VerifiedRefit(*session->latency()) + " to match " +
                 std::to_string(progress.earlier_policies.size()) + " policies of this model measured by earlier jobs";
    }
    if (progress.round == 0 && session->latency() && session->latency()->probe_policies > 0) {
      char scale[240];
      const LatencyBudget& b = *session->latency();
      char int8[64] = "";
      if (b.int8_kernel_factor != b.own_kernel_factor) {
        std::snprintf(int8, sizeof int8, " (its int8 kernels x%.2f)", b.int8_kernel_factor);
      }
      std::snprintf(scale, sizeof scale,
                    "; the layers on the runtime's own kernels priced x%.2f of those on aten ops%s, fitted on %d probe "
                    "policies",
                    b.own_kernel_factor, int8, b.probe_policies);
      message += scale;
      const std::string context = session->latency()->context.Describe();
      if (!context.empty()) message += ", " + context;
    }
    ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobSearching}, {"message", message}}));
  } else {
    ACS_ASSIGN_OR_RETURN(int needed, SearchSession::LoggedEpisodesNeeded(job.checkpoint));
    ACS_ASSIGN_OR_RETURN(std::vector<std::string> log, host_->JobEpisodes(job.id, needed));
    ACS_RETURN_IF_ERROR(session->Restore(job.checkpoint, log));
    logged = needed;  // 0 for a format-1 checkpoint, whose log is inside it
    std::string message = "resumed after episode " + std::to_string(session->episodes().size());
    if (progress.round > 0) {
      message += " (round " + std::to_string(progress.round + 1) + ": " +
                 std::to_string(session->episodes_over_budget()) + " earlier policies over the budget under the " +
                 "new predictions";
      if (session->latency() && session->latency()->verified_policies > 0) {
        message += ", its layers' predictions " + VerifiedRefit(*session->latency()) + " to match " +
                   std::to_string(session->latency()->verified_policies) + " measured policies";
      }
      message += ", up to episode " + std::to_string(o.episodes) + ")";
    }
    ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobSearching}, {"message", message}}));
  }
  ACS_RETURN_IF_ERROR(host_->TruncateJobEpisodes(job.id, static_cast<int64_t>(logged)).status());
  if (logged < session->episodes().size()) {  // a format-1 checkpoint: its log moves into the store
    ACS_RETURN_IF_ERROR(save_log());
    job.checkpoint = session->Snapshot();
    ACS_RETURN_IF_ERROR(host_->UpdateJob(job));
  }
  progress.dense_accuracy = session->dense_accuracy();
  if (session->latency()) progress.dense_predicted_us = session->latency()->dense_us;

  const auto start = std::chrono::steady_clock::now();
  auto last_checkpoint = start;
  const size_t resumed_at = session->episodes().size();
  auto set_best = [&](const EpisodeRecord& best) {
    progress.best_reward = best.score.reward;
    progress.best_accuracy = best.score.accuracy;
    progress.best_cost_ratio = best.cost_ratio;
    progress.best_predicted_us = session->PredictedUs(best.policy);
  };
  Status saved = Status::Ok();
  ACS_RETURN_IF_ERROR(session->Run(
      [&](const EpisodeRecord& e, const EpisodeRecord& best) {
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const double run = static_cast<double>(session->episodes().size() - resumed_at);
        progress.episodes_done = e.episode + 1;
        set_best(best);
        progress.eta_seconds = elapsed / run * (o.episodes - e.episode - 1);
        // The event, the log's row, then the snapshot: an episode a snapshot covers always
        // has its row and its event (a crash in between re-runs the episode and repeats the
        // event).
        saved = Event(job.id, kEventEpisode,
                      {{"episode", e.episode},
                       {"reward", e.score.reward},
                       {"accuracy", e.score.accuracy},
                       {"cost_ratio", e.cost_ratio},
                       {"best_accuracy", best.score.accuracy},
                       {"eta_seconds", progress.eta_seconds}});
        if (saved.ok()) saved = save_log();
        if (!saved.ok()) return;
        if (std::chrono::duration<double>(now - last_checkpoint).count() >= options_.checkpoint_seconds) {
          job.checkpoint = session->Snapshot();
          job.progress_json = progress.ToJson().dump();
          saved = host_->UpdateJob(job);
          last_checkpoint = now;
        } else {
          saved = host_->UpdateJobProgress(job.id, progress.ToJson().dump());
        }
      },
      [&] { return !saved.ok() || Interrupted(job.id); }));
  ACS_RETURN_IF_ERROR(saved);
  if (!session->stopped() && !progress.kept_result.empty()) {
    // A round for accuracy: the agent rarely spends the room the refit gave within a few
    // episodes, so the best policy is also relaxed to the budget.
    const EpisodeRecord before = session->episodes()[session->best()];
    ACS_ASSIGN_OR_RETURN(int filled, session->FillBudget());
    if (filled >= 0) {
      const EpisodeRecord& e = session->episodes()[filled];
      const bool won = session->best() == filled;
      char line[240];
      std::snprintf(line, sizeof line,
                    won ? "the best policy relaxed to the budget: %.2f%% at %.3fx of the dense cost (it had %.2f%% at "
                          "%.3fx)"
                        : "the best policy relaxed to the budget scored %.2f%% at %.3fx of the dense cost; the best "
                          "stays %.2f%% at %.3fx",
                    100 * e.score.accuracy, e.cost_ratio, 100 * before.score.accuracy, before.cost_ratio);
      ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobSearching}, {"message", line}}));
      set_best(session->episodes()[session->best()]);
    }
  }
  ACS_RETURN_IF_ERROR(save_log());  // FillBudget's episode
  job.checkpoint = session->Snapshot();
  job.progress_json = progress.ToJson().dump();
  if (session->stopped()) return host_->UpdateJob(job);

  // Export the best policy and keep the top-k for verification.
  const EpisodeRecord& best = session->episodes()[session->best()];
  const fs::path dir = fs::path(options_.work_dir) / job.id;
  ACS_ASSIGN_OR_RETURN(ExportedSearch exported, session->Export(best.policy, dir.string(), {{"job", job.id}}));
  progress.artifacts.clear();
  for (const std::string& path :
       {exported.policy_path, exported.model_path, exported.runtime_model_path, exported.report_path}) {
    if (path.empty()) continue;
    ACS_ASSIGN_OR_RETURN(BlobWriter::Committed blob, host_->PutBlobFile(job.id, path));
    progress.artifacts.push_back({fs::path(path).filename().string(), blob.sha256, blob.bytes});
  }
  progress.exported_accuracy = exported.exported_accuracy;
  if (exported.test_samples > 0) {
    progress.test_accuracy = exported.test_accuracy;
    progress.dense_test_accuracy = exported.dense_test_accuracy;
    progress.test_samples = exported.test_samples;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  progress.verifications.clear();
  progress.verify_policies.clear();
  std::vector<int> top = session->TopK(request.top_k);
  // The exported policy is rank 0.
  top.erase(std::remove(top.begin(), top.end(), session->best()), top.end());
  top.insert(top.begin(), session->best());
  if (static_cast<int>(top.size()) > request.top_k) top.resize(request.top_k);
  for (int i : top) {
    const EpisodeRecord& e = session->episodes()[i];
    Verification v;
    v.rank = static_cast<int>(progress.verifications.size());
    v.policy_hash = e.policy.Hash();
    v.accuracy = i == session->best() ? exported.exported_accuracy : e.score.accuracy;
    v.predicted_us = session->PredictedUs(e.policy);
    progress.verifications.push_back(v);
    progress.verify_policies.push_back(e.policy.ToJson(-1));
  }
  // More runs of the exported policy, in tasks of their own (a worker process and the
  // host's state differ more between tasks than between the rounds of one task); the
  // other ranks get theirs only when a later round will refit on them (Verify).
  for (int run = 1; run < options_.verify_runs && !progress.verifications.empty(); ++run) {
    Verification v = progress.verifications[0];
    v.run = run;
    progress.verifications.push_back(v);
  }
  ACS_RETURN_IF_ERROR(Save(job, progress));
  char line[200];
  std::snprintf(line, sizeof line, "search done: best %.2f%% (dense %.2f%%), exported %.2f%%",
                100 * best.score.accuracy, 100 * progress.dense_accuracy, 100 * exported.exported_accuracy);
  std::string done = line;
  if (exported.int8_layers > 0) {
    done += " (compressed.pt " + exported.int8_export + ")";
  }
  if (exported.fine_tune_kept_epoch > 0) {
    std::snprintf(line, sizeof line, " (fine-tuned from %.2f%%)", 100 * exported.accuracy_before_fine_tune);
    done += line;
  } else if (exported.fine_tune_kept_epoch == 0) {
    std::snprintf(line, sizeof line, " (not fine-tuned: no epoch of fine-tuning scored above %.2f%%)",
                  100 * exported.accuracy_before_fine_tune);
    done += line;
  }
  if (exported.test_samples > 0) {
    std::snprintf(line, sizeof line, "; on the test set (%lld samples) %.2f%% (dense %.2f%%)",
                  static_cast<long long>(exported.test_samples), 100 * exported.test_accuracy,
                  100 * exported.dense_test_accuracy);
    done += line;
  }
  ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobSearching}, {"message", done}}));
  return SetState(job, kJobVerifying,
                  progress.device_class.empty() || progress.verifications.empty()
                      ? "no verification (no device class or top_k 0)"
                      : "measuring " + std::to_string(progress.verify_policies.size()) + " policies on " +
                            progress.device_class + " (the exported one in " +
                            std::to_string(progress.verifications.size() - progress.verify_policies.size() + 1) +
                            " runs)");
}

Status JobScheduler::RestoreKeptResult(JobRecord& job, JobProgress& progress) {
  progress.TakeResultOf(JobProgress::FromJson(progress.kept_result));
  progress.kept_result.clear();
  return Save(job, progress);
}

}  // namespace acs::server
