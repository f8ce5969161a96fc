// Which kernels to measure for a device class (issue 4, nn-Meter style): layer shapes
// drawn from a prior over real models crossed with compression choices and thread
// counts, then adaptive rounds that sample near the held-out points with large error.
// Torch-free; deterministic for a seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/kernel_spec.h"
#include "core/policy.h"

namespace acs::predictors {

// Dense fp32 batch-1 layer shapes of real architectures.
struct ShapePrior {
  std::vector<KernelSpec> shapes;
  // Adds the conv2d / linear layers of a graph (as imported at its input shape).
  void AddGraph(const Graph& graph);
  // ResNet-18 and MobileNetV2 at 224 and 160 pixels, ResNet-20 (CIFAR) at 32 pixels:
  // the layer shapes of those published architectures, built from their stage tables.
  static ShapePrior Builtin();
};

// The compression choices crossed with the shapes: every config the search can emit,
// including those too dense for a sparse kernel (they run dense, and AsRun says so).
struct SampleSpace {
  // Pattern weights (dense stands for channel pruning too: channels are scaled below).
  double weight_dense = 0.3, weight_block = 0.35, weight_unstructured = 0.15, weight_nm = 0.2;
  std::vector<int> block_sizes = {4, 8, 16, 32};
  std::vector<std::pair<int, int>> nm = {{2, 4}, {1, 4}, {2, 8}};
  double min_sparsity = 0.0, max_sparsity = 0.95;   // for block and unstructured, uniform
  std::vector<Precision> precisions = {Precision::kFp32, Precision::kInt8, Precision::kBf16, Precision::kInt4w};
  double share_low_precision = 0.45;                // probability of a precision other than the first
  std::vector<int> threads = {1, 2};
  // The contexts kernels are measured in (KernelSpec::context_bytes), drawn uniformly:
  // warm caches and a model's weights from a few MiB to more than a last-level cache.
  std::vector<int64_t> contexts = {0, int64_t{1} << 20, int64_t{1} << 22, int64_t{1} << 24, int64_t{1} << 26};
  // A layer's input and output channels are each scaled, with this probability, by a keep
  // ratio uniform in [min_channel_keep, 1): the shapes channel pruning leaves.
  double share_channel_pruned = 0.5;
  double min_channel_keep = 0.1;
};

class KernelSampler {
 public:
  KernelSampler(ShapePrior prior, SampleSpace space, uint64_t seed);
  // n specs drawn independently. Depthwise and grouped layers stay dense (the runtime has
  // no sparse kernel for them) but may get a precision. Each spec gets a distinct seed.
  std::vector<KernelSpec> Sample(int n);
  // n specs near `center`: same kind, pattern, precision and threads; channels scaled by
  // 0.8..1.25, sparsity moved by up to ±0.05, the block size or N:M kept.
  std::vector<KernelSpec> SampleNear(const KernelSpec& center, int n);

 private:
  double Uniform();  // [0, 1)
  int Index(size_t n);
  double ChannelKeep();
  KernelSpec Configure(KernelSpec shape);
  ShapePrior prior_;
  SampleSpace space_;
  std::mt19937_64 rng_;
  uint64_t next_seed_ = 1;
};

// The adaptive round (nn-Meter): for held-out specs whose relative error exceeds
// `threshold`, `per_point` new specs each near them (worst first), at most `budget` in all.
std::vector<KernelSpec> AdaptiveSamples(KernelSampler& sampler, const std::vector<KernelSpec>& heldout,
                                        const std::vector<double>& relative_errors, double threshold,
                                        int per_point, int budget);

}  // namespace acs::predictors
