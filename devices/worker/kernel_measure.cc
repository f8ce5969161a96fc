#include "devices/worker/kernel_measure.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/torchscript_model.h"
#include "core/weight_transforms.h"
#include "devices/runtime/dense_ops.h"
#include "devices/runtime/packed_depthwise.h"
#include "devices/runtime/packed_int8.h"
#include "devices/runtime/runtime.h"

namespace acs::worker {
namespace {

// The layer as it runs: weights after the config, and the input it reads.
struct RunLayer {
  torch::Tensor weight, bias, input;
  int64_t groups = 1;
};

// Channel pruning runs the shape AsRun gives (core/kernel_spec.h): fewer output channels,
// and for a depthwise layer the same fewer input channels and groups.
RunLayer ApplyConfig(const KernelSpec& spec, const torch::Tensor& weight, const torch::Tensor& bias,
                     const torch::Tensor& input) {
  RunLayer r{weight, bias, input, spec.groups};
  const LayerConfig& c = spec.config;
  if (c.pattern == Pattern::kChannel) {
    const KernelSpec run = AsRun(spec);
    r.weight = weight.narrow(0, 0, run.out_channels).contiguous();
    r.bias = bias.narrow(0, 0, run.out_channels).contiguous();
    if (run.in_channels != spec.in_channels) r.input = input.narrow(1, 0, run.in_channels).contiguous();
    r.groups = run.groups;
  } else if (c.pattern != Pattern::kDense) {
    r.weight = weight * PatternMask(weight, c);
  }
  r.weight = SimulatePrecision(r.weight, c.precision).contiguous();
  return r;
}

torch::Tensor AtenOp(const KernelSpec& spec, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     int64_t groups) {
  if (!spec.is_conv()) return torch::linear(x, w, b);
  return torch::conv2d(x, w, b, {spec.stride[0], spec.stride[1]}, {spec.padding[0], spec.padding[1]},
                       {spec.dilation[0], spec.dilation[1]}, groups);
}

// The layer as the runtime leaves it to LibTorch: one aten op with constant weights, run
// optimized for inference where that is faster (runtime::FasterForInference).
torch::jit::Module OptimizedAtenOp(const KernelSpec& spec, const torch::Tensor& w, const torch::Tensor& b,
                                   int64_t groups, const torch::Tensor& input) {
  auto graph = std::make_shared<torch::jit::Graph>();
  graph->addInput("self");
  torch::jit::Value* x = graph->addInput("x");
  x->setType(c10::TensorType::get());
  torch::jit::Value* y = nullptr;
  if (spec.is_conv()) {
    const std::vector<int64_t> stride(spec.stride.begin(), spec.stride.end());
    const std::vector<int64_t> padding(spec.padding.begin(), spec.padding.end());
    const std::vector<int64_t> dilation(spec.dilation.begin(), spec.dilation.end());
    y = graph->insert(c10::Symbol::fromQualString("aten::conv2d"),
                      {x, c10::IValue(w), c10::IValue(b), c10::IValue(stride), c10::IValue(padding),
                       c10::IValue(dilation), c10::IValue(groups)});
  } else {
    y = graph->insert(c10::Symbol::fromQualString("aten::linear"), {x, c10::IValue(w), c10::IValue(b)});
  }
  graph->registerOutput(y);
  return runtime::FasterForInference(*graph, input.sizes().vec(), spec.threads).module;
}

// The layer as the runtime runs it dense, on `input`: the prepacked op (runtime/dense_ops.h)
// or one aten op (OptimizedAtenOp), as `prepacked` says.
StatusOr<torch::jit::Module> DenseLayerOp(const KernelSpec& spec, const torch::Tensor& w, const torch::Tensor& b,
                                          int64_t groups, const torch::Tensor& input, bool prepacked) {
  if (!prepacked) {
    try {
      return OptimizedAtenOp(spec, w, b, groups, input);
    } catch (const std::exception& e) {
      return Status::Internal("optimizing the dense op failed: " + ShortError(e));
    }
  }
  if (!spec.is_conv()) return runtime::DenseLinearModule(w, b);
  runtime::DenseConv conv;
  conv.weight = w;
  conv.bias = b;
  conv.stride = spec.stride;
  conv.padding = spec.padding;
  conv.dilation = spec.dilation;
  conv.groups = groups;
  conv.input_shape = input.sizes().vec();
  return runtime::DenseConvModule(conv);
}

std::function<torch::Tensor()> RunModuleOn(torch::jit::Module module, const torch::Tensor& x) {
  return [module, x]() mutable { return module.forward({x}).toTensor(); };
}

// The input as an int8 layer reads it: fake-quantized with the quantization of its range,
// as the compressor calibrates it.
torch::Tensor FakeQuantized(const torch::Tensor& x, const kernels::ActivationQuant& q) {
  return torch::fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, 255);
}

// The layer as the runtime runs it (a packed op, or aten), and what it stores.
struct Runner {
  std::function<torch::Tensor()> run;
  int64_t stored = 0;        // multiply-adds per output position
  int64_t weight_bytes = 0;  // as stored for the kernel
};

template <class Packed>
Runner PackedRunner(const c10::intrusive_ptr<Packed>& packed, const torch::Tensor& input, int64_t stored,
                    int64_t bytes) {
  return {[packed, input] { return packed->Run(input); }, stored, bytes};
}

StatusOr<Runner> MakeRunner(const KernelSpec& spec, const RunLayer& run, const runtime::KernelChoice& kernel,
                            const kernels::ActivationQuant& quant, bool prepack_dense) {
  runtime::PackOptions pack;
  pack.kernel = kernel;
  pack.threads = spec.threads;
  runtime::PackedConv::Geometry g;
  if (spec.is_conv()) {
    g.stride = spec.stride;
    g.padding = spec.padding;
    g.dilation = spec.dilation;
    g.height = spec.input[2];
    g.width = spec.input[3];
  }
  const int64_t dense_stored = run.weight.numel();
  const int64_t fp32_bytes = run.weight.numel() * static_cast<int64_t>(sizeof(float));
  const torch::Tensor& x = run.input;
  using runtime::KernelKind;
  switch (kernel.kind) {
    case KernelKind::kBlockSparse:
    case KernelKind::kCsr:
    case KernelKind::kNm:
      if (spec.is_conv()) {
        ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedConv::Create(run.weight, run.bias, g, pack));
        return PackedRunner(p, x, p->stored_values(), p->packed_bytes());
      } else {
        ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedLinear::Create(run.weight, run.bias, pack));
        return PackedRunner(p, x, p->stored_values(), p->packed_bytes());
      }
    case KernelKind::kInt8:
      if (spec.is_conv() && run.groups > 1) {
        ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedInt8DepthwiseConv::Create(run.weight, run.bias, g, quant, pack));
        return PackedRunner(p, x, dense_stored, p->packed_bytes());
      } else if (spec.is_conv()) {
        ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedInt8Conv::Create(run.weight, run.bias, g, quant, pack));
        return PackedRunner(p, x, dense_stored, p->packed_bytes());
      } else {
        ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedInt8Linear::Create(run.weight, run.bias, quant, pack));
        return PackedRunner(p, x, dense_stored, p->packed_bytes());
      }
    case KernelKind::kInt4w: {
      ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedInt4Linear::Create(run.weight, run.bias, pack));
      return PackedRunner(p, x, dense_stored, p->packed_bytes());
    }
    case KernelKind::kDepthwise: {
      ACS_ASSIGN_OR_RETURN(auto p, runtime::PackedDepthwiseConv::Create(run.weight, run.bias, g, pack));
      return PackedRunner(p, x, dense_stored, fp32_bytes);
    }
    case KernelKind::kInt8Simulated: {
      if (!prepack_dense) {
        return Runner{[&spec, run, quant] {
                        return AtenOp(spec, FakeQuantized(run.input, quant), run.weight, run.bias, run.groups);
                      },
                      dense_stored, fp32_bytes};
      }
      ACS_ASSIGN_OR_RETURN(torch::jit::Module op, DenseLayerOp(spec, run.weight, run.bias, run.groups, x, true));
      return Runner{[op, x, quant]() mutable { return op.forward({FakeQuantized(x, quant)}).toTensor(); }, dense_stored,
                    fp32_bytes};
    }
    case KernelKind::kDense:
      break;
  }
  ACS_ASSIGN_OR_RETURN(torch::jit::Module op, DenseLayerOp(spec, run.weight, run.bias, run.groups, x, prepack_dense));
  return Runner{RunModuleOn(op, x), dense_stored, fp32_bytes};
}

}  // namespace

nlohmann::json KernelFeatures::ToJson() const {
  return {{"flops", flops},
          {"flops_after_sparsity", flops_after_sparsity},
          {"flops_stored", flops_stored},
          {"density", density},
          {"weight_bytes", weight_bytes},
          {"dense_weight_bytes", dense_weight_bytes},
          {"input_bytes", input_bytes},
          {"output_bytes", output_bytes},
          {"activation_bytes", activation_bytes},
          {"out_channels_run", out_channels_run}};
}

nlohmann::json KernelMeasurement::ToJson() const {
  nlohmann::json j = measure::ToJson(timing, /*with_samples=*/true);
  j["device_class"] = device.ToJson();
  j["kernel_key"] = spec.Key();
  j["spec"] = spec.ToJson();
  j["kernel"] = {{"kind", runtime::KernelKindName(kernel.kind)}, {"block", kernel.block}, {"n", kernel.nm_n},
                 {"m", kernel.nm_m}, {"why_dense", kernel.why_dense}};
  j["features"] = features.ToJson();
  j["dense"] = measure::ToJson(dense, /*with_samples=*/true);
  j["speedup"] = speedup();
  j["max_rel_error"] = max_rel_error;
  j["runtime_version"] = runtime_version;
  return j;
}

StatusOr<KernelMeasurement> MeasureKernel(const KernelSpec& spec, const KernelMeasureOptions& options) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  const int64_t o = spec.out_channels, per_group = spec.in_channels / spec.groups;
  std::vector<int64_t> w_shape = {o, spec.in_channels};
  if (spec.is_conv()) w_shape = {o, per_group, spec.kernel[0], spec.kernel[1]};
  const double fan_in = static_cast<double>(per_group * (spec.is_conv() ? spec.kernel[0] * spec.kernel[1] : 1));
  const torch::Tensor dense_w = torch::empty(w_shape).normal_(0.0, std::sqrt(2.0 / fan_in), gen);
  const torch::Tensor bias = torch::empty({o}).uniform_(-0.1, 0.1, gen);
  const torch::Tensor x = torch::empty(spec.input).normal_(0.0, 1.0, gen);
  const RunLayer run = ApplyConfig(spec, dense_w, bias, x);
  const bool int8 = spec.config.precision == Precision::kInt8;
  const kernels::ActivationQuant quant =
      kernels::ChooseActivationQuant(run.input.min().item<float>(), run.input.max().item<float>());

  KernelMeasurement m;
  m.spec = spec;
  m.runtime_version = runtime::RuntimeVersion();
  m.device = measure::DetectDeviceClass({spec.threads, m.runtime_version});
  KernelFeatures& f = m.features;
  f.density = run.weight.numel() ? (run.weight != 0).sum().item<double>() / static_cast<double>(run.weight.numel()) : 1;
  runtime::LayerTraits traits;
  traits.linear = !spec.is_conv();
  traits.groups = run.groups;
  if (spec.is_conv()) {
    runtime::PackedConv::Geometry g;
    g.stride = spec.stride;
    g.dilation = spec.dilation;
    traits.depthwise_3x3 = runtime::IsDepthwise3x3(run.weight, run.groups, g);
    traits.depthwise_int8 = runtime::IsInt8Depthwise(run.weight, run.groups, g);
  }
  m.kernel = runtime::ChooseKernel(spec.config, traits, options.selection);
  runtime::SetCpuThreads(spec.threads);

  ACS_ASSIGN_OR_RETURN(Runner kernel, MakeRunner(spec, run, m.kernel, quant, options.prepack_dense));
  f.weight_bytes = kernel.weight_bytes;
  ACS_ASSIGN_OR_RETURN(torch::jit::Module dense_op,
                       DenseLayerOp(spec, dense_w, bias, spec.groups, x, options.prepack_dense));
  std::function<torch::Tensor()> dense = RunModuleOn(dense_op, x);

  // int8: against the fake-quantized layer. The kernel quantizes with one fused multiply-add
  // where LibTorch rounds the product first, so an input within an ulp of a rounding tie
  // may land one uint8 step away, moving the outputs that read it by at most
  // scale * max |w|; two such steps are allowed on top of fp32 rounding.
  try {
    const torch::Tensor input = int8 ? FakeQuantized(run.input, quant) : run.input;
    const torch::Tensor expect = AtenOp(spec, input, run.weight, run.bias, run.groups);
    const torch::Tensor got = kernel.run();
    const double error = (got - expect).abs().max().item<double>(), range = expect.abs().max().item<double>();
    m.max_rel_error = error / (range + 1e-6);
    const double allowed = 1e-4 * (range + 1e-6) +
                           (int8 ? 2.0 * quant.scale * run.weight.abs().max().item<double>() : 0.0);
    if (error > allowed) {
      return Status::Internal("the " + std::string(runtime::KernelKindName(m.kernel.kind)) +
                              " kernel disagrees with LibTorch: error " + std::to_string(error) + " above " +
                              std::to_string(allowed) + " (relative " + std::to_string(m.max_rel_error) + ")");
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("running the kernel failed: ") + e.what());
  }

  const int64_t positions = spec.is_conv() ? spec.input[0] * spec.out_h() * spec.out_w() : spec.input[0];
  f.out_channels_run = run.weight.size(0);
  f.flops = 2.0 * static_cast<double>(dense_w.numel()) * static_cast<double>(positions);
  f.flops_after_sparsity = 2.0 * (run.weight != 0).sum().item<double>() * static_cast<double>(positions);
  f.flops_stored = 2.0 * static_cast<double>(kernel.stored) * static_cast<double>(positions);
  f.dense_weight_bytes = dense_w.numel() * static_cast<int64_t>(sizeof(float));
  f.input_bytes = run.input.numel() * static_cast<int64_t>(sizeof(float));
  f.output_bytes = f.out_channels_run * positions * static_cast<int64_t>(sizeof(float));
  f.activation_bytes = f.input_bytes + f.output_bytes;

  measure::MeasureOptions mo = options.measure;
  mo.threads = spec.threads;
  mo.flush_cache_bytes = std::max(mo.flush_cache_bytes, spec.context_bytes);
  try {
    std::vector<measure::Measurement> t = measure::MeasureAlternating({[&] { kernel.run(); }, [&] { dense(); }}, mo);
    m.timing = std::move(t[0]);
    m.dense = std::move(t[1]);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("measuring failed: ") + e.what());
  }
  return m;
}

}  // namespace acs::worker
