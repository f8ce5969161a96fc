#include "cli/common.h"

#include <filesystem>
#include <iostream>
#include <sstream>

#include "devices/measure/device_class.h"
#include "devices/runtime/runtime.h"

namespace acs::cli {

const char kDataHelp[] =
    "data options:\n"
    "  --split train|test  split of a directory of IDX files (default test)\n"
    "  --pad N             zero padding on every side before resizing (default 0)\n"
    "  --mean M[,M,M]      normalization mean per channel (default none)\n"
    "  --std S[,S,S]       normalization std per channel (default none)\n"
    "  --preprocess SPEC   the model's preprocessing instead of --pad/--mean/--std: a JSON\n"
    "                      list of steps (or a file holding one) in torchvision's terms, e.g.\n"
    "                      '[{\"op\":\"resize\",\"size\":32},{\"op\":\"grayscale_to_rgb\"},\n"
    "                      {\"op\":\"to_tensor\"},{\"op\":\"normalize\",\"mean\":[0.5],\"std\":[0.25]}]';\n"
    "                      it must make the model's input shape (docs/data.md)\n"
    "  --shuffle-seed S    image folders (listed class by class): take the samples in an\n"
    "                      order shuffled by S (default 0: as listed; acs search: 1)\n"
    "Images are scaled to [0,1], channel-repeated and resized to the model input.\n"
    "Formats: IDX (MNIST family, .gz or not; a file or a directory), CIFAR-10 binary,\n"
    "a torch.save'd tensor or (images, labels) tuple.\n";

int Fail(const std::string& command, const Status& status) {
  std::cerr << "acs " << command << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

namespace {

StatusOr<std::vector<double>> ParseDoubles(const std::string& flag, const std::string& text) {
  std::vector<double> out;
  std::istringstream in(text);
  std::string token;
  while (std::getline(in, token, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stod(token, &used));
      if (used != token.size()) throw std::invalid_argument(token);
    } catch (const std::exception&) {
      return Status::InvalidArgument("--" + flag + " expects numbers separated by commas, got '" + text + "'");
    }
  }
  return out;
}

}  // namespace

StatusOr<DatasetOptions> DataOptionsFlag(const Flags& args, const Shape& input_shape) {
  DatasetOptions options;
  if (args.Has("preprocess")) {
    if (args.Has("pad") || args.Has("mean") || args.Has("std")) {
      return Status::InvalidArgument("--preprocess replaces --pad, --mean and --std: give the steps in the spec");
    }
    ACS_ASSIGN_OR_RETURN(options.preprocess, PreprocessSpec::Parse(args.Get("preprocess")));
  }
  if (input_shape.size() == 4) options = FitToInput(input_shape, options);
  options.split = args.Get("split", "test");
  ACS_ASSIGN_OR_RETURN(int64_t shuffle, args.GetInt("shuffle-seed", 0));
  if (shuffle < 0) return Status::InvalidArgument("--shuffle-seed must be >= 0");
  options.shuffle_seed = static_cast<uint64_t>(shuffle);
  ACS_ASSIGN_OR_RETURN(options.pad, args.GetInt("pad", 0));
  if (args.Has("mean")) {
    ACS_ASSIGN_OR_RETURN(options.mean, ParseDoubles("mean", args.Get("mean")));
  }
  if (args.Has("std")) {
    ACS_ASSIGN_OR_RETURN(options.std, ParseDoubles("std", args.Get("std")));
  }
  if (options.mean.size() != options.std.size()) {
    return Status::InvalidArgument("--mean and --std must be given together with the same count");
  }
  return options;
}

StatusOr<Dataset> LoadDataFlag(const Flags& args, const std::string& path, const Shape& input_shape,
                               int64_t limit) {
  ACS_ASSIGN_OR_RETURN(DatasetOptions options, DataOptionsFlag(args, input_shape));
  options.limit = limit;
  return LoadDataset(path, options);
}

const char kPredictorHelp[] =
    "predictor options:\n"
    "  --store PATH        SQLite store of measurements and predictors (default data/predictors.db)\n"
    "  --device-class ID   'local' (this machine, default) or a stored device class id\n";

StatusOr<std::string> ResolveDeviceClass(const Flags& flags) {
  const std::string v = flags.Get("device-class", "local");
  if (v == "local") return measure::DetectDeviceClass({1, runtime::RuntimeVersion()}).MachineId();
  if (v.empty()) return Status::InvalidArgument("--device-class must not be empty");
  return v;
}

StatusOr<std::unique_ptr<predictors::MeasurementStore>> OpenStore(const Flags& flags) {
  const std::string path = flags.Get("store", "data/predictors.db");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return predictors::OpenSqliteStore(path);
}

StatusOr<StoredPredictor> LoadStoredPredictor(const Flags& flags) {
  StoredPredictor out;
  ACS_ASSIGN_OR_RETURN(out.device_class, ResolveDeviceClass(flags));
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<predictors::MeasurementStore> store, OpenStore(flags));
  ACS_ASSIGN_OR_RETURN(std::optional<predictors::StoredPredictor> stored,
                       predictors::LoadLatestPredictor(*store, out.device_class));
  if (!stored) {
    return Status::FailedPrecondition("no trained latency predictor for device class '" + out.device_class +
                                      "' in " + flags.Get("store", "data/predictors.db") +
                                      "; run 'acs predictor collect' and 'acs predictor train'");
  }
  static_cast<predictors::StoredPredictor&>(out) = std::move(*stored);
  return out;
}

}  // namespace acs::cli
