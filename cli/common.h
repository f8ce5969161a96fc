// Pieces shared by the acs subcommands.
#pragma once

#include <string>

#include "core/flags.h"
#include "core/dataset.h"
#include "core/graph.h"
#include "core/status.h"
#include "predictors/predictor.h"
#include "predictors/store.h"

namespace acs::cli {

// Prints "acs CMD: message" to stderr and returns the exit code for it (2 for a bad
// argument, 1 otherwise).
int Fail(const std::string& command, const Status& status);

// Options a dataset flag accepts, listed in each command's --help.
extern const char kDataHelp[];
// Flags read by LoadDataFlag.
inline const std::set<std::string> kDataFlags = {"split", "mean", "std", "pad", "preprocess", "shuffle-seed"};

// Dataset options from --split and --preprocess, or --mean, --std and --pad, fitted to
// `input_shape`.
StatusOr<DatasetOptions> DataOptionsFlag(const Flags& args, const Shape& input_shape);
// Loads the dataset at path, fitted to `input_shape` ({1,C,H,W}; empty = as stored),
// with the data flags from args. limit 0 = all samples.
StatusOr<Dataset> LoadDataFlag(const Flags& args, const std::string& path, const Shape& input_shape,
                               int64_t limit);

// Flags of the commands that use latency predictors.
inline const std::set<std::string> kPredictorFlags = {"store", "device-class"};
extern const char kPredictorHelp[];

// --device-class: "local" (default) is this machine's DeviceClass::MachineId().
StatusOr<std::string> ResolveDeviceClass(const Flags& flags);
// --store (default data/predictors.db), its directory created when missing.
StatusOr<std::unique_ptr<predictors::MeasurementStore>> OpenStore(const Flags& flags);

struct StoredPredictor : predictors::StoredPredictor {
  std::string device_class;
};
// The latest trained predictor of the device class. FailedPrecondition, saying how to make
// one, when there is none.
StatusOr<StoredPredictor> LoadStoredPredictor(const Flags& flags);

}  // namespace acs::cli
