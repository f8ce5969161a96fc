// The kernel plan (DESIGN §3): the one rule that says which kernel runs a layer with a
// given config. The runtime compiles layers with it, the kernel measurements time what it
// chooses, and the latency predictors see a spec only as it runs (AsRun in
// core/kernel_spec.h), so the three can never disagree. Torch-free.
#pragma once

#include <cstdint>
#include <string>

#include "core/policy.h"

namespace acs {

// How a layer is executed by the runtime.
enum class KernelKind {
  kDense,          // aten conv2d / linear: oneDNN (or OpenBLAS) through LibTorch
  kBlockSparse,    // 1xN block-sparse kernel (devices/kernels)
  kCsr,            // unstructured sparse kernel
  kNm,             // N:M sparse kernel
  kInt8,           // int8 kernels: u8 activations x s8 per-channel weights (groups = 1
                   // GEMM-based, or depthwise)
  kInt4w,          // int4 weight-only linear kernel
  kDepthwise,      // fp32 3x3 depthwise kernel
  kInt8Simulated,  // int8 layer without an int8 kernel (grouped convolutions other
                   // than the int8 depthwise kernel's): the compressor's fake-quant aten graph
};
// "dense", "block", "csr", "nm", "int8", "int4w", "depthwise", "int8-simulated".
const char* KernelKindName(KernelKind kind);
// kBlockSparse, kCsr or kNm.
bool IsSparseKind(KernelKind kind);

// When a sparse config is worth a sparse kernel: at or below these shares of non-zero
// weights (1 - LayerConfig::EffectiveSparsity()). Denser layers run dense, where the sparse
// kernels would be slower. The defaults are crossovers seen with acs-worker measure-kernel
// on an AVX-512 host at batch 1 against oneDNN. The predictors assume the defaults.
struct KernelSelection {
  double max_density_block = 0.8;         // 1xN block kernel
  double max_density_unstructured = 0.4;  // CSR kernel (also for block sizes it lacks)
  double max_density_nm = 0.5;            // N:M kernel (2:4 has density 0.5)
};

// What ChooseKernel needs to know about a layer besides its config.
struct LayerTraits {
  bool linear = false;          // a linear layer (else a conv2d)
  int64_t groups = 1;           // conv2d groups
  bool depthwise_3x3 = false;   // groups = in = out channels, 3x3, dilation 1, stride 1 or 2
  bool depthwise_int8 = false;  // groups = in = out channels, up to 7x7, dilation 1, stride 1 or 2
};

struct KernelChoice {
  KernelKind kind = KernelKind::kDense;
  int block = 0;           // kBlockSparse: N (4, 8, 16 or 32)
  int nm_n = 0, nm_m = 0;  // kNm
  std::string why_dense;   // set when a sparse config runs dense
};

// The kernel for a layer with `config` (its nominal density, not the weights', decides).
// In order: int8 precision runs the int8 kernel (groups = 1, or depthwise_int8; other
// grouped int8 layers stay simulated), a 3x3 depthwise layer the depthwise kernel, a sparse config sparse enough its
// sparse kernel (groups = 1 only), an int4w linear layer the int4 kernel; anything else
// (bf16, int4w convolutions, channel pruning: weights already rounded or removed) runs dense.
KernelChoice ChooseKernel(const LayerConfig& config, const LayerTraits& layer, const KernelSelection& selection = {});

// The config that describes what `choice` computes, so that equal work has one name:
// dense kinds -> pattern dense at fp32 (int8-simulated keeps int8, its fake-quant input
// costs time); int8 and int4w -> dense at that precision; a sparse kind -> its pattern
// (kCsr as unstructured) at fp32 with the config's sparsity.
LayerConfig RunConfig(const LayerConfig& config, const KernelChoice& choice);

}  // namespace acs
