// bench_models: the zoo models (data/zoo: vgg, resnet20, mobilenetv2; input 1x1x28x28)
// under uniform policies, compiled for the runtime. For each policy and thread count it
// prints and writes (--json PATH) the latency of the runtime beside that of the dense
// model in LibTorch (same threads, timed alternately by the measurement harness), and the
// accuracy of the runtime beside that of the simulated compressed model on Fashion-MNIST
// test images, which must agree up to rounding flips.
//
//   bench_models [--zoo DIR] [--data DIR] [--samples 1000] [--calibration 512]
//                [--threads 1,2] [--min-time SECONDS] [--models vgg,resnet20,...]
//                [--policies dense,int8,...] [--aten-depthwise] [--json PATH]
//
// --aten-depthwise leaves 3x3 depthwise convolutions to LibTorch instead of the depthwise
// kernel (RuntimeOptions::depthwise_kernel), to compare the two.
//
// Policies: the first convolution, the classifier and depthwise layers stay dense fp32 in
// all of them (as AMC keeps them; depthwise layers run the depthwise kernel); "dense" is
// the runtime with nothing pruned (batch norm folded only). "channel50+block80" alternates
// over the other layers: channel pruning at 50% where the layer's channel group is
// prunable, 1x8 blocks at 80% elsewhere. "int8" quantizes the other layers (int8 kernels;
// activation ranges calibrated on the training images). Batch norm is recalibrated on
// training images. Build in Release. On a host shared with other work,
// run with OMP_WAIT_POLICY=passive: spinning OpenMP workers that lose their core to
// another process otherwise turn 2-thread medians into scheduler noise.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/bench/bench_common.h"
#include "core/compressor.h"
#include "core/dataset.h"
#include "core/evaluator.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/measure/harness.h"
#include "devices/runtime/runtime.h"

#ifndef ACS_SOURCE_DIR
#define ACS_SOURCE_DIR "."
#endif

namespace acs::bench {
namespace {

struct Args {
  std::string zoo = std::string(ACS_SOURCE_DIR) + "/data/zoo";
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t samples = 1000;
  int64_t calibration = 512;
  std::vector<int> threads = {1, 2};
  double min_time = 0.3;
  std::vector<std::string> models = {"vgg", "resnet20", "mobilenetv2"};
  std::vector<std::string> policies;  // empty: all
  bool aten_depthwise = false;
  std::string json;
};

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
  return out;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  const char* usage =
      "usage: bench_models [--zoo DIR] [--data DIR] [--samples N] [--calibration N] [--threads 1,2]\n"
      "                    [--min-time S] [--models vgg,resnet20,mobilenetv2] [--policies NAME,...]\n"
      "                    [--aten-depthwise] [--json PATH]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n%s", arg.c_str(), usage);
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (arg == "--zoo") a.zoo = next();
      else if (arg == "--data") a.data = next();
      else if (arg == "--samples") a.samples = std::stoll(next());
      else if (arg == "--calibration") a.calibration = std::stoll(next());
      else if (arg == "--min-time") a.min_time = std::stod(next());
      else if (arg == "--models") a.models = Split(next());
      else if (arg == "--policies") a.policies = Split(next());
      else if (arg == "--aten-depthwise") a.aten_depthwise = true;
      else if (arg == "--json") a.json = next();
      else if (arg == "--threads") {
        a.threads.clear();
        for (const std::string& t : Split(next())) a.threads.push_back(std::stoi(t));
      } else {
        std::fprintf(arg == "--help" ? stdout : stderr, "%s", usage);
        std::exit(arg == "--help" ? 0 : 2);
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "bad value for %s\n%s", arg.c_str(), usage);
      std::exit(2);
    }
  }
  return a;
}

// Layers every policy keeps dense: the first convolution, the last linear layer, and
// depthwise / grouped convolutions (which run dense anyway).
bool KeptDense(const Graph& g, size_t index) {
  const Layer& l = g.layers[index];
  size_t first = g.layers.size(), last = 0;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    if (!g.layers[i].compressible) continue;
    first = std::min(first, i);
    last = i;
  }
  return !l.compressible || index == first || index == last || l.groups > 1;
}

struct NamedPolicy {
  std::string name;
  Policy policy;
};

std::vector<NamedPolicy> Policies(const Graph& g) {
  const LayerConfig block50{0.5, Pattern::kBlock, 8}, block80{0.8, Pattern::kBlock, 8};
  const LayerConfig block90{0.9, Pattern::kBlock, 8};
  const LayerConfig unstructured90{0.9, Pattern::kUnstructured}, channel50{0.5, Pattern::kChannel};
  NamedPolicy dense{"dense", {}}, b50{"block1x8-50", {}}, b80{"block1x8-80", {}}, b90{"block1x8-90", {}};
  NamedPolicy u90{"unstructured-90", {}}, mixed{"channel50+block80", {}}, int8{"int8", {}};
  LayerConfig int8_config;
  int8_config.precision = Precision::kInt8;
  int position = 0;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    if (KeptDense(g, i)) continue;
    const Layer& l = g.layers[i];
    const bool fits_block = l.out_channels % 8 == 0;
    if (fits_block) {
      b50.policy.layers[l.name] = block50;
      b80.policy.layers[l.name] = block80;
      b90.policy.layers[l.name] = block90;
    }
    u90.policy.layers[l.name] = unstructured90;
    int8.policy.layers[l.name] = int8_config;
    const bool prunable = l.out_group >= 0 && g.groups[l.out_group].prunable;
    if (position++ % 2 == 0 && prunable) {
      mixed.policy.layers[l.name] = channel50;
    } else if (fits_block) {
      mixed.policy.layers[l.name] = block80;
    }
  }
  return {dense, b50, b80, b90, u90, mixed, int8};
}

struct Row {
  std::string model, policy;
  int threads = 1;
  measure::Measurement runtime, dense, dense_plain;  // dense: the optimized (strongest) baseline
  std::string dense_baseline;                        // what `dense` ran
  bool runtime_dense_optimized = false;
  int packed_layers = 0, layers = 0;  // layers run by an acs_rt kernel, of all layers
  double acc_simulated = 0, acc_runtime = 0;
  int64_t flips = 0;
  nlohmann::json ToJson() const {
    return {{"model", model},
            {"policy", policy},
            {"threads", threads},
            {"runtime", measure::ToJson(runtime, false)},
            {"dense", measure::ToJson(dense, false)},
            {"dense_baseline", dense_baseline},
            {"runtime_dense_optimized", runtime_dense_optimized},
            {"dense_plain", measure::ToJson(dense_plain, false)},
            {"speedup", dense.median_us / runtime.median_us},
            {"speedup_vs_plain", dense_plain.median_us / runtime.median_us},
            {"packed_layers", packed_layers},
            {"layers", layers},
            {"top1_simulated", acc_simulated},
            {"top1_runtime", acc_runtime},
            {"prediction_flips", flips}};
  }
};

// A ModelFn over anything with StatusOr<Tensor> Forward(x).
template <class M>
ModelFn AsModelFn(M& model) {
  return [&model](const torch::Tensor& x) {
    StatusOr<torch::Tensor> y = model.Forward(x);
    TORCH_CHECK(y.ok(), y.status().message());
    return *y;
  };
}

void BenchModel(const Args& args, const std::string& name, const Dataset& test, const Dataset& calibration,
                std::vector<Row>* rows) {
  const std::string path = args.zoo + "/" + name + ".pt";
  if (!std::filesystem::exists(path)) {
    std::printf("%-12s skipped: %s does not exist (train it with experiments/zoo)\n", name.c_str(), path.c_str());
    return;
  }
  const auto model = OrDie(ImportTorchScript(path, ImportOptions{{1, 1, 28, 28}}), name);
  CompressorOptions compress_options;
  compress_options.calibration = calibration.images;
  const EvalOptions eval{100, args.samples};
  measure::MeasureOptions timing;
  timing.min_seconds = args.min_time;
  const torch::Tensor x = test.images.narrow(0, 0, 1).contiguous();
  for (const NamedPolicy& p : Policies(model->graph)) {
    if (!args.policies.empty() && std::find(args.policies.begin(), args.policies.end(), p.name) == args.policies.end()) {
      continue;
    }
    CompressedModel compressed = OrDie(Compress(*model, p.policy, compress_options), name + " " + p.name);
    double acc_simulated = -1, acc_runtime = -1;
    int64_t flips = 0;
    for (int threads : args.threads) {
      runtime::RuntimeOptions options;
      options.threads = threads;
      options.depthwise_kernel = !args.aten_depthwise;
      runtime::RuntimeModel rt = OrDie(runtime::CompileForRuntime(*model, p.policy, compressed, options), name);
      runtime::DenseModel dense = OrDie(runtime::DenseModel::Create(*model, threads), name);
      runtime::DenseModel plain =
          OrDie(runtime::DenseModel::Create(*model, threads, runtime::DenseForm::kPlain), name);
      if (acc_runtime < 0) {  // accuracy does not depend on threads: measured once
        const ModelFn simulated = AsModelFn(compressed);
        acc_simulated = OrDie(EvaluateAccuracy(simulated, test, eval), "simulated").top1;
        acc_runtime = OrDie(EvaluateAccuracy(AsModelFn(rt), test, eval), "runtime").top1;
        const Fidelity f = OrDie(EvaluateFidelity(simulated, AsModelFn(rt), test, eval), "fidelity");
        flips = std::llround((1.0 - f.top1_agreement) * static_cast<double>(f.samples));
      }
      Row r;
      r.model = name;
      r.policy = p.name;
      r.threads = threads;
      for (const runtime::LayerKernel& k : rt.layers()) {
        r.packed_layers += k.kind != runtime::KernelKind::kDense && k.kind != runtime::KernelKind::kInt8Simulated;
      }
      r.layers = static_cast<int>(rt.layers().size());
      timing.threads = threads;
      std::vector<measure::Measurement> t = measure::MeasureAlternating(
          {[&] { (void)rt.Forward(x); }, [&] { (void)dense.Forward(x); }, [&] { (void)plain.Forward(x); }}, timing);
      r.runtime = t[0];
      r.dense = t[1];
      r.dense_plain = t[2];
      r.dense_baseline = runtime::DenseFormName(dense.form());
      r.runtime_dense_optimized = rt.dense_optimized();
      r.acc_simulated = acc_simulated;
      r.acc_runtime = acc_runtime;
      r.flips = flips;
      std::printf("%-12s %-18s %3d %10.1f %10.1f %10.1f %7.2fx %7.2fx %6d/%-3d %8.2f%% %8.2f%% %6lld\n", name.c_str(),
                  p.name.c_str(), threads, r.dense_plain.median_us, r.dense.median_us, r.runtime.median_us,
                  r.dense.median_us / r.runtime.median_us, r.dense_plain.median_us / r.runtime.median_us,
                  r.packed_layers, r.layers, 100 * acc_simulated, 100 * acc_runtime, static_cast<long long>(flips));
      std::fflush(stdout);
      rows->push_back(std::move(r));
    }
  }
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  DatasetOptions test_options;
  test_options.limit = args.samples;
  const Dataset test = OrDie(LoadDataset(args.data, test_options), "test data");
  DatasetOptions calibration_options;
  calibration_options.split = "train";
  calibration_options.limit = args.calibration;
  const Dataset calibration = OrDie(LoadDataset(args.data, calibration_options), "calibration data");

  const measure::DeviceClass device = measure::DetectDeviceClass({1, runtime::RuntimeVersion()});
  std::printf("device %s, %s; %lld test images, batch norm recalibrated on %lld training images\n",
              device.Id().c_str(), device.runtime_version.c_str(), static_cast<long long>(test.size()),
              static_cast<long long>(calibration.size()));
  std::printf("latency: batch 1, median us; the runtime, the dense model after optimize_for_inference (the\n"
              "baseline of 'speedup') and the plain frozen dense model timed alternately\n\n");
  std::printf("%-12s %-18s %3s %10s %10s %10s %8s %8s %10s %9s %9s %6s\n", "model", "policy", "thr", "plain us",
              "dense us", "runtime", "speedup", "vs plain", "packed", "top1 sim", "top1 rt", "flips");
  std::vector<Row> rows;
  for (const std::string& name : args.models) BenchModel(args, name, test, calibration, &rows);

  if (!args.json.empty()) {
    nlohmann::json out;
    out["device_class"] = device.ToJson();
    out["runtime_version"] = device.runtime_version;
    measure::MeasureOptions timing;
    timing.min_seconds = args.min_time;
    out["measure_options"] = measure::ToJson(timing);
    out["test_images"] = test.size();
    out["calibration_images"] = calibration.size();
    out["depthwise_kernel"] = !args.aten_depthwise;
    out["rows"] = nlohmann::json::array();
    for (const Row& r : rows) out["rows"].push_back(r.ToJson());
    if (!WriteJsonFile(args.json, out)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
