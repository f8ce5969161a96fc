// acs eval MODEL --data DATA: top-1 / top-5 accuracy, or fidelity against a reference.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/evaluator.h"
#include "core/importer.h"
#include "core/torchscript_model.h"

namespace acs::cli {
namespace {

const char kHelp[] =
    "usage: acs eval MODEL.pt --data DATA [--limit N] [--input SHAPE] [--reference DENSE.pt]\n"
    "\n"
    "Top-1 / top-5 accuracy on labelled data. With --reference (or on data without\n"
    "labels), also the fidelity against the reference model: top-1 agreement and mean KL.\n"
    "\n"
    "  --data DATA          the dataset (required)\n"
    "  --limit N            evaluate the first N samples (default all)\n"
    "  --input SHAPE        resize / channel-repeat the data to this model input shape\n"
    "  --reference FILE     a reference model (usually the dense original)\n"
    "  --batch N            samples per forward pass (default 128)\n";

StatusOr<torch::jit::Module> LoadModel(const std::string& path) {
  try {
    torch::jit::Module m = torch::jit::load(path);
    m.eval();
    return m;
  } catch (const std::exception& e) {
    return Status::DataLoss("cannot load '" + path + "' as a TorchScript model: " + ShortError(e));
  }
}

ModelFn AsModelFn(torch::jit::Module& module) {
  return [&module](const torch::Tensor& batch) {
    StatusOr<torch::Tensor> out = RunModule(module, batch);
    if (!out.ok()) throw std::runtime_error(out.status().message());
    return *out;
  };
}

}  // namespace

int EvalCommand(int argc, char** argv) {
  std::set<std::string> valued = {"data", "limit", "input", "reference", "batch"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  auto args = ParseFlags(argc, argv, 2, valued, {"help"});
  if (!args.ok()) return Fail("eval", args.status());
  if (args->Has("help")) {
    std::cout << kHelp << "\n" << kDataHelp;
    return 0;
  }
  if (args->positional.size() != 1) {
    std::cerr << "acs eval: expected one MODEL file\n\n" << kHelp;
    return 2;
  }
  if (!args->Has("data")) return Fail("eval", Status::InvalidArgument("--data DATA is required"));
  auto limit = args->GetInt("limit", 0);
  if (!limit.ok()) return Fail("eval", limit.status());
  auto batch = args->GetInt("batch", 128);
  if (!batch.ok()) return Fail("eval", batch.status());
  Shape input;
  if (args->Has("input")) {
    auto parsed = ParseShape(args->Get("input"));
    if (!parsed.ok()) return Fail("eval", parsed.status());
    input = *parsed;
  }
  const std::string path = args->positional[0];
  if (!std::filesystem::exists(path)) return Fail("eval", Status::NotFound("model file '" + path + "' does not exist"));
  auto model = LoadModel(path);
  if (!model.ok()) return Fail("eval", model.status());
  auto data = LoadDataFlag(*args, args->Get("data"), input, *limit);
  if (!data.ok()) return Fail("eval", data.status());
  EvalOptions options;
  options.batch_size = *batch;

  std::cout << "model " << path << " on " << data->source << " (" << data->size() << " samples)\n";
  bool evaluated = false;
  if (data->has_labels()) {
    auto acc = EvaluateAccuracy(AsModelFn(*model), *data, options);
    if (!acc.ok()) return Fail("eval", acc.status());
    std::cout << "top-1 " << Percent(acc->top1, 2) << "  top-5 " << Percent(acc->top5, 2) << "\n";
    evaluated = true;
  }
  if (args->Has("reference")) {
    auto reference = LoadModel(args->Get("reference"));
    if (!reference.ok()) return Fail("eval", reference.status());
    auto fid = EvaluateFidelity(AsModelFn(*reference), AsModelFn(*model), *data, options);
    if (!fid.ok()) return Fail("eval", fid.status());
    char kl[32];
    std::snprintf(kl, sizeof kl, "%.4f", fid->mean_kl);
    std::cout << "fidelity vs " << args->Get("reference") << ": top-1 agreement " << Percent(fid->top1_agreement, 2)
              << "  mean KL " << kl << " nats\n";
    evaluated = true;
  }
  if (!evaluated) {
    return Fail("eval", Status::InvalidArgument("'" + args->Get("data") +
                                                "' has no labels; give --reference MODEL to measure fidelity"));
  }
  return 0;
}

}  // namespace acs::cli
