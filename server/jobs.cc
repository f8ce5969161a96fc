#include "server/jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agents/latency_cost.h"
#include "agents/make_agent.h"
#include "agents/search_session.h"
#include "core/importer.h"
#include "core/torchscript_model.h"
#include "predictors/predictor.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;

const std::set<std::string> kAgents = {"amc", "agmc", "random", "evo", "uniform"};
const std::set<std::string> kBudgets = {"latency", "flops", "params", "bytes"};


std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Errors of a model or dataset supplied by the client are the client's to fix.
Status AsInvalid(const Status& s, const std::string& what) {
  if (s.ok()) return s;
  return Status::InvalidArgument(what + ": " + s.message());
}

StatusOr<std::shared_ptr<const predictors::TrainedPredictor>> LatestPredictor(predictors::MeasurementStore* store,
                                                                              const std::string& device_class) {
  ACS_ASSIGN_OR_RETURN(std::optional<predictors::StoredPredictor> stored,
                       predictors::LoadLatestPredictor(*store, device_class));
  return stored ? stored->predictor : nullptr;
}

// Episodes each closed-loop round adds to the search.
int RoundEpisodes(const JobRequest& r, const SchedulerOptions& o) {
  return std::max(1, static_cast<int>(std::lround(r.episodes * o.round_episodes)));
}

}  // namespace

StatusOr<SearchSpace> SearchSpaceOf(const JobRequest& r) {
  SearchSpace space;
  if (!r.patterns.empty()) {
    space.patterns.clear();
    for (const std::string& p : r.patterns) {
      ACS_ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(p));
      space.patterns.push_back(pattern);
    }
  }
  if (!r.precisions.empty()) {
    space.precisions.clear();
    for (const std::string& p : r.precisions) {
      ACS_ASSIGN_OR_RETURN(Precision precision, ParsePrecision(p));
      space.precisions.push_back(precision);
    }
  }
  if (!r.block_sizes.empty()) space.block_sizes = r.block_sizes;
  if (r.max_sparsity > 0) space.max_sparsity = r.max_sparsity;
  return space;
}

JobScheduler::JobScheduler(ServerStore* store, BlobStore* blobs, Farm* farm, Campaigns* campaigns,
                           predictors::MeasurementStore* measurements, SchedulerOptions options)
    : store_(store), blobs_(blobs), farm_(farm), campaigns_(campaigns), measurements_(measurements),
      options_(std::move(options)) {}

JobScheduler::~JobScheduler() { Stop(); }

StatusOr<std::string> JobScheduler::DatasetPath(const JobRequest& r) const {
  if (!r.dataset_sha256.empty()) {
    StatusOr<std::string> path = blobs_->PathOf(r.dataset_sha256);
    if (!path.ok()) return Status::InvalidArgument("dataset " + r.dataset_sha256 + " was not uploaded to this server");
    return path;
  }
  if (r.dataset_name.empty()) return Status::InvalidArgument("a job needs a dataset (an uploaded one or a name)");
  if (r.dataset_name.find('/') != std::string::npos || r.dataset_name.find("..") != std::string::npos) {
    return Status::InvalidArgument("dataset name '" + r.dataset_name + "' must be a plain name");
  }
  const fs::path path = fs::path(options_.datasets_dir) / r.dataset_name;
  if (!fs::exists(path)) {
    return Status::InvalidArgument("the server has no dataset named '" + r.dataset_name + "' (in " +
                                   options_.datasets_dir + ")");
  }
  return path.string();
}

StatusOr<std::string> JobScheduler::ResolveDeviceClass(const std::string& requested) const {
  ACS_ASSIGN_OR_RETURN(std::vector<DeviceView> devices, farm_->Devices());
  std::set<std::string> classes;
  for (const DeviceView& d : devices) classes.insert(d.worker.machine_id);
  std::string known;
  for (const std::string& c : classes) known += (known.empty() ? "" : ", ") + c;
  if (!requested.empty()) {
    if (classes.count(requested)) return requested;
    return Status::FailedPrecondition("no worker of device class '" + requested + "' has registered" +
                                      (known.empty() ? std::string(" (none has)") : " (registered: " + known + ")"));
  }
  if (classes.size() == 1) return *classes.begin();
  if (classes.empty()) return std::string();
  return Status::FailedPrecondition("several device classes are registered (" + known + "): name one");
}

Status JobScheduler::CheckModelAndData(const JobRequest& request) {
  auto check = [&]() -> Status {
    // The model must import at the input shape and the dataset must read; the budget must
    // be reachable under the cost model (latency: once the class has a predictor).
    ACS_ASSIGN_OR_RETURN(std::string model_path, blobs_->PathOf(request.model_sha256));
    ACS_ASSIGN_OR_RETURN(std::string data_path, DatasetPath(request));
    ACS_ASSIGN_OR_RETURN(SearchSpace space, SearchSpaceOf(request));
    StatusOr<std::shared_ptr<ImportedModel>> model = ImportTorchScript(model_path, {request.input_shape});
    if (!model.ok()) return AsInvalid(model.status(), "model " + request.model_sha256.substr(0, 12));
    DatasetOptions data = request.input_shape.size() == 4 ? FitToInput(request.input_shape) : DatasetOptions{};
    data.split = "train";
    data.limit = 1;
    StatusOr<Dataset> sample = LoadDataset(data_path, data);
    if (!sample.ok()) return AsInvalid(sample.status(), "dataset");
    if (request.fine_tune && !sample->has_labels()) {
      return Status::InvalidArgument("fine-tuning needs a labelled dataset; " + sample->source + " has no labels");
    }
    std::shared_ptr<CostModel> cost;
    double env_budget = request.budget_ratio;
    if (request.budget_kind == "latency") {
      StatusOr<std::shared_ptr<const predictors::TrainedPredictor>> latest =
          LatestPredictor(measurements_, request.device_class);
      // A blob this build cannot load (older features, damage) is as good as none: the
      // job's own campaign trains a new one before the search.
      if (!latest.ok() && latest.status().code() != StatusCode::kInvalidArgument) return latest.status();
      const std::shared_ptr<const predictors::TrainedPredictor> predictor = latest.ok() ? *latest : nullptr;
      if (predictor) {
        ACS_ASSIGN_OR_RETURN(LatencyBudget lb,
                             MakeLatencyBudget((*model)->graph, *predictor, request.threads, request.budget_ratio));
        cost = lb.cost;
        env_budget = lb.env_budget;
      }
    } else {
      ACS_ASSIGN_OR_RETURN(cost, MakeCostModel(request.budget_kind));
    }
    if (cost) {
      EnvOptions env_options;
      env_options.space = space;
      env_options.skip = request.skip_layers;
      env_options.budget = env_budget;
      ACS_RETURN_IF_ERROR(Env::Create(&(*model)->graph, cost, env_options).status());
    }
    return Status::Ok();
  };
  Status s;
  try {
    s = check();
  } catch (const std::exception& e) {
    s = Status::InvalidArgument("model " + request.model_sha256.substr(0, 12) + ": " + ShortError(e));
  }
  const std::string memory =
      s.ok() ? "" : OutOfMemoryMessage(s.message(), "the check", "importing the model and reading the dataset");
  return memory.empty() ? s : Status::InvalidArgument(memory);
}

StatusOr<JobRecord> JobScheduler::Submit(const std::string& owner, const JobRequest& r) {
  if (r.episodes < 1 || r.episodes > options_.max_episodes) {
    return Status::InvalidArgument("episodes must be in [1, " + std::to_string(options_.max_episodes) + "]");
  }
  if (r.threads < 1 || r.threads > 256) return Status::InvalidArgument("threads must be in [1, 256]");
  if (r.top_k < 0 || r.top_k > 20) return Status::InvalidArgument("top_k must be in [0, 20]");
  if (!kAgents.count(r.agent)) {
    return Status::InvalidArgument("unknown agent '" + r.agent + "' (amc, agmc, random, evo or uniform)");
  }
  if (!kBudgets.count(r.budget_kind)) {
    return Status::InvalidArgument("unknown budget kind '" + r.budget_kind + "' (latency, flops, params or bytes)");
  }
  if (!(r.budget_ratio > 0 && r.budget_ratio <= 1)) return Status::InvalidArgument("the budget ratio must be in (0, 1]");
  if (r.input_shape.size() < 2) return Status::InvalidArgument("input_shape must have a batch and feature dimensions");
  int64_t elements = 1;
  for (int64_t d : r.input_shape) {
    if (d < 1 || d > 65536) return Status::InvalidArgument("input_shape dimensions must be in [1, 65536]");
    elements *= d;
    if (elements > options_.max_input_elements) {
      return Status::InvalidArgument("input shape " + FormatShape(r.input_shape) + " has more than this server's " +
                                     std::to_string(options_.max_input_elements) + " elements per input");
    }
  }
  ACS_ASSIGN_OR_RETURN(std::vector<JobRecord> active,
                       store_->JobsInStates({kJobQueued, kJobPreparing, kJobSearching, kJobVerifying}));
  const auto owned = std::count_if(active.begin(), active.end(), [&](const JobRecord& j) { return j.owner == owner; });
  if (owned >= options_.max_jobs_per_user) {
    return Status::ResourceExhausted(owner + " has " + std::to_string(owned) +
                                     " jobs queued or running, this server's limit per user: wait for one to end "
                                     "or cancel one");
  }
  if (!blobs_->PathOf(r.model_sha256).ok()) {
    return Status::InvalidArgument("model " + r.model_sha256 + " was not uploaded to this server");
  }
  ACS_RETURN_IF_ERROR(DatasetPath(r).status());
  StatusOr<SearchSpace> space = SearchSpaceOf(r);
  if (!space.ok()) return AsInvalid(space.status(), "search space");
  ACS_ASSIGN_OR_RETURN(std::string device_class, ResolveDeviceClass(r.device_class));
  if (r.budget_kind == "latency" && device_class.empty()) {
    return Status::FailedPrecondition("a latency budget needs a device class, and no worker has registered");
  }

  JobRequest stored = r;
  stored.device_class = device_class;
  ACS_RETURN_IF_ERROR(options_.runner_program.empty() ? CheckModelAndData(stored) : CheckInChild(stored));

  JobRecord job;
  job.owner = owner;
  job.state = kJobQueued;
  job.request_json = stored.ToJson().dump();
  JobProgress progress;
  progress.device_class = device_class;
  job.progress_json = progress.ToJson().dump();
  ACS_ASSIGN_OR_RETURN(JobRecord created, store_->CreateJob(job));
  ACS_RETURN_IF_ERROR(Event(created.id, kEventState, {{"state", kJobQueued}, {"message", "queued"}}));
  work_cv_.notify_all();
  return created;
}

StatusOr<JobRecord> JobScheduler::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(JobRecord job, store_->GetJob(id));
  if (IsTerminalJobState(job.state)) {
    return Status::FailedPrecondition("job " + id + " has ended already (" + job.state + ")");
  }
  ACS_RETURN_IF_ERROR(store_->FailOpenTasksOfJob(id, "cancelled").status());
  if (running_.count(id)) {
    cancel_.insert(id);
    return job;
  }
  // Under the lock, so that no runner claims the job meanwhile.
  ACS_RETURN_IF_ERROR(SetState(job, kJobCancelled, "cancelled before it ran"));
  return job;
}

Status JobScheduler::Start() {
  if (options_.work_dir.empty()) return Status::InvalidArgument("the job scheduler needs a work dir");
  ACS_ASSIGN_OR_RETURN(std::vector<JobRecord> active,
                       store_->JobsInStates({kJobPreparing, kJobSearching, kJobVerifying}));
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const JobRecord& j : active) {
      if (j.owner != kCampaignOwner) resume_.push_back(j.id);
    }
  }
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.max_concurrent); ++i) runners_.emplace_back([this] { RunnerLoop(); });
  return Status::Ok();
}

void JobScheduler::Stop() {
  stopping_ = true;
  work_cv_.notify_all();
  event_cv_.notify_all();
  for (std::thread& t : runners_) t.join();
  runners_.clear();
}

void JobScheduler::WaitForEvents(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  event_cv_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

bool JobScheduler::Interrupted(const std::string& job_id) const {
  if (stopping_) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return cancel_.count(job_id) > 0;
}

std::string JobScheduler::NextJob() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!resume_.empty()) {
    std::string id = resume_.front();
    resume_.pop_front();
    if (running_.insert(id).second) return id;
  }
  StatusOr<std::vector<JobRecord>> queued = store_->JobsInStates({kJobQueued});
  if (!queued.ok()) return "";
  for (const JobRecord& j : *queued) {
    if (running_.insert(j.id).second) return j.id;
  }
  return "";
}

Status JobScheduler::RunJob(JobRecord& job) {
  ACS_ASSIGN_OR_RETURN(JobRequest request, JobRequest::FromJson(job.request_json));
  JobProgress progress = JobProgress::FromJson(job.progress_json);
  if (job.state == kJobQueued || job.state == kJobPreparing) {
    ACS_RETURN_IF_ERROR(Prepare(job, request, progress));
    if (Interrupted(job.id)) return Status::Ok();
  }
  // Verification may send the job back to searching (the closed loop).
  while (!Interrupted(job.id) && (job.state == kJobSearching || job.state == kJobVerifying)) {
    if (job.state == kJobSearching) {
      ACS_RETURN_IF_ERROR(Search(job, request, progress));
      if (job.state == kJobSearching) return Status::Ok();  // stopped before the end
    } else {
      ACS_RETURN_IF_ERROR(Verify(job, request, progress));
    }
  }
  return Status::Ok();
}

Status JobScheduler::Search(JobRecord& job, const JobRequest& request, JobProgress& progress) {
  SearchSessionOptions o;
  ACS_ASSIGN_OR_RETURN(o.model_path, blobs_->PathOf(request.model_sha256));
  ACS_ASSIGN_OR_RETURN(o.data_path, DatasetPath(request));
  o.input_shape = request.input_shape;
  o.data.split = "train";
  o.budget_kind = request.budget_kind;
  o.budget_ratio = request.budget_ratio;
  if (request.budget_kind == "latency") {
    ACS_ASSIGN_OR_RETURN(o.predictor, LatestPredictor(measurements_, progress.device_class));
    o.measured = {progress.dense_calibration_us, progress.runtime_calibration_us, progress.outside_layers_share, {}};
    for (const auto& [text, ratio] : progress.measured_policies) {
      ACS_ASSIGN_OR_RETURN(Policy policy, Policy::FromJson(text));
      o.measured.verified.push_back({std::move(policy), ratio});
    }
  }
  o.threads = request.threads;
  o.agent = request.agent;
  o.episodes = request.episodes + progress.round * RoundEpisodes(request, options_);
  o.agent_episodes = request.episodes;
  o.seed = request.seed;
  o.calibration_samples = options_.calibration_samples;
  o.validation_samples = options_.validation_samples;
  ACS_ASSIGN_OR_RETURN(o.space, SearchSpaceOf(request));
  o.skip = request.skip_layers;
  if (request.fine_tune) {
    o.fine_tune_epochs = options_.fine_tune_epochs;
    o.fine_tune_samples = options_.fine_tune_samples;
  }
  StatusOr<std::unique_ptr<SearchSession>> created = SearchSession::Create(o);
  if (!created.ok() && created.status().code() == StatusCode::kFailedPrecondition && progress.round > 0) {
    // The retrained predictor finds the budget out of reach: the last result stands.
    if (!progress.kept_result.empty()) {
      progress.TakeResultOf(JobProgress::FromJson(progress.kept_result));
      progress.kept_result.clear();
      ACS_RETURN_IF_ERROR(Save(job, progress));
      return SetState(job, kJobSucceeded, "the earlier result stands (" + created.status().message() + ")");
    }
    job.error = progress.budget_outcome + "; the retrained predictor then found the budget out of reach (" +
                created.status().message() + ")";
    return SetState(job, kJobBudgetNotMet, job.error);
  }
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<SearchSession> session, std::move(created));
  if (!job.checkpoint.empty()) {
    ACS_RETURN_IF_ERROR(session->Restore(job.checkpoint));
    std::string message = "resumed after episode " + std::to_string(session->episodes().size());
    if (progress.round > 0) {
      message += " (round " + std::to_string(progress.round + 1) + ": " +
                 std::to_string(session->episodes_over_budget()) + " earlier policies over the budget under the " +
                 "new predictions";
      if (session->latency() && session->latency()->verified_policies > 0) {
        char scale[160];
        std::snprintf(scale, sizeof scale, ", its layers' predictions x%.2f to match %d measured policies",
                      session->latency()->verified_scale, session->latency()->verified_policies);
        message += scale;
      }
      message += ", up to episode " + std::to_string(o.episodes) + ")";
    }
    ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobSearching}, {"message", message}}));
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
        // The event first: an episode in the checkpoint always has its event (a crash in
        // between re-runs the episode and repeats the event).
        saved = Event(job.id, kEventEpisode,
                      {{"episode", e.episode}, {"reward", e.score.reward}, {"accuracy", e.score.accuracy},
                       {"cost_ratio", e.cost_ratio}, {"best_accuracy", best.score.accuracy},
                       {"eta_seconds", progress.eta_seconds}});
        if (!saved.ok()) return;
        if (std::chrono::duration<double>(now - last_checkpoint).count() >= options_.checkpoint_seconds) {
          job.checkpoint = session->Checkpoint();
          job.progress_json = progress.ToJson().dump();
          saved = store_->UpdateJob(job);
          last_checkpoint = now;
        } else {
          saved = store_->UpdateJobProgress(job.id, progress.ToJson().dump());
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
      char line[240];
      std::snprintf(line, sizeof line,
                    "the best policy relaxed to the budget: %.2f%% at %.3fx of the dense cost (it had %.2f%% at %.3fx)",
                    100 * e.score.accuracy, e.cost_ratio, 100 * before.score.accuracy, before.cost_ratio);
      ACS_RETURN_IF_ERROR(Event(job.id, kEventState, {{"state", kJobSearching}, {"message", line}}));
      set_best(session->episodes()[session->best()]);
    }
  }
  job.checkpoint = session->Checkpoint();
  job.progress_json = progress.ToJson().dump();
  if (session->stopped()) return store_->UpdateJob(job);

  // Export the best policy and keep the top-k for verification.
  const EpisodeRecord& best = session->episodes()[session->best()];
  const fs::path dir = fs::path(options_.work_dir) / job.id;
  ACS_ASSIGN_OR_RETURN(ExportedSearch exported, session->Export(best.policy, dir.string(), {{"job", job.id}}));
  progress.artifacts.clear();
  for (const std::string& path : {exported.policy_path, exported.model_path, exported.report_path}) {
    ACS_ASSIGN_OR_RETURN(BlobWriter::Committed blob, blobs_->Put(ReadBytes(path)));
    progress.artifacts.push_back({fs::path(path).filename().string(), blob.sha256, blob.bytes});
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
    v.accuracy = e.score.accuracy;
    v.predicted_us = session->PredictedUs(e.policy);
    progress.verifications.push_back(v);
    progress.verify_policies.push_back(e.policy.ToJson(-1));
  }
  // More runs of the exported policy, in tasks of their own (a worker process and the
  // host's state differ more between tasks than between the rounds of one task).
  for (int run = 1; run < options_.verify_runs && !progress.verifications.empty(); ++run) {
    Verification v = progress.verifications[0];
    v.run = run;
    progress.verifications.push_back(v);
  }
  ACS_RETURN_IF_ERROR(Save(job, progress));
  char line[200];
  std::snprintf(line, sizeof line, "search done: best %.2f%% (dense %.2f%%), exported %.2f%%", 100 * best.score.accuracy,
                100 * progress.dense_accuracy, 100 * exported.exported_accuracy);
  std::string done = line;
  if (exported.accuracy_before_fine_tune >= 0) {
    std::snprintf(line, sizeof line, " (fine-tuned from %.2f%%)", 100 * exported.accuracy_before_fine_tune);
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

Status JobScheduler::Save(JobRecord& job, const JobProgress& progress) {
  job.progress_json = progress.ToJson().dump();
  return store_->UpdateJob(job);
}

Status JobScheduler::SetState(JobRecord& job, const std::string& state, const std::string& message) {
  if (state == kJobFailed) {
    spdlog::warn("job {} {}: {}", job.id, state, message);
  } else {
    spdlog::info("job {} {}{}{}", job.id, state, message.empty() ? "" : ": ", message);
  }
  job.state = state;
  ACS_RETURN_IF_ERROR(store_->UpdateJob(job));
  return Event(job.id, kEventState, {{"state", state}, {"message", message}});
}

Status JobScheduler::Event(const std::string& job_id, const std::string& kind, const nlohmann::json& json) {
  ACS_RETURN_IF_ERROR(store_->AddEvent(job_id, kind, json.dump()).status());
  event_cv_.notify_all();
  return Status::Ok();
}

}  // namespace acs::server
