// bench_int8: the int8 kernels (int8 weights, uint8 activations, fp32 in and out) and the
// int4 weight-only linear kernel against dense fp32 LibTorch (oneDNN for convolutions,
// OpenBLAS / oneDNN for linear layers), with LibTorch's own quantized ops on the oneDNN
// engine as a second reference, on the layer shapes of bench_kernels (ResNet-18 and
// MobileNetV2 at 224x224, small 28x28 models, fc 512->1000 at batch 1 and 32).
// Prints a table and the DESIGN §7 int8 target (>= 3.5x vs dense fp32, single thread), and
// writes JSON with --json PATH.
//
//   bench_int8 [--json PATH] [--threads N] [--min-time SECONDS] [--filter SUBSTRING]
//
// "acs int8" is the whole op: quantize the fp32 input, int8 GEMM, dequantize + bias to
// fp32. "u8 in" starts from an input already quantized (as between two int8 layers).
// Torch's quantized ops run u8 -> u8 ("torch q u8"); "torch q fp32" adds quantize_per_tensor
// and dequantize around them (conv), or is linear_dynamic (linear). Every acs result is
// checked against torch fp32 on the same dequantized operands before it is timed. Timing:
// devices/measure/harness.h; the speedup is the ratio of medians with the fastest dense
// baseline timed alternately ("min": ratio of the fastest runs). For the linear layers a
// second table times every dense baseline, int8 and int4 with cold caches (a 64 MB buffer
// written and read before each call): the weight-memory-bound case. Build in Release.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/bench/bench_common.h"
#include "devices/kernels/cpu_features.h"
#include "devices/kernels/int4_linear.h"
#include "devices/kernels/int8_conv2d.h"
#include "devices/kernels/int8_gemm.h"
#include "devices/measure/harness.h"
#include "devices/runtime/runtime.h"

namespace acs::bench {
namespace {

using measure::Measurement;

// Bytes written and read before each call of the cold-cache runs: twice the 32 MB L3 of
// the machines at hand.
constexpr int64_t kFlushBytes = int64_t{64} << 20;

struct Args {
  std::string json;
  int threads = 1;
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
      a.threads = std::stoi(next());
    } else if (arg == "--min-time") {
      a.min_time = std::stod(next());
    } else if (arg == "--filter") {
      a.filter = next();
    } else {
      std::fprintf(stderr, "usage: bench_int8 [--json PATH] [--threads N] [--min-time S] [--filter STR]\n");
      std::exit(arg == "--help" ? 0 : 2);
    }
  }
  return a;
}

using Op = DenseOp;

c10::IValue CallOp(const char* name, const char* overload, std::vector<c10::IValue> args) {
  const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
  torch::jit::Stack stack(std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  op.callBoxed(&stack);
  return stack.back();
}

// LibTorch's quantized ops on the oneDNN engine: u8 -> u8, and fp32 -> fp32 around them.
std::vector<Op> TorchQuantized(const BenchLayer& l, const torch::Tensor& input, const torch::Tensor& qweight,
                               const torch::Tensor& bias, const kernels::ActivationQuant& q) {
  std::vector<Op> out;
  try {
    const double scale = q.scale;
    const int64_t zp = q.zero_point;
    const torch::Tensor qx = torch::quantize_per_tensor(input, scale, zp, torch::kQUInt8);
    const double out_scale = 0.05;
    if (l.conv) {
      const std::vector<int64_t> stride = {l.stride, l.stride}, pad = {l.pad, l.pad}, dil = {1, 1};
      const c10::IValue packed = CallOp("quantized::conv2d_prepack", "", {qweight, bias, stride, pad, dil, int64_t{1}});
      out.push_back({"torch q u8", [=] { CallOp("quantized::conv2d", "new", {qx, packed, out_scale, int64_t{128}}); }});
      out.push_back({"torch q fp32", [=] {
                       const torch::Tensor x8 = torch::quantize_per_tensor(input, scale, zp, torch::kQUInt8);
                       const c10::IValue y8 = CallOp("quantized::conv2d", "new", {x8, packed, out_scale, int64_t{128}});
                       y8.toTensor().dequantize();
                     }});
    } else {
      const c10::IValue packed = CallOp("quantized::linear_prepack", "", {qweight, bias});
      out.push_back({"torch q u8", [=] { CallOp("quantized::linear", "", {qx, packed, out_scale, int64_t{128}}); }});
      out.push_back({"torch q fp32", [=] { CallOp("quantized::linear_dynamic", "", {input, packed, false}); }});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: torch quantized ops skipped: %s\n", l.name.c_str(), e.what());
  }
  return out;
}

// Max |a - b| / (max |b| + 1e-6).
double RelError(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / (b.abs().max().item<double>() + 1e-6);
}

// Torch tensor of the int8 weights' dequantized values, shaped like `like`.
torch::Tensor Dequantized(const kernels::Int8Weights& w, const torch::Tensor& like) {
  torch::Tensor t = torch::empty({w.rows, w.cols});
  float* d = t.data_ptr<float>();
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t k = 0; k < w.cols; ++k) d[o * w.cols + k] = w.scales[o] * w.at(o, k);
  }
  return t.reshape(like.sizes());
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  measure::MeasureOptions timing;
  timing.min_seconds = args.min_time;
  timing.min_repeats = 7;

  runtime::SetCpuThreads(args.threads);  // LibTorch and OpenBLAS: the dense baselines too
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  torch::manual_seed(7);
  const kernels::Int8KernelTable& table = kernels::Int8Kernels();
  const bool mkldnn = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  std::printf("int8 kernels ISA: %s (CPU: %s)\n", kernels::IsaName(table.isa),
              kernels::GetCpuFeatures().ToString().c_str());
  std::printf("torch %s, oneDNN enabled: %s, quantized engine: ONEDNN, threads: %d\n", TORCH_VERSION,
              mkldnn ? "yes" : "NO", args.threads);
  std::printf("timing: devices/measure harness, median of >= %d repeats and >= %.2f s after %d warm-up calls\n\n",
              timing.min_repeats, timing.min_seconds, timing.warmup);
  std::printf("%-33s %-17s %9s %9s %6s %6s %9s %9s %9s %9s %6s\n", "layer", "dense best", "dense us", "int8 us",
              "x", "(min)", "u8-in us", "tq u8 us", "tq f32", "int4 us", "x");

  kernels::Int8Options options;
  options.threads = args.threads;
  nlohmann::json results = nlohmann::json::array();
  int met = 0, counted = 0;
  struct ColdRow {
    std::string layer, dense;  // the fastest dense baseline with cold caches
    double dense_us, int8_us, int4_us;
  };
  std::vector<ColdRow> cold_rows;
  for (const BenchLayer& l : BenchLayers()) {
    if (!args.filter.empty() && l.name.find(args.filter) == std::string::npos) continue;
    torch::NoGradGuard no_grad;
    const int64_t o = l.out, k = l.K(), p = l.P();
    const torch::Tensor input = l.conv ? torch::randn({1, l.in, l.size, l.size}) : torch::randn({l.size, l.in});
    const torch::Tensor bias = torch::randn({o}) * 0.1;
    const torch::Tensor weight =
        l.conv ? torch::randn({o, l.in, l.kernel, l.kernel}) * 0.05 : torch::randn({o, l.in}) * 0.05;
    const std::vector<float> bias_v(bias.data_ptr<float>(), bias.data_ptr<float>() + o);
    // Our kernels read X as K x P: the image itself, or input^T for a linear layer.
    const torch::Tensor x = l.conv ? input.contiguous() : input.t().contiguous();
    const kernels::ActivationQuant q =
        kernels::ChooseActivationQuant(input.min().item<float>(), input.max().item<float>());
    const kernels::Int8Weights w8 =
        kernels::QuantizeInt8Weights(kernels::DenseView{weight.data_ptr<float>(), o, k}).value();
    std::vector<uint8_t> xq(x.numel());
    kernels::QuantizeActivations(x.data_ptr<float>(), x.numel(), q, xq.data());
    std::vector<float> y(o * p);

    std::function<void()> run8, run8_u8;
    std::optional<kernels::Int8Conv2d> conv;
    if (l.conv) {
      kernels::Int8Conv2dOptions co;
      co.input_quant = q;
      conv.emplace(kernels::Int8Conv2d::Create(w8, l.Geometry(), bias_v, co).value());
      run8 = [&] { (void)conv->Run(x.data_ptr<float>(), 1, y.data(), options); };
      run8_u8 = [&] { (void)conv->RunQuantized(xq.data(), 1, y.data(), options); };
    } else {
      kernels::Int8GemmArgs a;
      a.ldx = p;
      a.quant = q;
      a.y = y.data();
      a.ldy = p;
      a.p = p;
      a.bias = bias_v.data();
      kernels::Int8GemmArgs af = a, au = a;
      af.x = x.data_ptr<float>();
      au.xq = xq.data();
      run8 = [&, af] { (void)kernels::Int8Gemm(w8, af, options); };
      run8_u8 = [&, au] { (void)kernels::Int8Gemm(w8, au, options); };
    }
    // Check against torch fp32 on the dequantized weights and input.
    run8();
    const torch::Tensor x_deq =
        (torch::from_blob(xq.data(), x.sizes(), torch::kUInt8).to(torch::kFloat) - q.zero_point) * q.scale;
    const torch::Tensor w_deq = Dequantized(w8, weight);
    const torch::Tensor expect = l.conv ? torch::conv2d(x_deq, w_deq, bias, l.stride, l.pad).reshape({o, p})
                                        : torch::linear(x_deq.t(), w_deq, bias).t();
    const double err8 = RelError(torch::from_blob(y.data(), {o, p}), expect);
    if (err8 > 1e-4) {
      std::fprintf(stderr, "%s: int8 result differs from torch (relative error %g)\n", l.name.c_str(), err8);
      return 1;
    }

    // Dense baselines, the fastest of them timed again alternately with the int8 op.
    const std::vector<Op> dense = DenseBaselines(l.conv, l.stride, l.pad, input, weight, bias);
    nlohmann::json dense_json;
    const Op* fastest = nullptr;
    double fastest_us = 0.0;
    for (const Op& d : dense) {
      const double us = measure::Measure(d.run, timing).median_us;
      dense_json[d.name] = us;
      if (fastest == nullptr || us < fastest_us) {
        fastest = &d;
        fastest_us = us;
      }
    }
    const std::vector<Measurement> pair = measure::MeasureAlternating({run8, fastest->run}, timing);
    const Measurement u8 = measure::Measure(run8_u8, timing);
    const double speedup = pair[1].median_us / pair[0].median_us;
    const double speedup_min = pair[1].min_us / pair[0].min_us;
    ++counted;
    met += speedup >= 3.5;

    // LibTorch quantized (oneDNN engine).
    const torch::Tensor scales = torch::from_blob(const_cast<float*>(w8.scales.data()), {o}).to(torch::kDouble);
    const torch::Tensor qweight =
        torch::quantize_per_channel(weight, scales, torch::zeros({o}, torch::kLong), 0, torch::kQInt8);
    nlohmann::json tq_json;
    double tq_u8 = 0.0, tq_f32 = 0.0;
    for (const Op& t : TorchQuantized(l, input, qweight, bias, q)) {
      const double us = measure::Measure(t.run, timing).median_us;
      tq_json[t.name] = us;
      (t.name == "torch q u8" ? tq_u8 : tq_f32) = us;
    }

    // int4 weight-only, linear layers; then dense, int8 and int4 with cold caches.
    nlohmann::json int4_json, cold_json;
    double int4_us = 0.0, int4_speedup = 0.0;
    if (!l.conv) {
      const kernels::Int4Weights w4 =
          kernels::QuantizeInt4Weights(kernels::DenseView{weight.data_ptr<float>(), o, k}).value();
      const kernels::Int4LinearArgs a4{x.data_ptr<float>(), p, y.data(), p, p, bias_v.data(), false};
      const std::function<void()> run4 = [&] { (void)kernels::Int4Linear(w4, a4, options); };
      run4();
      torch::Tensor w4_deq = torch::empty({o, k});
      float* d4 = w4_deq.data_ptr<float>();
      for (int64_t r = 0; r < o; ++r) {
        for (int64_t c = 0; c < k; ++c) d4[r * k + c] = w4.scales[r] * w4.at(r, c);
      }
      const double err4 = RelError(torch::from_blob(y.data(), {o, p}), torch::linear(input, w4_deq, bias).t());
      if (err4 > 1e-4) {
        std::fprintf(stderr, "%s: int4 result differs from torch (relative error %g)\n", l.name.c_str(), err4);
        return 1;
      }
      const std::vector<Measurement> m4 = measure::MeasureAlternating({run4, fastest->run}, timing);
      int4_us = m4[0].median_us;
      int4_speedup = m4[1].median_us / m4[0].median_us;
      int4_json = {{"median_us", int4_us}, {"dense_median_us", m4[1].median_us}, {"speedup_vs_dense", int4_speedup},
                   {"max_rel_error_vs_torch", err4}};
      measure::MeasureOptions cold = timing;
      cold.flush_cache_bytes = kFlushBytes;
      cold.min_seconds = 0.0;
      cold.min_repeats = cold.max_repeats = 15;
      std::vector<std::function<void()>> fns = {run8, run4};
      for (const Op& d : dense) fns.push_back(d.run);
      const std::vector<Measurement> mc = measure::MeasureAlternating(fns, cold);
      ColdRow row{l.name, "", 0.0, mc[0].median_us, mc[1].median_us};
      for (size_t i = 0; i < dense.size(); ++i) {
        cold_json["dense_median_us"][dense[i].name] = mc[2 + i].median_us;
        if (row.dense.empty() || mc[2 + i].median_us < row.dense_us) {
          row.dense = dense[i].name;
          row.dense_us = mc[2 + i].median_us;
        }
      }
      cold_json["int8_median_us"] = row.int8_us;
      cold_json["int4_median_us"] = row.int4_us;
      cold_json["flush_cache_bytes"] = kFlushBytes;
      cold_rows.push_back(row);
    }

    std::printf("%-33s %-17s %9.1f %9.1f %5.2fx %5.2fx %9.1f %9.1f %9.1f ", l.name.c_str(), fastest->name.c_str(),
                pair[1].median_us, pair[0].median_us, speedup, speedup_min, u8.median_us, tq_u8, tq_f32);
    if (l.conv) {
      std::printf("%9s %6s\n", "-", "-");
    } else {
      std::printf("%9.1f %5.2fx\n", int4_us, int4_speedup);
    }
    std::fflush(stdout);
    results.push_back({{"layer", l.name},
                       {"macs", l.Macs()},
                       {"dense_median_us", dense_json},
                       {"dense_baseline", fastest->name},
                       {"dense_alternating", measure::ToJson(pair[1], false)},
                       {"int8", measure::ToJson(pair[0], false)},
                       {"int8_gops", 2.0 * l.Macs() / pair[0].median_us * 1e-3},
                       {"int8_speedup_vs_dense", speedup},
                       {"int8_speedup_vs_dense_min", speedup_min},
                       {"int8_u8_input", measure::ToJson(u8, false)},
                       {"int8_max_rel_error_vs_torch", err8},
                       {"torch_quantized_median_us", tq_json},
                       {"int4", int4_json},
                       {"cold_caches", cold_json},
                       {"target_3_5x_met", speedup >= 3.5}});
  }
  if (!cold_rows.empty()) {
    std::printf("\nlinear layers with cold caches (%lld MB written and read before every call), median us:\n",
                static_cast<long long>(kFlushBytes >> 20));
    std::printf("%-33s %-17s %9s %9s %6s %9s %6s\n", "layer", "dense best", "dense", "int8", "x", "int4", "x");
    for (const ColdRow& r : cold_rows) {
      std::printf("%-33s %-17s %9.1f %9.1f %5.2fx %9.1f %5.2fx\n", r.layer.c_str(), r.dense.c_str(), r.dense_us,
                  r.int8_us, r.dense_us / r.int8_us, r.int4_us, r.dense_us / r.int4_us);
    }
  }
  std::printf("\nDESIGN §7 target int8 >= 3.5x vs the fastest dense fp32 LibTorch op, %d thread(s): met on %d of %d "
              "layers\n", args.threads, met, counted);

  if (!args.json.empty()) {
    nlohmann::json out;
    out["isa"] = kernels::IsaName(table.isa);
    out["cpu_features"] = kernels::GetCpuFeatures().ToString();
    out["torch_version"] = TORCH_VERSION;
    out["onednn_enabled"] = mkldnn;
    out["threads"] = args.threads;
    out["timing"] = measure::ToJson(timing);
    out["speedup_definition"] = "median of the fastest dense fp32 op / median of the int8 op, timed alternately";
    out["target"] = {{"name", "int8 >= 3.5x vs dense fp32"}, {"met", met}, {"of", counted}};
    out["results"] = results;
    if (!WriteJsonFile(args.json, out)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
