#include "server/measurement_campaign.h"

#include <nlohmann/json.hpp>

#include "predictors/predictor.h"
#include "predictors/sampling.h"

namespace acs::server {

StatusOr<PredictorState> MeasurementCampaigns::Stored(const std::string& machine_id) {
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
    if (m.is_object() && m.contains("repeat_kernels")) {
      s.repeated_kernels = m["repeat_kernels"].value("count", int64_t{0});
      s.repeat_within10 = m["repeat_kernels"].value("within10", 0.0);
    }
  }
  return s;
}

StatusOr<PredictorState> MeasurementCampaigns::Start(const std::string& machine_id,
                                                     const MeasurementCampaignOptions& options) {
  if (machine_id.empty()) return Status::InvalidArgument("a measurement campaign needs a device class");
  if (options.samples < 0 || options.heldout < 0 || options.samples + static_cast<int64_t>(options.specs.size()) < 1) {
    return Status::InvalidArgument("a measurement campaign needs samples or specs to measure");
  }
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ACS_ASSIGN_OR_RETURN(std::optional<JobRecord> latest, store_->LatestCampaign(machine_id));
    if (latest && latest->state == kJobPreparing) {
      return Status::FailedPrecondition("a measurement campaign for '" + machine_id + "' is running already");
    }
    JobRecord job;
    job.owner = kCampaignOwner;
    job.state = kJobPreparing;
    job.request_json = nlohmann::json{{"campaign", machine_id}, {"samples", options.samples},
                                      {"heldout", options.heldout}, {"specs", options.specs.size()}}.dump();
    ACS_ASSIGN_OR_RETURN(JobRecord created, store_->CreateJob(job));
    id = created.id;
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
    if (StatusOr<JobRecord> job = store_->GetJob(id); job.ok()) {
      job->state = kJobFailed;
      job->error = "enqueueing its tasks failed: " + s.message();
      (void)store_->UpdateJob(*job);
    }
    return s;
  }
  return Poll(machine_id);
}

StatusOr<PredictorState> MeasurementCampaigns::Poll(const std::string& machine_id) {
  ACS_ASSIGN_OR_RETURN(PredictorState state, Stored(machine_id));
  ACS_ASSIGN_OR_RETURN(std::optional<JobRecord> campaign, store_->LatestCampaign(machine_id));
  if (!campaign) return state;
  if (campaign->state == kJobFailed) {
    state.state = "failed";
    state.error = campaign->error;
  }
  if (campaign->state != kJobPreparing) return state;
  const std::string id = campaign->id;
  ACS_ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, store_->TasksOfJob(id));
  state.state = "collecting";
  state.tasks_total = static_cast<int>(tasks.size());
  for (const TaskRecord& t : tasks) {
    state.tasks_done += t.state == kTaskDone;
    state.tasks_failed += t.state == kTaskFailed;
  }
  if (state.tasks_done + state.tasks_failed < state.tasks_total) return state;
  {
    // One caller trains; the others (and processes that do not train) see "training".
    std::lock_guard<std::mutex> lock(mu_);
    if (!trains_ || !training_.insert(machine_id).second) {
      state.state = "training";
      return state;
    }
  }

  // Every task finished: train, save, and the campaign is over.
  StatusOr<predictors::TrainedRecord> trained = Status::Internal("not trained");
  {
    StatusOr<std::vector<predictors::KernelRecord>> kernels = measurements_->Kernels(machine_id);
    StatusOr<std::vector<predictors::ModelRecord>> models = measurements_->Models(machine_id);
    if (!kernels.ok()) trained = kernels.status();
    else if (!models.ok()) trained = models.status();
    else trained = predictors::TrainForStore(machine_id, *kernels, *models, nlohmann::json{{"campaign", id}});
  }
  Status saved = trained.status();
  if (trained.ok()) saved = measurements_->AddPredictor(trained->record).status();
  campaign->state = saved.ok() ? kJobSucceeded : kJobFailed;
  campaign->error = saved.ok() ? "" : "training after the measurement campaign failed: " + saved.message();
  const Status updated = store_->UpdateJob(*campaign);
  {
    std::lock_guard<std::mutex> lock(mu_);
    training_.erase(machine_id);
  }
  ACS_RETURN_IF_ERROR(updated);
  ACS_ASSIGN_OR_RETURN(PredictorState done, Poll(machine_id));
  done.tasks_total = state.tasks_total;
  done.tasks_done = state.tasks_done;
  done.tasks_failed = state.tasks_failed;
  return done;
}

void MeasurementCampaigns::PollAll() {
  StatusOr<std::vector<JobRecord>> running = store_->JobsInStates({kJobPreparing});
  if (!running.ok()) return;
  std::set<std::string> machines;
  for (const JobRecord& j : *running) {
    if (j.owner != kCampaignOwner) continue;
    const nlohmann::json r = nlohmann::json::parse(j.request_json, nullptr, false);
    if (r.is_object() && r.contains("campaign") && r["campaign"].is_string()) {
      machines.insert(r["campaign"].get<std::string>());
    }
  }
  for (const std::string& m : machines) (void)Poll(m);
}

}  // namespace acs::server
