// acs-zoo: trains the model zoo on Fashion-MNIST and writes each model as TorchScript
// (DIR/NAME.pt, eval mode) with a JSON sidecar (DIR/NAME.json) describing how it was made.
// A model whose files already match the requested epochs and seed is not retrained.

#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/dataset.h"
#include "core/status.h"
#include "experiments/zoo/zoo_models.h"
#include "experiments/zoo/zoo_trainer.h"

namespace acs {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kFormatVersion = 1;  // bump when the models or the file layout change
constexpr char kDefaultData[] = "/usr/share/datasets/fashion-mnist";

// Per-model training defaults, chosen so each model trains in 3-5 minutes with one thread
// on a busy 2-core machine (about 60-95 s per epoch for vgg, 55-80 s for resnet20 and
// 75-105 s for mobilenetv2) and reaches about 91% test top-1.
struct Recipe {
  const char* model;
  int64_t epochs;
  double peak_lr;
};
constexpr Recipe kRecipes[] = {
    {"vgg", 3, 0.05},
    {"resnet20", 4, 0.1},
    {"mobilenetv2", 3, 0.1},
};

const Recipe* FindRecipe(const std::string& model) {
  for (const Recipe& r : kRecipes) {
    if (model == r.model) return &r;
  }
  return nullptr;
}

struct CliOptions {
  std::string command;             // "train", "list" or "help"
  std::string model;               // a zoo model name or "all"
  std::string out;                 // output directory
  std::string data = kDefaultData; // Fashion-MNIST IDX directory
  int64_t epochs = 0;              // 0 = the model's default
  uint64_t seed = 1;               // weight init, data order and augmentation
  int threads = 0;                 // 0 = one per core
  bool force = false;              // retrain even when cached files match
};

void PrintUsage(std::ostream& out) {
  out << "Usage:\n"
         "  acs-zoo train --model NAME|all --out DIR [options]\n"
         "  acs-zoo list\n"
         "  acs-zoo --help\n"
         "\n"
         "Trains Fashion-MNIST classifiers and writes DIR/NAME.pt (TorchScript, eval mode)\n"
         "and DIR/NAME.json. Models take [B,1,28,28] pixels in [0,1]; normalization is part\n"
         "of the model. Files that match the requested epochs and seed are kept.\n"
         "\n"
         "Options for train:\n"
         "  --model NAME|all  model to train (see `acs-zoo list`), or every model\n"
         "  --out DIR         output directory, created if missing\n"
         "  --epochs E        passes over the training set (default: per model)\n"
         "  --seed S          seed for weights, data order and augmentation (default 1)\n"
         "  --data DIR        Fashion-MNIST IDX directory (default " << kDefaultData << ")\n"
         "  --threads N       intra-op threads (default: one per core; on a busy machine\n"
         "                    1 can be faster)\n"
         "  --force           retrain even when cached files match\n";
}

Status ParseInt(const std::string& flag, const std::string& text, int64_t min, int64_t* out) {
  try {
    size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used == text.size() && v >= min) {
      *out = v;
      return Status::Ok();
    }
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(flag + " needs an integer >= " + std::to_string(min) +
                                 ", got '" + text + "'");
}

StatusOr<CliOptions> ParseArgs(int argc, char** argv) {
  CliOptions o;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Status::InvalidArgument("missing command");
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h" || a == "help") {
      o.command = "help";
      return o;
    }
    if (i == 0) {
      if (a != "train" && a != "list") return Status::InvalidArgument("unknown command '" + a + "'");
      o.command = a;
      continue;
    }
    if (a == "--force") {
      o.force = true;
      continue;
    }
    const bool takes_value = a == "--model" || a == "--out" || a == "--epochs" ||
                             a == "--seed" || a == "--data" || a == "--threads";
    if (!takes_value) return Status::InvalidArgument("unknown argument '" + a + "'");
    if (i + 1 >= args.size()) return Status::InvalidArgument(a + " needs a value");
    const std::string& v = args[++i];
    int64_t number = 0;
    if (a == "--model") {
      o.model = v;
    } else if (a == "--out") {
      o.out = v;
    } else if (a == "--data") {
      o.data = v;
    } else if (a == "--epochs") {
      ACS_RETURN_IF_ERROR(ParseInt(a, v, 1, &o.epochs));
    } else if (a == "--seed") {
      ACS_RETURN_IF_ERROR(ParseInt(a, v, 0, &number));
      o.seed = static_cast<uint64_t>(number);
    } else if (a == "--threads") {
      ACS_RETURN_IF_ERROR(ParseInt(a, v, 1, &number));
      o.threads = static_cast<int>(number);
    }
  }
  if (o.command == "train") {
    if (o.model.empty()) return Status::InvalidArgument("train needs --model NAME|all");
    if (o.out.empty()) return Status::InvalidArgument("train needs --out DIR");
    if (o.model != "all" && FindRecipe(o.model) == nullptr) {
      return Status::NotFound("no zoo model named '" + o.model + "'; see `acs-zoo list`");
    }
  }
  return o;
}

std::string FormatDuration(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  }
  return buf;
}

// Progress on stderr: one rewritten line on a terminal, otherwise a line every 10 s.
class ConsoleProgress : public TrainObserver {
 public:
  explicit ConsoleProgress(std::string model)
      : model_(std::move(model)), tty_(isatty(STDERR_FILENO) != 0) {}

  void OnStep(const TrainProgress& p) override {
    const double interval = tty_ ? 0.25 : 10.0;
    if (p.elapsed_seconds - last_print_ < interval && p.batch != p.batches) return;
    last_print_ = p.elapsed_seconds;
    char line[200];
    std::snprintf(line, sizeof(line),
                  "%s epoch %lld/%lld batch %lld/%lld loss %.4f acc %.2f%% elapsed %s eta %s",
                  model_.c_str(), static_cast<long long>(p.epoch),
                  static_cast<long long>(p.epochs), static_cast<long long>(p.batch),
                  static_cast<long long>(p.batches), p.loss, 100 * p.top1,
                  FormatDuration(p.elapsed_seconds).c_str(), FormatDuration(p.eta_seconds).c_str());
    std::fprintf(stderr, tty_ ? "\r%s\033[K" : "%s\n", line);
    std::fflush(stderr);
  }

  void OnEpoch(const EpochStats& s) override {
    std::fprintf(stderr, "%s%s epoch %lld: train loss %.4f acc %.2f%%, test top-1 %.2f%%, %s\n",
                 tty_ ? "\r\033[K" : "", model_.c_str(), static_cast<long long>(s.epoch),
                 s.train_loss, 100 * s.train_top1, 100 * s.test_top1,
                 FormatDuration(s.seconds).c_str());
  }

 private:
  std::string model_;
  bool tty_;
  double last_print_ = -1e9;
};

// The sidecar of DIR/NAME.pt if both files exist and it matches epochs, seed and format.
std::optional<json> CachedMetadata(const fs::path& pt, const fs::path& meta, int64_t epochs,
                                   uint64_t seed) {
  std::error_code ec;
  if (!fs::exists(pt, ec) || !fs::exists(meta, ec)) return std::nullopt;
  try {
    std::ifstream in(meta);
    json j = json::parse(in);
    if (j.at("format_version").get<int>() == kFormatVersion &&
        j.at("epochs").get<int64_t>() == epochs && j.at("seed").get<uint64_t>() == seed) {
      return j;
    }
  } catch (const std::exception&) {
    // Unreadable sidecar: retrain and overwrite it.
  }
  return std::nullopt;
}

// Writes `path` by writing a temporary file beside it and renaming it into place.
template <typename WriteFn>
Status WriteAtomically(const fs::path& path, WriteFn write) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(getpid());
  try {
    write(tmp);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return Status::Internal("writing " + tmp.string() + ": " + e.what());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Status::Internal("renaming into " + path.string() + ": " + ec.message());
  }
  return Status::Ok();
}

// Loads a saved module back and checks it computes what the in-memory one does.
Status VerifySaved(const fs::path& path, torch::jit::Module model, const Dataset& test) {
  try {
    torch::jit::Module loaded = torch::jit::load(path.string());
    loaded.eval();
    model.eval();
    torch::NoGradGuard no_grad;
    torch::Tensor x = test.images.narrow(0, 0, std::min<int64_t>(64, test.size()));
    torch::Tensor a = model.forward({x}).toTensor(), b = loaded.forward({x}).toTensor();
    if (!torch::allclose(a, b, 1e-4, 1e-5)) {
      return Status::Internal("the saved model " + path.string() + " computes different logits");
    }
  } catch (const c10::Error& e) {
    return Status::Internal("reloading " + path.string() + ": " + e.what_without_backtrace());
  }
  return Status::Ok();
}

struct Data {
  Dataset train;
  Dataset test;
};

StatusOr<Data> LoadFashionMnist(const std::string& dir) {
  Data d;
  DatasetOptions options;
  options.split = "train";
  ACS_ASSIGN_OR_RETURN(d.train, LoadDataset(dir, options));
  options.split = "test";
  ACS_ASSIGN_OR_RETURN(d.test, LoadDataset(dir, options));
  std::vector<int64_t> shape = ZooInputShape();
  if (d.train.images.dim() != 4 || d.train.images.size(1) != shape[1] ||
      d.train.images.size(2) != shape[2] || d.train.images.size(3) != shape[3]) {
    return Status::InvalidArgument(dir + " does not hold 1x28x28 images");
  }
  return d;
}

Status TrainAndSave(const std::string& name, const CliOptions& cli, int64_t epochs,
                    const Data& data, const fs::path& pt, const fs::path& meta) {
  const Recipe& recipe = *FindRecipe(name);
  ACS_ASSIGN_OR_RETURN(torch::jit::Module model, BuildZooModel(name, cli.seed));
  TrainOptions options;
  options.epochs = epochs;
  options.peak_lr = recipe.peak_lr;
  options.seed = cli.seed;
  std::fprintf(stderr, "%s: %lld parameters, %lld epochs, %lld training images, %d threads\n",
               name.c_str(), static_cast<long long>(CountParameters(model)),
               static_cast<long long>(epochs), static_cast<long long>(data.train.size()),
               at::get_num_threads());
  ConsoleProgress progress(name);
  ACS_ASSIGN_OR_RETURN(TrainResult result,
                       TrainClassifier(model, data.train, data.test, options, &progress));

  ACS_RETURN_IF_ERROR(WriteAtomically(pt, [&](const fs::path& tmp) {
    model.save(tmp.string());
    Status verified = VerifySaved(tmp, model, data.test);
    if (!verified.ok()) throw std::runtime_error(verified.message());
  }));

  json j;
  j["model"] = name;
  j["format_version"] = kFormatVersion;
  j["epochs"] = epochs;
  j["seed"] = cli.seed;
  j["test_top1"] = result.test_top1;
  j["train_seconds"] = result.train_seconds;
  j["params"] = CountParameters(model);
  j["input_shape"] = ZooInputShape();
  j["classes"] = kZooClasses;
  j["normalization_baked_in"] = true;
  j["normalization"] = {{"mean", {kZooMean}}, {"std", {kZooStd}}};
  j["dataset"] = cli.data;
  j["threads"] = at::get_num_threads();
  j["training"] = {{"optimizer", "sgd_nesterov"},    {"momentum", options.momentum},
                   {"weight_decay", options.weight_decay}, {"batch_size", options.batch_size},
                   {"schedule", "one_cycle_cosine"},  {"peak_lr", options.peak_lr},
                   {"random_crop", options.random_crop},
                   {"horizontal_flip", options.horizontal_flip}};
  json history = json::array();
  for (const EpochStats& s : result.epochs) {
    history.push_back({{"epoch", s.epoch},
                       {"train_loss", s.train_loss},
                       {"train_top1", s.train_top1},
                       {"test_top1", s.test_top1},
                       {"seconds", s.seconds}});
  }
  j["history"] = history;
  ACS_RETURN_IF_ERROR(WriteAtomically(meta, [&](const fs::path& tmp) {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    out.close();
    if (!out) throw std::runtime_error("write failed");
  }));
  std::printf("trained: %s test top-1 %.2f%% in %s -> %s\n", name.c_str(), 100 * result.test_top1,
              FormatDuration(result.train_seconds).c_str(), pt.string().c_str());
  return Status::Ok();
}

Status RunTrain(const CliOptions& cli) {
  std::vector<std::string> names =
      cli.model == "all" ? ZooModelNames() : std::vector<std::string>{cli.model};
  std::error_code ec;
  fs::create_directories(cli.out, ec);
  if (ec) return Status::FailedPrecondition("cannot create " + cli.out + ": " + ec.message());
  int threads = cli.threads > 0 ? cli.threads
                                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  // Run the ops one by one under autograd rather than through graph-executor autodiff,
  // whose generic gradients (e.g. for hardtanh) make training slower here.
  torch::jit::setGraphExecutorOptimize(false);

  std::optional<Data> data;  // loaded on first need
  for (const std::string& name : names) {
    const Recipe* recipe = FindRecipe(name);
    if (recipe == nullptr) return Status::Internal("no training recipe for " + name);
    const int64_t epochs = cli.epochs > 0 ? cli.epochs : recipe->epochs;
    const fs::path pt = fs::path(cli.out) / (name + ".pt");
    const fs::path meta = fs::path(cli.out) / (name + ".json");
    if (!cli.force) {
      if (std::optional<json> cached = CachedMetadata(pt, meta, epochs, cli.seed)) {
        std::printf("cached: %s test top-1 %.2f%%\n", name.c_str(),
                    100 * cached->value("test_top1", 0.0));
        continue;
      }
    }
    if (!data) {
      ACS_ASSIGN_OR_RETURN(Data loaded, LoadFashionMnist(cli.data));
      data = std::move(loaded);
    }
    ACS_RETURN_IF_ERROR(TrainAndSave(name, cli, epochs, *data, pt, meta));
  }
  return Status::Ok();
}

int Main(int argc, char** argv) {
  StatusOr<CliOptions> cli = ParseArgs(argc, argv);
  if (!cli.ok()) {
    std::cerr << "acs-zoo: " << cli.status().message() << "\nRun `acs-zoo --help` for usage.\n";
    return 2;
  }
  if (cli->command == "help") {
    PrintUsage(std::cout);
    return 0;
  }
  if (cli->command == "list") {
    for (const Recipe& r : kRecipes) {
      std::printf("%-12s default %lld epochs\n", r.model, static_cast<long long>(r.epochs));
    }
    return 0;
  }
  Status s = RunTrain(*cli);
  if (!s.ok()) {
    std::cerr << "acs-zoo: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs

int main(int argc, char** argv) { return acs::Main(argc, argv); }
