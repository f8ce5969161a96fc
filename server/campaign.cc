#include "server/campaign.h"

#include <nlohmann/json.hpp>

#include "predictors/predictor.h"
#include "predictors/sampling.h"

namespace acs::server {

StatusOr<PredictorState> Campaigns::Stored(const std::string& machine_id) {
  PredictorState s;
  s.machine_id = machine_id;
  ACS_ASSIGN_OR_RETURN(std::vector<predictors::KernelRecord> kernels, measurements_->Kernels(machine_id));
  s.kernel_measurements = static_cast<int64_t>(kernels.size());
  ACS_ASSIGN_OR_RETURN(std::optional<predictors::PredictorRecord> latest,
                       measurements_->LatestPredictor(machine_id, predictors::kXgbPredictorName));
  if (latest) {
    s.state = "ready";
    s.version = latest->version;
    const nlohmann::json m = nlohmann::json::parse(latest->metrics_json, nullptr, false);
    if (m.is_object() && m.contains("heldout_kernels")) s.heldout_within10 = m["heldout_kernels"].value("within10", 0.0);
  }
  return s;
}

Status Campaigns::Resume() {
  ACS_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, store_->JobsInStates({kJobPreparing}));
  std::lock_guard<std::mutex> lock(mu_);
  for (const JobRecord& j : jobs) {
    const nlohmann::json r = nlohmann::json::parse(j.request_json, nullptr, false);
    if (r.is_object() && r.contains("campaign") && r["campaign"].is_string()) {
      running_[r["campaign"].get<std::string>()] = j.id;
    }
  }
  return Status::Ok();
}

StatusOr<PredictorState> Campaigns::Start(const std::string& machine_id, const CampaignOptions& options) {
  if (machine_id.empty()) return Status::InvalidArgument("a campaign needs a device class");
  if (options.samples < 0 || options.heldout < 0 || options.samples + static_cast<int64_t>(options.specs.size()) < 1) {
    return Status::InvalidArgument("a campaign needs samples or specs to measure");
  }
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_.count(machine_id)) {
      return Status::FailedPrecondition("a measurement campaign for '" + machine_id + "' is running already");
    }
    JobRecord job;
    job.owner = kCampaignOwner;
    job.state = kJobPreparing;
    job.request_json = nlohmann::json{{"campaign", machine_id}, {"samples", options.samples},
                                      {"heldout", options.heldout}, {"specs", options.specs.size()}}.dump();
    ACS_ASSIGN_OR_RETURN(JobRecord created, store_->CreateJob(job));
    id = created.id;
    running_[machine_id] = id;
    failed_.erase(machine_id);
  }
  predictors::SampleSpace space;
  space.threads = options.threads;
  const predictors::ShapePrior prior = predictors::ShapePrior::Builtin();
  predictors::KernelSampler train(prior, space, options.seed), heldout(prior, space, options.seed + 1000003);
  Status s = Status::Ok();
  if (options.samples > 0) s = farm_->EnqueueKernels(machine_id, train.Sample(options.samples), "initial", id).status();
  if (s.ok() && options.heldout > 0) {
    s = farm_->EnqueueKernels(machine_id, heldout.Sample(options.heldout), "heldout", id).status();
  }
  if (s.ok() && !options.specs.empty()) {
    s = farm_->EnqueueKernels(machine_id, options.specs, options.specs_source, id).status();
  }
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(machine_id);
    return s;
  }
  return Poll(machine_id);
}

StatusOr<PredictorState> Campaigns::Poll(const std::string& machine_id) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(machine_id);
    if (it != running_.end()) id = it->second;
  }
  ACS_ASSIGN_OR_RETURN(PredictorState state, Stored(machine_id));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.count(machine_id)) {
      state.state = "failed";
      state.error = failed_[machine_id];
    }
  }
  if (id.empty()) return state;
  ACS_ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, store_->TasksOfJob(id));
  state.state = "collecting";
  state.tasks_total = static_cast<int>(tasks.size());
  for (const TaskRecord& t : tasks) {
    state.tasks_done += t.state == kTaskDone;
    state.tasks_failed += t.state == kTaskFailed;
  }
  if (state.tasks_done + state.tasks_failed < state.tasks_total) return state;
  {
    // One caller trains; the others see "training" meanwhile.
    std::lock_guard<std::mutex> lock(mu_);
    if (!training_.insert(machine_id).second) {
      state.state = "training";
      return state;
    }
  }

  // Every task finished: train, save, and the campaign is over.
  ACS_ASSIGN_OR_RETURN(std::vector<predictors::KernelRecord> kernels, measurements_->Kernels(machine_id));
  ACS_ASSIGN_OR_RETURN(std::vector<predictors::ModelRecord> models, measurements_->Models(machine_id));
  StatusOr<predictors::TrainedRecord> trained =
      predictors::TrainForStore(machine_id, kernels, models, nlohmann::json{{"campaign", id}});
  Status saved = trained.status();
  if (trained.ok()) saved = measurements_->AddPredictor(trained->record).status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(machine_id);
    training_.erase(machine_id);
    if (!saved.ok()) failed_[machine_id] = "training after the campaign failed: " + saved.message();
  }
  StatusOr<JobRecord> job = store_->GetJob(id);
  if (job.ok()) {
    job->state = saved.ok() ? kJobSucceeded : kJobFailed;
    job->error = saved.ok() ? "" : saved.message();
    ACS_RETURN_IF_ERROR(store_->UpdateJob(*job));
  }
  ACS_ASSIGN_OR_RETURN(PredictorState done, Poll(machine_id));
  done.tasks_total = state.tasks_total;
  done.tasks_done = state.tasks_done;
  done.tasks_failed = state.tasks_failed;
  return done;
}

void Campaigns::PollAll() {
  std::vector<std::string> machines;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [m, id] : running_) machines.push_back(m);
  }
  for (const std::string& m : machines) (void)Poll(m);
}

}  // namespace acs::server
