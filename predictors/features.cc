#include "predictors/features.h"

#include <algorithm>
#include <cmath>

namespace acs::predictors {
namespace {

double PrecisionBytes(Precision p) {
  switch (p) {
    case Precision::kFp32: return 4.0;
    case Precision::kBf16: return 2.0;
    case Precision::kInt8: return 1.0;
    case Precision::kInt4w: return 0.5;
  }
  return 4.0;
}

// Index bytes per stored non-zero value of a sparse pattern.
double IndexBytesPerValue(const LayerConfig& c) {
  switch (c.pattern) {
    case Pattern::kBlock: return 4.0 / std::max(1, c.block);  // one column index per block
    case Pattern::kUnstructured: return 4.0;                  // one column index per value
    case Pattern::kNM: return 0.5;                            // a few bits of slot index
    default: return 0.0;
  }
}

float Log2p(double v) { return static_cast<float>(std::log2(1.0 + std::max(0.0, v))); }

}  // namespace

const char* KernelKindIdName(KernelKindId kind) {
  switch (kind) {
    case KernelKindId::kConv2d: return "conv2d";
    case KernelKindId::kDepthwise: return "depthwise";
    case KernelKindId::kLinear: return "linear";
    case KernelKindId::kCount: break;
  }
  return "?";
}

StatusOr<KernelKindId> ParseKernelKindId(const std::string& name) {
  for (int k = 0; k < static_cast<int>(KernelKindId::kCount); ++k) {
    if (name == KernelKindIdName(static_cast<KernelKindId>(k))) return static_cast<KernelKindId>(k);
  }
  return Status::InvalidArgument("unknown kernel kind '" + name + "' (expected conv2d, depthwise or linear)");
}

KernelKindId KindOf(const KernelSpec& spec) {
  if (!spec.is_conv()) return KernelKindId::kLinear;
  if (spec.groups > 1 && spec.groups == spec.in_channels && spec.groups == spec.out_channels) {
    return KernelKindId::kDepthwise;
  }
  return KernelKindId::kConv2d;
}

KernelShapeStats ShapeStats(const KernelSpec& spec) { return RunStats(AsRun(spec)); }

KernelShapeStats RunStats(const KernelSpec& spec) {
  KernelShapeStats s;
  const double batch = static_cast<double>(spec.input[0]);
  double out_positions = batch;
  double reduction = static_cast<double>(spec.in_channels);
  double in_elems = batch * static_cast<double>(spec.in_channels);
  if (spec.is_conv()) {
    out_positions *= static_cast<double>(spec.out_h() * spec.out_w());
    reduction = static_cast<double>(spec.in_channels / spec.groups * spec.kernel[0] * spec.kernel[1]);
    in_elems *= static_cast<double>(spec.input[2] * spec.input[3]);
  }
  const double out_c = static_cast<double>(spec.out_channels);
  s.macs = out_positions * out_c * reduction;
  s.density = std::clamp(1.0 - spec.config.EffectiveSparsity(), 0.0, 1.0);
  s.macs_nonzero = s.macs * s.density;
  const double weights = out_c * reduction * s.density;
  s.weight_bytes = weights * (PrecisionBytes(spec.config.precision) + IndexBytesPerValue(spec.config));
  s.input_bytes = 4.0 * in_elems;
  s.output_bytes = 4.0 * out_positions * out_c;
  s.intensity = 2.0 * s.macs_nonzero / std::max(1.0, s.weight_bytes + s.input_bytes + s.output_bytes);
  return s;
}

const std::array<const char*, kNumFeatures>& FeatureNames() {
  static const std::array<const char*, kNumFeatures> names = {
      "batch",          "in_channels",   "out_channels",   "kernel_h",         "kernel_w",
      "stride",         "groups",        "in_h",           "in_w",             "out_hw",
      "log_flops",      "log_flops_nz",  "log_weight_b",   "log_act_b",        "intensity",
      "pat_dense",      "pat_unstruct",  "pat_block",      "pat_nm",           "prec_fp32",
      "prec_bf16",      "prec_int8",     "prec_int4w",     "block",            "nm_n",
      "nm_m",           "sparsity",      "threads",        "log_reduction",    "log_out_positions",
      "log_context_b"};
  return names;
}

std::array<float, kNumFeatures> Features(const KernelSpec& spec) {
  const KernelSpec run = AsRun(spec);
  return RunFeatures(run, RunStats(run));
}

std::array<float, kNumFeatures> RunFeatures(const KernelSpec& spec, const KernelShapeStats& st) {
  const LayerConfig& c = spec.config;
  std::array<float, kNumFeatures> f{};
  const bool conv = spec.is_conv();
  const double out_hw = conv ? static_cast<double>(spec.out_h() * spec.out_w()) : 1.0;
  const double reduction =
      conv ? static_cast<double>(spec.in_channels / spec.groups * spec.kernel[0] * spec.kernel[1])
           : static_cast<double>(spec.in_channels);
  int i = 0;
  f[i++] = static_cast<float>(spec.input[0]);
  f[i++] = static_cast<float>(spec.in_channels);
  f[i++] = static_cast<float>(spec.out_channels);
  f[i++] = static_cast<float>(conv ? spec.kernel[0] : 0);
  f[i++] = static_cast<float>(conv ? spec.kernel[1] : 0);
  f[i++] = static_cast<float>(conv ? spec.stride[0] : 0);
  f[i++] = static_cast<float>(spec.groups);
  f[i++] = static_cast<float>(conv ? spec.input[2] : 1);
  f[i++] = static_cast<float>(conv ? spec.input[3] : 1);
  f[i++] = static_cast<float>(out_hw);
  f[i++] = Log2p(2.0 * st.macs);
  f[i++] = Log2p(2.0 * st.macs_nonzero);
  f[i++] = Log2p(st.weight_bytes);
  f[i++] = Log2p(st.input_bytes + st.output_bytes);
  f[i++] = static_cast<float>(st.intensity);
  f[i++] = c.pattern == Pattern::kDense || c.pattern == Pattern::kChannel ? 1.0f : 0.0f;
  f[i++] = c.pattern == Pattern::kUnstructured ? 1.0f : 0.0f;
  f[i++] = c.pattern == Pattern::kBlock ? 1.0f : 0.0f;
  f[i++] = c.pattern == Pattern::kNM ? 1.0f : 0.0f;
  f[i++] = c.precision == Precision::kFp32 ? 1.0f : 0.0f;
  f[i++] = c.precision == Precision::kBf16 ? 1.0f : 0.0f;
  f[i++] = c.precision == Precision::kInt8 ? 1.0f : 0.0f;
  f[i++] = c.precision == Precision::kInt4w ? 1.0f : 0.0f;
  f[i++] = static_cast<float>(c.pattern == Pattern::kBlock ? c.block : 0);
  f[i++] = static_cast<float>(c.pattern == Pattern::kNM ? c.nm_n : 0);
  f[i++] = static_cast<float>(c.pattern == Pattern::kNM ? c.nm_m : 0);
  f[i++] = static_cast<float>(1.0 - st.density);
  f[i++] = static_cast<float>(spec.threads);
  f[i++] = Log2p(reduction);
  f[i++] = Log2p(static_cast<double>(spec.input[0]) * out_hw);
  f[i++] = Log2p(static_cast<double>(spec.context_bytes));
  return f;
}

std::vector<float> FeatureMatrix(const std::vector<KernelSpec>& specs) {
  std::vector<float> m;
  m.reserve(specs.size() * kNumFeatures);
  for (const KernelSpec& s : specs) {
    const std::array<float, kNumFeatures> f = Features(s);
    m.insert(m.end(), f.begin(), f.end());
  }
  return m;
}

}  // namespace acs::predictors
