#include "server/jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "agents/agent_names.h"
#include "agents/latency_cost.h"
#include "agents/make_agent.h"
#include "agents/search_session.h"
#include "core/importer.h"
#include "core/torchscript_model.h"
#include "predictors/predictor.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;

// "a, b or c".
std::string OneOf(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

// Errors of a model or dataset supplied by the client are the client's to fix.
Status AsInvalid(const Status& s, const std::string& what) {
  if (s.ok()) return s;
  return Status::InvalidArgument(what + ": " + s.message());
}

}  // namespace

StatusOr<std::shared_ptr<const predictors::TrainedPredictor>> LatestPredictor(predictors::MeasurementStore* store,
                                                                              const std::string& device_class) {
  ACS_ASSIGN_OR_RETURN(std::optional<predictors::StoredPredictor> stored,
                       predictors::LoadLatestPredictor(*store, device_class));
  return stored ? stored->predictor : nullptr;
}

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

double JobTimeLimit(const JobRequest& request, double server_seconds) {
  const auto requested = static_cast<double>(request.time_limit_seconds);
  if (requested <= 0) return std::max(server_seconds, 0.0);
  return server_seconds > 0 ? std::min(requested, server_seconds) : requested;
}

JobScheduler::JobScheduler(ServerStore* store, BlobStore* blobs, Farm* farm,
                           MeasurementCampaigns* measurement_campaigns, predictors::MeasurementStore* measurements,
                           SchedulerOptions options)
    : store_(store),
      blobs_(blobs),
      farm_(farm),
      measurement_campaigns_(measurement_campaigns),
      measurements_(measurements),
      options_(std::move(options)) {
  if (store_) {
    local_host_ = std::make_unique<LocalJobHost>(store_, blobs_, farm_, measurement_campaigns_);
    host_ = local_host_.get();
  }
}

JobScheduler::~JobScheduler() { Stop(); }

StatusOr<std::string> JobScheduler::ResolveDeviceClass(const std::string& requested) const {
  ACS_ASSIGN_OR_RETURN(std::vector<DeviceView> devices, host_->Devices());
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
    ACS_ASSIGN_OR_RETURN(std::string data_path, ReadableDatasetPath(request));
    ACS_ASSIGN_OR_RETURN(SearchSpace space, SearchSpaceOf(request));
    StatusOr<std::shared_ptr<ImportedModel>> model = ImportTorchScript(model_path, {request.input_shape});
    if (!model.ok()) return AsInvalid(model.status(), "model " + request.model_sha256.substr(0, 12));
    // Past the size limit: ResourceExhausted naming it; other errors are the client's.
    auto data_error = [&](const Status& s, const std::string& what) {
      if (s.code() != StatusCode::kResourceExhausted) return AsInvalid(s, what);
      return Status::ResourceExhausted(what + ": " + WithDatasetLimit(s).message());
    };
    ACS_ASSIGN_OR_RETURN(DatasetOptions data, DataOptionsOf(request, data_path));
    data = FitToInput(request.input_shape, data);
    data.limit = 1;
    data.shuffle_seed = 0;  // one sample and the count: the order does not matter
    StatusOr<Dataset> sample = LoadDataset(data_path, data);
    if (!sample.ok()) return data_error(sample.status(), "dataset");
    ACS_ASSIGN_OR_RETURN(SplitCounts split, SplitOf(request, sample->total));
    // The job reads its calibration, validation (and fine-tuning) samples at the input
    // shape at once: at most that many must decode within the readers' limit.
    double sample_bytes = sizeof(float);
    for (size_t d = 1; d < request.input_shape.size(); ++d) sample_bytes *= static_cast<double>(request.input_shape[d]);
    const int64_t samples = split.calibration + split.validation + split.fine_tune;
    const double bytes = sample_bytes * static_cast<double>(samples);
    if (data.max_decoded_bytes > 0 && bytes > static_cast<double>(data.max_decoded_bytes)) {
      return Status::ResourceExhausted(
          "dataset: the job reads up to " + std::to_string(samples) + " samples, which at the input shape decode to " +
          FormatBytes(static_cast<int64_t>(bytes)) + " of float32, past this server's limit of " +
          FormatBytes(data.max_decoded_bytes) + " (acs-server " + kDatasetLimitFlag +
          "; use a smaller input shape or split)");
    }
    ACS_ASSIGN_OR_RETURN(std::string test_path, ReadableDatasetPath(request, DataRole::kTest));
    if (!test_path.empty()) {
      DatasetOptions test = data;
      test.split = "test";
      test.shuffle_seed = 0;
      StatusOr<Dataset> first = LoadDataset(test_path, test);
      if (!first.ok()) return data_error(first.status(), "test dataset");
      if (!first->has_labels()) return Status::InvalidArgument("test dataset: " + first->source + " has no labels");
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
  if (r.top_k < 0 || r.top_k > options_.max_top_k) {
    return Status::InvalidArgument("top_k must be in [0, " + std::to_string(options_.max_top_k) + "]");
  }
  if (std::find(AgentNames().begin(), AgentNames().end(), r.agent) == AgentNames().end()) {
    return Status::InvalidArgument("unknown agent '" + r.agent + "' (" + OneOf(AgentNames()) + ")");
  }
  if (std::find(BudgetKinds().begin(), BudgetKinds().end(), r.budget_kind) == BudgetKinds().end()) {
    return Status::InvalidArgument("unknown budget kind '" + r.budget_kind + "' (" + OneOf(BudgetKinds()) + ")");
  }
  if (!(r.budget_ratio > 0 && r.budget_ratio <= 1)) return Status::InvalidArgument("the budget ratio must be in (0, 1]");
  if (r.input_shape.size() < 2) return Status::InvalidArgument("input_shape must have a batch and feature dimensions");
  if (r.time_limit_seconds < 0) {
    return Status::InvalidArgument("time_limit_seconds must be >= 0 (0: the server's limit)");
  }
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
  ACS_RETURN_IF_ERROR(DatasetPath(r, DataRole::kTest).status());
  StatusOr<SearchSpace> space = SearchSpaceOf(r);
  if (!space.ok()) return AsInvalid(space.status(), "search space");
  ACS_ASSIGN_OR_RETURN(DatasetOptions data, DataOptionsOf(r));
  ACS_ASSIGN_OR_RETURN(std::string device_class, ResolveDeviceClass(r.device_class));
  if (r.budget_kind == "latency" && device_class.empty()) {
    return Status::FailedPrecondition("a latency budget needs a device class, and no worker has registered");
  }

  JobRequest stored = r;
  stored.device_class = device_class;
  stored.preprocess = data.preprocess.ToJson();
  stored.split = DataSplit::FromJson(r.split)->ToJson();  // checked by DataOptionsOf
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

Status JobScheduler::Validate() const {
  if (options_.work_dir.empty()) return Status::InvalidArgument("the job scheduler needs a work dir");
  return ChildReadsCheck();
}

Status JobScheduler::Start() {
  ACS_RETURN_IF_ERROR(Validate());
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
      ACS_RETURN_IF_ERROR(WithDatasetLimit(Search(job, request, progress)));
      if (job.state == kJobSearching) return Status::Ok();  // stopped before the end
    } else {
      ACS_RETURN_IF_ERROR(Verify(job, request, progress));
    }
  }
  return Status::Ok();
}

Status JobScheduler::Save(JobRecord& job, const JobProgress& progress) {
  job.progress_json = progress.ToJson().dump();
  return host_->UpdateJob(job);
}

Status JobScheduler::SetState(JobRecord& job, const std::string& state, const std::string& message) {
  if (state == kJobFailed) {
    spdlog::warn("job {} {}: {}", job.id, state, message);
  } else {
    spdlog::info("job {} {}{}{}", job.id, state, message.empty() ? "" : ": ", message);
  }
  job.state = state;
  ACS_RETURN_IF_ERROR(host_->UpdateJob(job));
  return Event(job.id, kEventState, {{"state", state}, {"message", message}});
}

Status JobScheduler::Event(const std::string& job_id, const std::string& kind, const nlohmann::json& json) {
  ACS_RETURN_IF_ERROR(host_->AddEvent(job_id, kind, json.dump()).status());
  event_cv_.notify_all();
  return Status::Ok();
}

}  // namespace acs::server
