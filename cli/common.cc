#include "cli/common.h"

#include <iostream>
#include <sstream>

namespace acs::cli {

const char kDataHelp[] =
    "data options:\n"
    "  --split train|test  split of a directory of IDX files (default test)\n"
    "  --pad N             zero padding on every side before resizing (default 0)\n"
    "  --mean M[,M,M]      normalization mean per channel (default none)\n"
    "  --std S[,S,S]       normalization std per channel (default none)\n"
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

StatusOr<Dataset> LoadDataFlag(const Flags& args, const std::string& path, const Shape& input_shape,
                               int64_t limit) {
  DatasetOptions options;
  if (input_shape.size() == 4) options = FitToInput(input_shape);
  options.limit = limit;
  options.split = args.Get("split", "test");
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
  return LoadDataset(path, options);
}

}  // namespace acs::cli
