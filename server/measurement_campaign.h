// Predictor measurement campaigns (DESIGN §6; not the nightly compression campaigns):
// kernel measurement tasks for a machine's workers, sampled as `acs predictor collect`
// does; once every task has finished, the XGBoost predictor is trained from the
// measurement store and saved as a new version. A campaign is a job record of
// kCampaignOwner (state "preparing" while it runs), so a restarted server picks it up
// where it was. No gRPC.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "predictors/store.h"
#include "server/farm.h"

namespace acs::server {

struct MeasurementCampaignOptions {
  int samples = 600;        // training kernels drawn from the shape prior
  int heldout = 100;        // held-out kernels drawn from the shape prior
  std::vector<int> threads = {1};
  uint64_t seed = 1;
  // Training kernels measured besides the samples (a job's own layers), with this source.
  std::vector<KernelSpec> specs;
  std::string specs_source = "job";
};

struct PredictorState {
  std::string machine_id;
  std::string state = "none";  // "none", "collecting", "training", "ready", "failed"
  int64_t version = 0;         // latest trained version, 0 when none
  int tasks_total = 0, tasks_done = 0, tasks_failed = 0;
  int64_t kernel_measurements = 0;
  double heldout_within10 = 0;  // of the latest version
  int64_t repeated_kernels = 0;  // its repeat agreement (predictors::RepeatAgreement)
  double repeat_within10 = 0;
  std::string error;
};

class MeasurementCampaigns {
 public:
  // trains: whether this process trains the predictor of a campaign whose tasks have all
  // finished (the server does; a job runner's child only waits for it). Campaigns are
  // job records, so every process sharing the store sees the same ones.
  MeasurementCampaigns(Farm* farm, ServerStore* store, predictors::MeasurementStore* measurements,
                       bool trains = true)
      : farm_(farm), store_(store), measurements_(measurements), trains_(trains) {}
  // Enqueues a campaign. FailedPrecondition when one is running for the machine;
  // InvalidArgument when it would measure nothing.
  StatusOr<PredictorState> Start(const std::string& machine_id, const MeasurementCampaignOptions& options);
  // The machine's predictor state; finishes (trains) a campaign whose tasks are all done.
  StatusOr<PredictorState> Poll(const std::string& machine_id);
  // Polls every running campaign (the server calls this periodically).
  void PollAll();

 private:
  StatusOr<PredictorState> Stored(const std::string& machine_id);
  Farm* farm_;
  ServerStore* store_;
  predictors::MeasurementStore* measurements_;
  bool trains_;
  std::mutex mu_;
  std::set<std::string> training_;  // machine ids being trained by this process now
};

}  // namespace acs::server
