// bench_kernels: the CPU sparse kernels (1xN block, unstructured CSR, N:M) against dense
// fp32 LibTorch (oneDNN for convolutions, OpenBLAS / oneDNN for linear layers) on layer
// shapes of ResNet-18, MobileNetV2 (224x224) and small 28x28 models. Prints a table and the
// DESIGN §7 kernel targets, and writes JSON with --json PATH.
//
//   bench_kernels [--json PATH] [--threads 1,2] [--min-time SECONDS] [--filter SUBSTRING]
//
// Every sparse result is checked against torch with the same weights, then timed
// alternately with the fastest dense baseline of its layer (devices/measure/harness.h,
// MeasureAlternating): the speedup is the
// ratio of the medians, and of the fastest runs beside it ("min"), which is the steadier
// figure on a host shared with other work. The dense baselines run on as many threads as
// the kernel (LibTorch's and OpenBLAS's pools both capped, runtime::SetCpuThreads).
// ACS_ISA=scalar|avx2|avx512 caps the kernels' instruction set. Build in Release.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/bench/bench_common.h"
#include "devices/kernels/conv2d.h"
#include "devices/kernels/cpu_features.h"
#include "devices/kernels/kernel_table.h"
#include "devices/kernels/spmm.h"
#include "devices/measure/harness.h"
#include "devices/runtime/runtime.h"

namespace acs::bench {
namespace {

using kernels::SparseWeights;

struct SparseConfig {
  std::string pattern;  // "block", "unstructured", "nm"
  int block = 0;
  double sparsity = 0.0;
  std::string Name() const {
    if (pattern == "block") return "1x" + std::to_string(block);
    if (pattern == "nm") return "2:4";
    return "unstructured";
  }
};

std::vector<SparseConfig> Configs() {
  std::vector<SparseConfig> out;
  for (double s : {0.5, 0.7, 0.8, 0.9, 0.95}) {
    for (int n : {4, 8, 16}) out.push_back({"block", n, s});
    out.push_back({"unstructured", 0, s});
  }
  out.push_back({"nm", 0, 0.5});
  return out;
}

// O x K weights with exactly round((1 - s) * K) kept columns per row-block (or row), or 2 of
// every 4 for 2:4, values from N(0, 0.05).
std::vector<float> SparseDense(int64_t o, int64_t k, const SparseConfig& c, std::mt19937& rng) {
  std::vector<float> w(o * k, 0.0f);
  std::normal_distribution<float> val(0.0f, 0.05f);
  std::vector<int64_t> cols(k);
  for (int64_t i = 0; i < k; ++i) cols[i] = i;
  const int64_t group = c.pattern == "block" ? c.block : 1;
  const int64_t keep = static_cast<int64_t>(std::llround((1.0 - c.sparsity) * k));
  for (int64_t r0 = 0; r0 < o; r0 += group) {
    if (c.pattern == "nm") {
      for (int64_t k0 = 0; k0 < k; k0 += 4) {
        int idx[4] = {0, 1, 2, 3};
        std::shuffle(idx, idx + 4, rng);
        for (int i = 0; i < 2; ++i) {
          if (k0 + idx[i] < k) w[r0 * k + k0 + idx[i]] = val(rng);
        }
      }
      continue;
    }
    std::shuffle(cols.begin(), cols.end(), rng);
    for (int64_t i = 0; i < keep; ++i) {
      for (int64_t r = r0; r < std::min(o, r0 + group); ++r) w[r * k + cols[i]] = val(rng);
    }
  }
  return w;
}

template <class M>
SparseWeights OrExit(StatusOr<M> m) {
  if (!m.ok()) {
    std::fprintf(stderr, "packing failed: %s\n", m.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(m).value();
}

SparseWeights Pack(const std::vector<float>& w, int64_t o, int64_t k, const SparseConfig& c) {
  const kernels::DenseView view{w.data(), o, k};
  if (c.pattern == "block") return OrExit(kernels::PackBlockSparse(view, c.block));
  if (c.pattern == "nm") return OrExit(kernels::PackNm(view, 2, 4));
  return OrExit(kernels::PackCsr(view));
}

// Which BLAS library the process has mapped (after torch ran a GEMM).
std::string MappedBlas() {
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("blas") != std::string::npos && found.find(path) == std::string::npos) {
      found += (found.empty() ? "" : " ") + path;
    }
  }
  return found.empty() ? "none mapped" : found;
}

using Baseline = DenseOp;

struct Row {
  std::string layer, kernel, baseline, lowering;
  double sparsity = 0.0;
  int threads = 1;
  measure::Measurement timing;
  measure::Measurement dense;  // the fastest dense baseline, timed alternately with this kernel
  double gflops = 0.0, max_error = 0.0;
  double speedup = 0.0;      // dense median / kernel median
  double speedup_min = 0.0;  // dense fastest run / kernel fastest run (least disturbed)
};

struct Args {
  std::string json;
  std::vector<int> threads = {1, 2};
  double min_time = 0.15;
  std::string filter;
};

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--json") {
      a.json = next();
    } else if (arg == "--threads") {
      a.threads.clear();
      std::stringstream ss(next());
      for (std::string t; std::getline(ss, t, ',');) a.threads.push_back(std::stoi(t));
    } else if (arg == "--min-time") {
      a.min_time = std::stod(next());
    } else if (arg == "--filter") {
      a.filter = next();
    } else {
      std::fprintf(stderr, "usage: bench_kernels [--json PATH] [--threads 1,2] [--min-time S] [--filter STR]\n");
      std::exit(arg == "--help" ? 0 : 2);
    }
  }
  return a;
}

// Max |a - b| / (max |b| + 1e-6) over two tensors of the same shape.
double RelError(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max().item<double>()) / (b.abs().max().item<double>() + 1e-6);
}

void PrintTargets(const std::vector<Row>& rows, nlohmann::json& out) {
  struct Target {
    std::string name, kernel_prefix;
    double sparsity, ratio;
  };
  const std::vector<Target> targets = {{"1xN block at 80% >= 3x", "1x", 0.8, 3.0},
                                       {"1xN block at 90% >= 5x", "1x", 0.9, 5.0},
                                       {"unstructured at 90% >= 2x", "unstructured", 0.9, 2.0}};
  std::printf("\nDESIGN §7 kernel targets: single thread, vs the fastest dense fp32 baseline of each layer "
              "(oneDNN eager or prepacked, torch.conv2d; OpenBLAS or oneDNN for linear), best block size\n");
  for (const Target& t : targets) {
    std::map<std::string, const Row*> best;  // layer -> row with the highest median speedup
    for (const Row& r : rows) {
      if (r.threads != 1 || std::abs(r.sparsity - t.sparsity) > 1e-9) continue;
      if (r.kernel.rfind(t.kernel_prefix, 0) != 0) continue;
      const Row*& b = best[r.layer];
      if (b == nullptr || r.speedup > b->speedup) b = &r;
    }
    int met = 0;
    std::printf("  %s:\n", t.name.c_str());
    nlohmann::json per_layer = nlohmann::json::array();
    for (const auto& [layer, b] : best) {
      met += b->speedup >= t.ratio;
      std::printf("    %-34s %-13s %6.2fx (min-based %5.2fx) %s\n", layer.c_str(), b->kernel.c_str(), b->speedup,
                  b->speedup_min, b->speedup >= t.ratio ? "met" : "NOT met");
      per_layer.push_back({{"layer", layer}, {"kernel", b->kernel}, {"speedup_vs_dense", b->speedup},
                           {"speedup_vs_dense_min", b->speedup_min}, {"met", b->speedup >= t.ratio}});
    }
    std::printf("    -> met on %d of %zu layers\n", met, best.size());
    out.push_back({{"target", t.name}, {"layers", per_layer}, {"met", met}, {"of", best.size()}});
  }
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  measure::MeasureOptions timing;
  timing.min_repeats = 7;
  timing.min_seconds = args.min_time;
  std::mt19937 rng(1234);

  runtime::SetCpuThreads(1);
  (void)torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // loads BLAS
  const std::string blas = MappedBlas();
  const bool mkldnn = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  const kernels::Isa isa = kernels::ActiveIsa();
  std::printf("kernels ISA: %s (CPU: %s)\n", kernels::IsaName(isa), kernels::GetCpuFeatures().ToString().c_str());
  std::printf("torch %s, oneDNN (mkldnn) enabled: %s, BLAS: %s\n", TORCH_VERSION, mkldnn ? "yes" : "NO", blas.c_str());
  if (blas.find("openblas") == std::string::npos) std::printf("WARNING: torch is not using OpenBLAS\n");
  if (!mkldnn) std::printf("WARNING: oneDNN is not enabled in torch: the conv baseline is not oneDNN\n");

  std::vector<Row> rows;
  nlohmann::json dense_json = nlohmann::json::array();
  std::printf("\n%-34s %-22s %5s %3s %10s %9s %8s %8s\n", "layer", "kernel", "spars", "thr", "time us", "GFLOP/s",
              "vs dense", "(min)");
  for (const BenchLayer& l : BenchLayers()) {
    if (!args.filter.empty() && l.name.find(args.filter) == std::string::npos) continue;
    const int64_t o = l.out, k = l.K(), p = l.P();
    const torch::Tensor input = l.conv ? torch::randn({1, l.in, l.size, l.size}) : torch::randn({l.size, l.in});
    const torch::Tensor bias = torch::randn({o}) * 0.1;
    const torch::Tensor dense_w =
        l.conv ? torch::randn({o, l.in, l.kernel, l.kernel}) * 0.05 : torch::randn({o, l.in}) * 0.05;
    // Sparse kernels read X as K x P: the image itself, or input^T for a linear layer.
    const torch::Tensor x = l.conv ? input.contiguous() : input.t().contiguous();
    std::vector<float> y(o * p);
    const std::vector<float> bias_v(bias.data_ptr<float>(), bias.data_ptr<float>() + o);
    for (int threads : args.threads) {
      runtime::SetCpuThreads(threads);
      timing.threads = threads;
      torch::NoGradGuard no_grad;
      const std::vector<Baseline> baselines = DenseBaselines(l.conv, l.stride, l.pad, input, dense_w, bias);
      std::map<std::string, double> dense_us;
      const Baseline* fastest = nullptr;
      for (const Baseline& b : baselines) {
        dense_us[b.name] = measure::Measure(b.run, timing).median_us;
        if (fastest == nullptr || dense_us[b.name] < dense_us[fastest->name]) fastest = &b;
      }
      const double dense_best = dense_us[fastest->name];
      std::printf("%-34s %-22s %5s %3d %10.1f %9.1f %8s\n", l.name.c_str(), ("dense " + fastest->name).c_str(), "-",
                  threads, dense_best, (2.0 * l.Macs()) / dense_best * 1e-3, "1.00x");
      dense_json.push_back({{"layer", l.name}, {"threads", threads}, {"median_us", dense_us}, {"best", fastest->name}});
      for (const SparseConfig& c : Configs()) {
        const std::vector<float> w = SparseDense(o, k, c, rng);
        const SparseWeights packed = Pack(w, o, k, c);
        kernels::SpmmOptions options;
        options.threads = threads;
        std::function<void()> run;
        std::optional<kernels::SparseConv2d> conv;
        Row r;
        if (l.conv) {
          conv.emplace(kernels::SparseConv2d::Create(packed, l.Geometry(), bias_v).value());
          run = [&] { (void)conv->Run(x.data_ptr<float>(), 1, y.data(), options); };
          r.lowering = l.Geometry().pointwise() ? "pointwise"
                       : conv->lowering() == kernels::ConvLowering::kDirect ? "direct" : "im2col";
        } else {
          run = [&] {
            (void)kernels::Spmm(packed, kernels::SpmmArgs{x.data_ptr<float>(), p, y.data(), p, p, bias_v.data()},
                                options);
          };
        }
        // Check against torch with the same (sparse) weights before timing.
        run();
        const torch::Tensor w_t = torch::from_blob(const_cast<float*>(w.data()), dense_w.sizes()).clone();
        const torch::Tensor expect = l.conv ? torch::conv2d(input, w_t, bias, l.stride, l.pad).reshape({o, p})
                                            : torch::linear(input, w_t, bias).t();
        r.max_error = RelError(torch::from_blob(y.data(), {o, p}), expect);
        if (r.max_error > 1e-4) {
          std::fprintf(stderr, "%s %s: wrong result (relative error %g)\n", l.name.c_str(), c.Name().c_str(),
                       r.max_error);
          return 1;
        }
        r.layer = l.name;
        r.kernel = c.Name();
        r.sparsity = c.sparsity;
        r.threads = threads;
        r.baseline = fastest->name;
        std::vector<measure::Measurement> pair = measure::MeasureAlternating({run, fastest->run}, timing);
        r.timing = std::move(pair[0]);
        r.dense = std::move(pair[1]);
        r.gflops = (2.0 * l.Macs()) / r.timing.median_us * 1e-3;
        r.speedup = r.dense.median_us / r.timing.median_us;
        r.speedup_min = r.dense.min_us / r.timing.min_us;
        std::printf("%-34s %-22s %4.0f%% %3d %10.1f %9.1f %7.2fx %7.2fx\n", l.name.c_str(),
                    (r.kernel + (r.lowering.empty() ? "" : " " + r.lowering)).c_str(), 100 * r.sparsity, threads,
                    r.timing.median_us, r.gflops, r.speedup, r.speedup_min);
        std::fflush(stdout);
        rows.push_back(r);
      }
    }
  }
  nlohmann::json targets = nlohmann::json::array();
  PrintTargets(rows, targets);

  if (!args.json.empty()) {
    nlohmann::json out;
    out["isa"] = kernels::IsaName(isa);
    out["cpu_features"] = kernels::GetCpuFeatures().ToString();
    out["torch_version"] = TORCH_VERSION;
    out["blas"] = blas;
    out["onednn_enabled"] = mkldnn;
    out["timing"] = measure::ToJson(timing);
    out["timing"]["speedup"] = "median of the fastest dense baseline / median of the kernel, timed alternately";
    out["dense"] = dense_json;
    out["targets"] = targets;
    for (const Row& r : rows) {
      out["results"].push_back({{"layer", r.layer}, {"kernel", r.kernel}, {"lowering", r.lowering}, {"sparsity", r.sparsity},
                                {"threads", r.threads}, {"median_us", r.timing.median_us},
                                {"min_us", r.timing.min_us}, {"iqr_us", r.timing.iqr_us},
                                {"repeats", r.timing.repeats}, {"gflops_effective", r.gflops},
                                {"dense_baseline", r.baseline}, {"dense_median_us", r.dense.median_us},
                                {"dense_min_us", r.dense.min_us}, {"speedup_vs_dense", r.speedup},
                                {"speedup_vs_dense_min", r.speedup_min}, {"max_rel_error", r.max_error}});
    }
    if (!WriteJsonFile(args.json, out)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
