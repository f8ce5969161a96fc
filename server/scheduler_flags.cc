// acs-server's flags for the job scheduler (SchedulerOptions), shared by the server and
// its job runner children (server/server_main.h), and where the store's file is.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "server/server_main.h"

namespace acs::server {

std::string DbPath(const std::string& dir) { return (std::filesystem::path(dir) / "acs.db").string(); }

StatusOr<SchedulerOptions> SchedulerOptionsOf(const Flags& flags, const std::string& dir) {
  SchedulerOptions o;
  ACS_ASSIGN_OR_RETURN(int64_t max_jobs, flags.GetInt("max-jobs", o.max_concurrent));
  ACS_ASSIGN_OR_RETURN(int64_t samples, flags.GetInt("campaign-samples", o.measurement_campaign.samples));
  ACS_ASSIGN_OR_RETURN(int64_t checkpoint, flags.GetInt("checkpoint-seconds", 5));
  ACS_ASSIGN_OR_RETURN(int64_t fine_tune_epochs, flags.GetInt("fine-tune-epochs", o.fine_tune_epochs));
  ACS_ASSIGN_OR_RETURN(int64_t budget_rounds, flags.GetInt("budget-rounds", o.budget_rounds));
  ACS_ASSIGN_OR_RETURN(o.fine_tune_distill, flags.GetDouble("fine-tune-distill", o.fine_tune_distill));
  if (flags.Has("fine-tune-distill") && !(o.fine_tune_distill >= 0 && o.fine_tune_distill <= 1)) {
    return Status::InvalidArgument("--fine-tune-distill must be in [0, 1]");
  }
  ACS_ASSIGN_OR_RETURN(o.max_input_elements, flags.GetInt("max-input-elements", o.max_input_elements));
  const double gib = static_cast<double>(int64_t{1} << 30);
  ACS_ASSIGN_OR_RETURN(double dataset_gib,
                       flags.GetDouble("max-dataset-gb", static_cast<double>(o.max_dataset_bytes) / gib));
  if (!(dataset_gib >= 0 && dataset_gib <= 1024)) {
    return Status::InvalidArgument(std::string(kDatasetLimitFlag) + " must be in 0 (no limit) to 1024");
  }
  o.max_dataset_bytes = std::llround(dataset_gib * gib);
  ACS_ASSIGN_OR_RETURN(o.no_worker_seconds, flags.GetDouble("no-worker-seconds", o.no_worker_seconds));
  if (!(o.no_worker_seconds > 0)) return Status::InvalidArgument("--no-worker-seconds must be > 0");
  ACS_ASSIGN_OR_RETURN(int64_t user_jobs, flags.GetInt("max-user-jobs", o.max_jobs_per_user));
  o.max_jobs_per_user = static_cast<int>(user_jobs);
  ACS_ASSIGN_OR_RETURN(int64_t memory_mb, flags.GetInt("job-memory-mb", o.job_limits.memory_bytes >> 20));
  ACS_ASSIGN_OR_RETURN(o.job_limits.cpu_seconds, flags.GetInt("job-cpu-seconds", 0));
  ACS_ASSIGN_OR_RETURN(int64_t wall, flags.GetInt("job-wall-seconds", 86400));
  ACS_ASSIGN_OR_RETURN(int64_t check, flags.GetInt("check-seconds", static_cast<int64_t>(o.check_limits.wall_seconds)));
  ACS_ASSIGN_OR_RETURN(int64_t checks, flags.GetInt("max-checks", o.max_concurrent_checks));
  ACS_ASSIGN_OR_RETURN(int64_t verify_runs, flags.GetInt("verify-runs", o.verify_runs));
  ACS_ASSIGN_OR_RETURN(int64_t max_episodes, flags.GetInt("max-episodes", o.max_episodes));
  ACS_ASSIGN_OR_RETURN(int64_t max_top_k, flags.GetInt("max-top-k", o.max_top_k));
  ACS_ASSIGN_OR_RETURN(int64_t runner_deaths, flags.GetInt("max-runner-deaths", o.max_runner_deaths));
  if (max_episodes < 1 || max_episodes > 100000000 || max_top_k < 3 || max_top_k > 1000 || runner_deaths < 1 ||
      runner_deaths > 100) {
    return Status::InvalidArgument(
        "--max-episodes must be in 1 to 10^8, --max-top-k in 3 (a job's default) to 1000, "
        "--max-runner-deaths in 1 to 100");
  }
  o.max_episodes = static_cast<int>(max_episodes);
  o.max_top_k = static_cast<int>(max_top_k);
  o.max_runner_deaths = static_cast<int>(runner_deaths);
  if (max_jobs < 1 || samples < 1 || checkpoint < 0 || fine_tune_epochs < 1 || budget_rounds < 0 ||
      o.max_input_elements < 1 || o.max_jobs_per_user < 1 || memory_mb < 0 || o.job_limits.cpu_seconds < 0 ||
      wall < 0 || check < 1 || checks < 1 || checks > 1024 || verify_runs < 1 || verify_runs > 25) {
    return Status::InvalidArgument("--max-jobs, --campaign-samples, --fine-tune-epochs, --max-input-elements, "
                                   "--max-user-jobs, --check-seconds, --max-checks (at most 1024) and --verify-runs "
                                   "(at most 25) must be >= 1, "
                                   "--checkpoint-seconds, "
                                   "--budget-rounds, "
                                   "--job-memory-mb, --job-cpu-seconds and --job-wall-seconds >= 0");
  }
  o.job_limits.memory_bytes = memory_mb << 20;
  o.job_limits.wall_seconds = static_cast<double>(wall);
  o.check_limits.memory_bytes = o.job_limits.memory_bytes;
  o.check_limits.wall_seconds = static_cast<double>(check);
  o.max_concurrent_checks = static_cast<int>(checks);
  o.verify_runs = static_cast<int>(verify_runs);
  o.budget_rounds = static_cast<int>(budget_rounds);
  o.measure_model_layers = !flags.Has("no-model-measurement");
  o.fine_tune_epochs = static_cast<int>(fine_tune_epochs);
  o.max_concurrent = static_cast<int>(max_jobs);
  o.measurement_campaign.samples = static_cast<int>(samples);
  o.measurement_campaign.heldout = std::max(1, o.measurement_campaign.samples / 6);
  o.checkpoint_seconds = static_cast<double>(checkpoint);
  o.datasets_dir = flags.Get("datasets-dir", o.datasets_dir);
  o.work_dir = (std::filesystem::path(dir) / "work").string();
  o.db_path = DbPath(dir);
  o.confine_writes = !flags.Has("no-confine");
  return o;
}

}  // namespace acs::server
