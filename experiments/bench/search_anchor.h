// The in-process search of the benchmarks, set up as a latency job sets it up
// (bench_onpolicy, bench_quality): models named PATH@SHAPE, the device class's newest
// latency predictor, the dense model and the probe policies timed in a fresh process
// (policy_timing.h) to anchor the budget, and the search session's options filled from
// them. Fatal errors end the program (OrDie), as everywhere in the benchmarks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/search_session.h"
#include "core/graph.h"
#include "core/policy.h"
#include "experiments/bench/policy_timing.h"
#include "predictors/predictor.h"

namespace acs::bench {

struct ModelArg {
  std::string path;  // TorchScript file
  Shape input;
  std::string name() const;  // the file's stem
};

// "PATH@1x1x28x28,PATH@1x3x32x32"; InvalidArgument naming the entry without '@' or with a
// bad shape.
StatusOr<std::vector<ModelArg>> ParseModelArgs(const std::string& text);

// How policies are timed: alternately with the dense baseline (frozen + optimized for
// inference), `passes` rounds over all of them, in `processes` fresh processes.
struct TimingOptions {
  int passes = 8;     // rounds over all policies
  int threads = 1;    // threads the model runs with
  std::string data;   // calibration dataset (empty: synthetic inputs)
  int processes = 3;  // fresh processes one after the other, medians over them (as a job
                      // measures the anchor, the probes and each verified policy)
};

// The policies of `model` timed as TimingOptions says (TimePoliciesInFreshProcesses); one
// timing per policy, in order. Ends the program on an error.
std::vector<PolicyTiming> TimeInRounds(const TimingOptions& timing, const ModelArg& model,
                                       const std::vector<Policy>& policies);

struct LoadedPredictor {
  std::string device_class;  // "local" resolved to this machine's id
  int64_t version = 0;
  std::shared_ptr<const predictors::TrainedPredictor> predictor;
};

// The newest predictor of `device_class` ("local": this machine's) in the store at
// `store_path`. Ends the program when the store cannot be read or holds none, saying how
// to train one; `program` names the caller in the message.
LoadedPredictor LoadPredictorOrDie(const std::string& program, const std::string& store_path,
                                   const std::string& device_class);

// A model anchored for latency searches, as a job anchors it before its search.
struct AnchoredModel {
  PolicyTiming dense;          // the uncompressed runtime timed with the dense baseline
  std::vector<Policy> probes;  // ProbePolicies (empty without probes)
  // model, input, data (train split), budget kind "latency", predictor, threads and the
  // measured calibration (dense, uncompressed, outside share, probes) set; the agent,
  // seed, episodes, budget ratio and fine-tuning left at their defaults.
  SearchSessionOptions options;
};

// Times the dense model (and with `probes` its ProbePolicies) as `timing` says and
// profiles its plain form for the share outside the layers. Ends the program on an error.
AnchoredModel AnchorModel(const TimingOptions& timing, std::shared_ptr<const predictors::TrainedPredictor> predictor,
                          const ModelArg& model, bool probes);

}  // namespace acs::bench
