#include "core/kernel_plan.h"

#include <cstdio>
#include <utility>

namespace acs {
namespace {

std::string Percent(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.0f%%", 100.0 * x);
  return buffer;
}

KernelChoice Kind(KernelKind kind, std::string why = "") {
  KernelChoice c;
  c.kind = kind;
  c.why_dense = std::move(why);
  return c;
}

KernelChoice Dense(std::string why) { return Kind(KernelKind::kDense, std::move(why)); }

// The choice among the sparse kernels, or dense.
KernelChoice ChooseSparse(const LayerConfig& config, int64_t groups, const KernelSelection& selection) {
  if (config.pattern == Pattern::kDense || config.pattern == Pattern::kChannel) return Dense("");
  if (groups != 1) return Dense("grouped convolution (sparse kernels need groups = 1)");
  const double density = 1.0 - config.EffectiveSparsity();
  const std::string at = "density " + Percent(density) + " above ";
  KernelChoice c;
  switch (config.pattern) {
    case Pattern::kBlock: {
      const int n = config.block;
      if (n == 4 || n == 8 || n == 16 || n == 32) {
        if (density > selection.max_density_block) return Dense(at + Percent(selection.max_density_block));
        c.kind = KernelKind::kBlockSparse;
        c.block = n;
        return c;
      }
      // No 1xN kernel for this N: its zeros are still unstructured zeros.
      if (density > selection.max_density_unstructured) {
        return Dense("no 1x" + std::to_string(n) + " kernel, and " + at + Percent(selection.max_density_unstructured));
      }
      c.kind = KernelKind::kCsr;
      return c;
    }
    case Pattern::kUnstructured:
      if (density > selection.max_density_unstructured) return Dense(at + Percent(selection.max_density_unstructured));
      c.kind = KernelKind::kCsr;
      return c;
    case Pattern::kNM:
      if (density > selection.max_density_nm) return Dense(at + Percent(selection.max_density_nm));
      if (config.nm_m > 255) return Dense("N:M with M > 255");
      c.kind = KernelKind::kNm;
      c.nm_n = config.nm_n;
      c.nm_m = config.nm_m;
      return c;
    default:
      return Dense("");
  }
}

}  // namespace

const char* KernelKindName(KernelKind kind) {
  switch (kind) {
    case KernelKind::kDense: return "dense";
    case KernelKind::kBlockSparse: return "block";
    case KernelKind::kCsr: return "csr";
    case KernelKind::kNm: return "nm";
    case KernelKind::kInt8: return "int8";
    case KernelKind::kInt4w: return "int4w";
    case KernelKind::kDepthwise: return "depthwise";
    case KernelKind::kInt8Simulated: return "int8-simulated";
  }
  return "unknown";
}

bool IsSparseKind(KernelKind kind) {
  return kind == KernelKind::kBlockSparse || kind == KernelKind::kCsr || kind == KernelKind::kNm;
}

KernelChoice ChooseKernel(const LayerConfig& config, const LayerTraits& layer, const KernelSelection& selection) {
  if (config.precision == Precision::kInt8) {
    if (layer.linear || layer.groups == 1 || layer.depthwise_int8) return Kind(KernelKind::kInt8);
    return Kind(KernelKind::kInt8Simulated, "grouped convolution (the int8 kernels need groups = 1 or depthwise)");
  }
  if (!layer.linear && layer.depthwise_3x3) return Kind(KernelKind::kDepthwise);
  KernelChoice c = ChooseSparse(config, layer.linear ? 1 : layer.groups, selection);
  if (c.kind == KernelKind::kDense && config.precision == Precision::kInt4w && layer.linear) {
    return Kind(KernelKind::kInt4w);
  }
  return c;
}

LayerConfig RunConfig(const LayerConfig& config, const KernelChoice& choice) {
  LayerConfig r;  // dense fp32
  switch (choice.kind) {
    case KernelKind::kDense:
    case KernelKind::kDepthwise:
      break;
    case KernelKind::kInt8:
    case KernelKind::kInt8Simulated:
      r.precision = Precision::kInt8;
      break;
    case KernelKind::kInt4w:
      r.precision = Precision::kInt4w;
      break;
    case KernelKind::kBlockSparse:
      r.pattern = Pattern::kBlock;
      r.block = choice.block;
      r.sparsity = config.sparsity;
      break;
    case KernelKind::kCsr:
      r.pattern = Pattern::kUnstructured;
      r.sparsity = config.EffectiveSparsity();
      break;
    case KernelKind::kNm:
      r.pattern = Pattern::kNM;
      r.nm_n = choice.nm_n;
      r.nm_m = choice.nm_m;
      break;
  }
  return r;
}

}  // namespace acs
