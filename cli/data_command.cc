// acs data inspect DATA: a dataset as a model sees it, after its preprocessing.
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/image_folder.h"

namespace acs::cli {
namespace {

const char kHelp[] =
    "usage: acs data inspect DATA [--input SHAPE] [--preprocess SPEC] [--limit N] [--save FILE]\n"
    "                             [--grid FILE.png]\n"
    "\n"
    "Reads a dataset as a model of input SHAPE would get it (with --preprocess, as the spec\n"
    "prepares it) and prints the sample count, the images' shape, the count per class and\n"
    "each channel's mean and standard deviation after preprocessing: what a model trained\n"
    "on normalized data expects is about 0 and 1.\n"
    "\n"
    "  --input SHAPE        fit the data to this model input shape, e.g. 1x3x32x32\n"
    "  --limit N            read the first N samples (default all)\n"
    "  --save FILE          write (images, labels) as a torch.save'd tuple, for Python's\n"
    "                       torch.load (labels: an empty tensor without labels)\n"
    "  --grid FILE.png      write the first 16 samples as a 4x4 PNG grid, each scaled to its\n"
    "                       own range: what the model gets, to look at\n";

}  // namespace

int DataCommand(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) != "inspect") {
    if (argc >= 3 && (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h")) {
      std::cout << kHelp << "\n" << kDataHelp;
      return 0;
    }
    std::cerr << "acs data: expected 'inspect'\n\n" << kHelp;
    return 2;
  }
  std::set<std::string> valued = {"input", "limit", "save", "grid"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  auto args = ParseFlags(argc, argv, 3, valued, {"help"});
  if (!args.ok()) return Fail("data", args.status());
  if (args->Has("help")) {
    std::cout << kHelp << "\n" << kDataHelp;
    return 0;
  }
  if (args->positional.size() != 1) {
    std::cerr << "acs data inspect: expected one DATA path\n\n" << kHelp;
    return 2;
  }
  auto limit = args->GetInt("limit", 0);
  if (!limit.ok()) return Fail("data", limit.status());
  Shape input;
  if (args->Has("input")) {
    auto parsed = ParseShape(args->Get("input"));
    if (!parsed.ok()) return Fail("data", parsed.status());
    input = *parsed;
  }
  auto data = LoadDataFlag(*args, args->positional[0], input, *limit);
  if (!data.ok()) return Fail("data", data.status());

  const torch::Tensor& x = data->images;
  std::cout << data->source << ": " << data->size() << " samples of " << x.size(1) << "x" << x.size(2) << "x"
            << x.size(3) << "\n";
  if (data->has_labels() && data->size() > 0) {
    const torch::Tensor counts = data->labels.bincount();
    Table classes({"class", "samples"});
    for (int64_t c = 0; c < counts.size(0); ++c) {
      classes.AddRow({std::to_string(c), std::to_string(counts[c].item<int64_t>())});
    }
    classes.Print(std::cout);
  } else {
    std::cout << "no labels\n";
  }
  if (data->size() > 0) {
    Table stats({"channel", "mean", "std", "min", "max"});
    for (int64_t c = 0; c < x.size(1); ++c) {
      const torch::Tensor ch = x.select(1, c).to(torch::kDouble);
      char mean[32], sd[32], lo[32], hi[32];
      std::snprintf(mean, sizeof mean, "%.4f", ch.mean().item<double>());
      std::snprintf(sd, sizeof sd, "%.4f", ch.std().item<double>());
      std::snprintf(lo, sizeof lo, "%.4f", ch.min().item<double>());
      std::snprintf(hi, sizeof hi, "%.4f", ch.max().item<double>());
      stats.AddRow({std::to_string(c), mean, sd, lo, hi});
    }
    stats.Print(std::cout);
  }
  if (args->Has("grid") && data->size() > 0) {
    if (Status s = WriteImageGrid(x, args->Get("grid")); !s.ok()) return Fail("data", s);
    std::cout << "wrote " << args->Get("grid") << " (the first " << std::min<int64_t>(16, data->size())
              << " samples)\n";
  }
  if (args->Has("save")) {
    const torch::Tensor labels = data->has_labels() ? data->labels : torch::empty({0}, torch::kLong);
    const std::vector<char> bytes = torch::pickle_save(c10::ivalue::Tuple::create({x, labels}));
    std::ofstream out(args->Get("save"), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return Fail("data", Status::Unavailable("cannot write " + args->Get("save")));
    std::cout << "wrote " << args->Get("save") << "\n";
  }
  return 0;
}

}  // namespace acs::cli
