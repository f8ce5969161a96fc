// acs compress MODEL --policy P.json --out OUT.pt [--format torch|acs]: apply a policy and
// export TorchScript, for stock PyTorch or for the acs runtime.
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/compressor.h"
#include "core/importer.h"
#include "core/quantized_export.h"
#include "devices/runtime/runtime.h"

namespace acs::cli {
namespace {

const char kHelp[] =
    "usage: acs compress MODEL.pt --policy POLICY.json --out OUT.pt [--input SHAPE]\n"
    "                    [--calib DATA] [--calib-samples N] [--no-bn-recal] [--masked]\n"
    "                    [--refit exact|sweep|exact+sweep|none]\n"
    "                    [--int8 auto|ops|simulated] [--format torch|acs] [--threads N]\n"
    "\n"
    "Applies a per-layer policy (see README: policy JSON) and writes a TorchScript file\n"
    "that stock PyTorch loads, in which removed channels are gone, pruned weights are\n"
    "zero, int8 layers run as PyTorch's quantized ops and bf16 / int4 weights hold their\n"
    "rounded values.\n"
    "\n"
    "  --policy FILE        the policy JSON (required)\n"
    "  --out FILE           where to write the compressed model (required)\n"
    "  --input SHAPE        model input shape, e.g. 1x3x32x32 (default: from --calib data)\n"
    "  --calib DATA         calibration data for batch-norm recalibration and int8 ranges\n"
    "  --calib-samples N    calibration samples to use (default 256)\n"
    "  --no-bn-recal        keep the batch-norm statistics of the original model\n"
    "  --masked             keep dense shapes, zeroing removed channels instead\n"
    "  --refit MODE         with --calib: how layers are refit to the dense model's outputs by\n"
    "                       least squares; exact (default): exactly where that is cheap, not\n"
    "                       at all elsewhere; sweep: every layer by SparseGPT's column sweep;\n"
    "                       exact+sweep: the sweep where exact is too costly; none: no refit\n"
    "  --int8 MODE          auto (default): int8 layers as quantized::conv2d / linear,\n"
    "                       quint8 between them, except regions whose quantize / dequantize\n"
    "                       borders cost more than they save, which run in fp32;\n"
    "                       ops: every region as quantized ops; simulated: fp32 layers with\n"
    "                       int8-rounded weights behind fake-quantized inputs (what the\n"
    "                       search scores and acs-worker runs)\n"
    "  --format FORMAT      torch (default): the file above; acs: the model as the acs CPU\n"
    "                       runtime compiles it (sparse, int8, int4w and 3x3 depthwise\n"
    "                       layers as acs_rt ops on its kernels, the rest as LibTorch ops),\n"
    "                       which runs after torch.ops.load_library(\"libacs_ops.so\")\n"
    "                       (docs/export.md); --int8 does not apply\n"
    "  --threads N          --format acs: threads of the packed layers' kernels (default 1)\n";

// Compiles `compressed` for the acs runtime and writes it to `out`; *note says what runs
// each layer.
Status SaveForRuntime(const ImportedModel& model, const Policy& policy, const CompressedModel& compressed, int threads,
                      const std::string& out, std::string* note) {
  runtime::RuntimeOptions options;
  options.threads = threads;
  options.optimize_dense = false;  // Save writes the graph before optimize_for_inference anyway
  ACS_ASSIGN_OR_RETURN(runtime::RuntimeModel rt, runtime::CompileForRuntime(model, policy, compressed, options));
  ACS_RETURN_IF_ERROR(rt.Save(out));
  std::map<std::string, int> kinds;
  for (const runtime::LayerKernel& k : rt.layers()) ++kinds[KernelKindName(k.kind)];
  *note = "acs runtime kernels:";
  for (const auto& [kind, n] : kinds) *note += " " + kind + " " + std::to_string(n);
  *note += "; load with torch.ops.load_library(\"libacs_ops.so\") before torch.jit.load";
  return Status::Ok();
}

}  // namespace

int CompressCommand(int argc, char** argv) {
  std::set<std::string> valued = {"policy", "out",    "input",   "calib", "calib-samples",
                                  "int8",   "format", "threads", "refit"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  auto args = ParseFlags(argc, argv, 2, valued, {"help", "no-bn-recal", "masked"});
  if (!args.ok()) return Fail("compress", args.status());
  if (args->Has("help")) {
    std::cout << kHelp << "\n" << kDataHelp;
    return 0;
  }
  if (args->positional.size() != 1) {
    std::cerr << "acs compress: expected one MODEL file\n\n" << kHelp;
    return 2;
  }
  const std::string model_path = args->positional[0];
  if (!args->Has("policy")) return Fail("compress", Status::InvalidArgument("--policy FILE is required"));
  if (!args->Has("out")) return Fail("compress", Status::InvalidArgument("--out FILE is required"));
  auto policy = Policy::FromFile(args->Get("policy"));
  if (!policy.ok()) return Fail("compress", policy.status());
  auto samples = args->GetInt("calib-samples", 256);
  if (!samples.ok()) return Fail("compress", samples.status());

  Shape input;
  if (args->Has("input")) {
    auto parsed = ParseShape(args->Get("input"));
    if (!parsed.ok()) return Fail("compress", parsed.status());
    input = *parsed;
  }
  CompressorOptions options;
  if (args->Has("calib")) {
    auto data = LoadDataFlag(*args, args->Get("calib"), input, *samples);
    if (!data.ok()) return Fail("compress", data.status());
    options.calibration = data->images;
    if (input.empty()) {
      input = data->images.sizes().vec();
      input[0] = 1;
    }
  }
  if (input.empty()) {
    return Fail("compress", Status::InvalidArgument("--input SHAPE is required when no --calib data is given"));
  }
  options.recalibrate_batch_norm = !args->Has("no-bn-recal");
  options.remove_channels = !args->Has("masked");
  const std::string refit = args->Get("refit", "exact");
  constexpr double kSweepFlops = 1e11;  // a reduction of about 4,600 (512 x 3 x 3)
  if (refit == "sweep" || refit == "exact+sweep") options.max_sweep_flops = kSweepFlops;
  if (refit == "sweep") options.max_reconstruction_flops = 0;
  if (refit == "none") options.reconstruct = false;
  if (refit != "exact" && refit != "sweep" && refit != "exact+sweep" && refit != "none") {
    return Fail("compress",
                Status::InvalidArgument("--refit is 'exact', 'sweep', 'exact+sweep' or 'none', not '" + refit + "'"));
  }
  const std::string int8 = args->Get("int8", "auto");
  if (int8 != "auto" && int8 != "ops" && int8 != "simulated") {
    return Fail("compress", Status::InvalidArgument("--int8 is 'auto', 'ops' or 'simulated', not '" + int8 + "'"));
  }
  const std::string format = args->Get("format", "torch");
  if (format != "torch" && format != "acs") {
    return Fail("compress", Status::InvalidArgument("--format is 'torch' or 'acs', not '" + format + "'"));
  }
  if (format == "acs" && args->Has("int8")) {
    return Fail("compress", Status::InvalidArgument("--int8 applies to --format torch; --format acs runs int8 "
                                                    "layers on the acs int8 kernels"));
  }
  auto threads = args->GetInt("threads", 1);
  if (!threads.ok()) return Fail("compress", threads.status());
  if (*threads < 1) return Fail("compress", Status::InvalidArgument("--threads must be >= 1"));

  auto model = ImportTorchScript(model_path, {input});
  if (!model.ok()) return Fail("compress", model.status());
  auto compressed = Compress(**model, *policy, options);
  if (!compressed.ok()) return Fail("compress", compressed.status());
  std::string note;
  if (format == "acs") {
    Status saved = SaveForRuntime(**model, *policy, *compressed, static_cast<int>(*threads), args->Get("out"), &note);
    if (!saved.ok()) return Fail("compress", saved);
  } else if (int8 != "simulated") {
    QuantizedExportOptions q;
    q.calibration = options.calibration;
    q.drop_uneconomic_regions = int8 == "auto";
    auto stock = ExportQuantizedOps(compressed->module, q);
    if (!stock.ok()) return Fail("compress", stock.status());
    compressed->module = stock->module;
    note = QuantizedExportSummary(*stock);
  }
  if (format == "torch") {
    Status saved = compressed->Save(args->Get("out"));
    if (!saved.ok()) return Fail("compress", saved);
  }

  Table table({"layer", "pattern", "sparsity", "precision", "out ch", "in ch", "weights", "zeros"});
  for (const LayerResult& r : compressed->layers) {
    std::string pattern = PatternName(r.config.pattern);
    if (r.config.pattern == Pattern::kBlock) pattern += " 1x" + std::to_string(r.config.block);
    if (r.config.pattern == Pattern::kNM)
      pattern += " " + std::to_string(r.config.nm_n) + ":" + std::to_string(r.config.nm_m);
    auto change = [](int64_t before, int64_t after) {
      return before == after ? std::to_string(before) : std::to_string(before) + " -> " + std::to_string(after);
    };
    table.AddRow({r.name, pattern, Percent(r.config.EffectiveSparsity(), 0), PrecisionName(r.config.precision),
                  change(r.out_channels_before, r.out_channels_after),
                  change(r.in_channels_before, r.in_channels_after), HumanCount(static_cast<double>(r.weights)),
                  Percent(r.weights ? static_cast<double>(r.zeros) / static_cast<double>(r.weights) : 0)});
  }
  table.Print(std::cout);
  std::cout << "\npolicy " << compressed->policy_hash << ": parameters "
            << HumanCount(static_cast<double>(compressed->params_before)) << " -> "
            << HumanCount(static_cast<double>(compressed->params_after)) << " stored, "
            << HumanCount(static_cast<double>(compressed->nonzero_after)) << " non-zero ("
            << Percent(static_cast<double>(compressed->nonzero_after) /
                       static_cast<double>(std::max<int64_t>(1, compressed->params_before)))
            << " of the original)\n";
  std::cout << "file " << model_path << " (" << FileSize(model_path) << ") -> " << args->Get("out") << " ("
            << FileSize(args->Get("out")) << ")\n";
  if (!note.empty()) std::cout << note << "\n";
  return 0;
}

}  // namespace acs::cli
