// The job request of `acs submit` and `acs sweep`: the job flags, their help, and the
// request they make, its model and data uploaded once.
#pragma once

#include <set>
#include <string>

#include "cli/remote.h"
#include "core/status.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// The help of the job options but the budget, which each command words itself.
extern const char kJobOptionsHelp[];
// The job options with a value (without "budget") and the switches.
inline const std::set<std::string> kJobFlags = {
    "input",       "data",       "device-class", "agent", "episodes",   "seed",  "threads",   "top-k",     "patterns",
    "block-sizes", "precisions", "max-sparsity", "skip",  "preprocess", "split", "test-data", "time-limit"};
inline const std::set<std::string> kJobSwitches = {"fine-tune"};

// The request of the job flags for the model r.flags.positional[0], its budget from
// --budget (default latency=0.5x): the flags parsed and the files checked, then the model
// and the data (--data, --test-data) uploaded. InvalidArgument / NotFound name the flag.
StatusOr<acs::v1::SubmitJobRequest> UploadedRequest(const Remote& r);

}  // namespace acs::cli
