// Where a model's time goes: the operators a run executes, timed inside the run through
// LibTorch's RecordFunction hooks (acs_rt ops are dispatcher ops too), so each layer is
// timed in the model's own cache and layout context, not alone. Only the outermost ops
// are timed; the ops they call cost a hook call each.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace acs::worker {

// One outermost operator of a run (ops it calls are inside its time). Ops that do not go
// through the dispatcher (the oneDNN ops of a graph optimized for inference) are not seen.
struct OpTime {
  std::string name;                   // e.g. "aten::conv2d", "acs_rt::sparse_conv2d"
  std::vector<int64_t> input_shape;   // of its first tensor input; empty when unknown
  double us = 0;                      // mean over the profiled runs
};

// The outermost ops of profiled runs, and the mean wall time of a run (hooks included).
struct OpProfile {
  std::vector<OpTime> ops;
  double run_us = 0;
};

// The outermost ops of `run`, in the order of the first run, each with its mean time over
// `runs` runs (after one unprofiled warm-up run). Errors: InvalidArgument for runs < 1,
// the first error of `run`, and FailedPrecondition when runs differ in their ops (a model
// whose control flow depends on its input).
StatusOr<OpProfile> ProfileOps(const std::function<Status()>& run, int runs);

// The share of a run's wall time spent in ops that are not layer ops (IsLayerOp) nor batch
// norms (folded into the layer before them wherever the runtime runs): what compression
// does not shrink. Layers hidden from the hooks (a graph optimized for inference runs its
// convolutions inside oneDNN ops) count as layers, as does the time between ops. 0 for an
// empty profile.
double OutsideLayersShare(const OpProfile& profile);

// Whether `name` is an op that folds into the layer before it wherever the runtime runs
// (a batch norm): neither a layer op nor time outside the layers.
bool FoldsIntoLayer(const std::string& name);

// Whether `name` is an op that runs a conv2d / linear layer (aten's, LibTorch's prepacked
// or oneDNN forms, or an acs_rt op).
bool IsLayerOp(const std::string& name);

}  // namespace acs::worker
