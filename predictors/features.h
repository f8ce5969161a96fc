// Features of one kernel measurement (DESIGN §3 LatencyModel): what a latency model sees
// of a layer shape with a compression config and a thread count. Torch-free.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/kernel_spec.h"

namespace acs::predictors {

// Kernel kinds, one latency model each: regular / grouped convolutions, depthwise
// convolutions and linear layers run different code and scale differently.
enum class KernelKindId { kConv2d = 0, kDepthwise = 1, kLinear = 2, kCount = 3 };
const char* KernelKindIdName(KernelKindId kind);  // "conv2d", "depthwise", "linear"
StatusOr<KernelKindId> ParseKernelKindId(const std::string& name);
KernelKindId KindOf(const KernelSpec& spec);

// Analytic quantities of a spec as it runs (see AsRun in core/kernel_spec.h).
struct KernelShapeStats {
  double macs = 0;             // dense multiply-adds for the whole batch
  double density = 1;          // non-zero share of the weight
  double macs_nonzero = 0;     // macs x density
  double weight_bytes = 0;     // non-zero values at their precision, plus indices for sparse patterns
  double input_bytes = 0;      // fp32 activations read
  double output_bytes = 0;     // fp32 activations written
  double intensity = 0;        // 2 x macs_nonzero / (weight + input + output bytes)
};
KernelShapeStats ShapeStats(const KernelSpec& spec);
// The same for a spec that is AsRun already (no copy).
KernelShapeStats RunStats(const KernelSpec& run);

// Number of features and their names, in the order of Features().
constexpr int kNumFeatures = 31;
const std::array<const char*, kNumFeatures>& FeatureNames();

// The feature vector: shapes (batch, channels, kernel, stride, groups, input and output
// size), log FLOPs dense and after sparsity, log weight / activation bytes, arithmetic
// intensity, pattern and precision one-hots, block N, N:M, sparsity, threads, log context
// bytes.
std::array<float, kNumFeatures> Features(const KernelSpec& spec);
// The same for a spec that is AsRun already, with its RunStats.
std::array<float, kNumFeatures> RunFeatures(const KernelSpec& run, const KernelShapeStats& stats);

// Row-major features of many specs (specs.size() x kNumFeatures).
std::vector<float> FeatureMatrix(const std::vector<KernelSpec>& specs);

}  // namespace acs::predictors
