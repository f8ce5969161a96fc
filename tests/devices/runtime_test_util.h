// What the runtime tests share: tolerances, imports, random policies, a
// compressed model beside its runtime build.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <random>
#include <string>
#include <tuple>

#include "core/importer.h"
#include "core/kernel_spec.h"
#include "devices/runtime/packed_depthwise.h"
#include "devices/runtime/packed_int8.h"
#include "devices/runtime/runtime.h"
#include "tests/core/test_models.h"

namespace acs::runtime::runtime_test {

inline constexpr double kTolerance = 1e-4;
inline constexpr double kInt8MaxTolerance = 2e-2;
inline constexpr double kInt8MeanTolerance = 1e-3;

inline std::shared_ptr<ImportedModel> Import(const std::string& name, const std::string& path = "",
                                             Shape shape = test_models::TestInputShape()) {
  StatusOr<std::shared_ptr<ImportedModel>> m =
      ImportTorchScript(path.empty() ? test_models::BuildTestModel(name) : path, ImportOptions{shape});
  EXPECT_TRUE(m.ok()) << name << ": " << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

// Every sparse config gets a sparse kernel, however dense.
// The "plain" test model with conv1 in 1x4 blocks, conv2 and fc1 int8, fc2 int4w.
inline Policy LowPrecisionPolicy() {
  Policy p;
  p.layers["features.conv1"] = LayerConfig{0.5, Pattern::kBlock, 4};
  p.layers["features.conv2"] = LayerConfig{0.0, Pattern::kDense, 1, 2, 4, Precision::kInt8};
  p.layers["classifier.fc1"] = LayerConfig{0.0, Pattern::kDense, 1, 2, 4, Precision::kInt8};
  p.layers["classifier.fc2"] = LayerConfig{0.0, Pattern::kDense, 1, 2, 4, Precision::kInt4w};
  return p;
}

inline RuntimeOptions AllSparse(int threads) {
  RuntimeOptions o;
  o.threads = threads;
  o.selection.max_density_block = o.selection.max_density_unstructured = o.selection.max_density_nm = 1.0;
  return o;
}

inline RuntimeOptions Threads(int threads) {
  RuntimeOptions o;
  o.threads = threads;
  return o;
}

// The block sizes among `sizes` that divide the layer's output channels.
inline std::vector<int> FittingBlocks(const Layer& layer, std::initializer_list<int> sizes) {
  std::vector<int> fits;
  for (int n : sizes) {
    if (layer.out_channels % n == 0) fits.push_back(n);
  }
  return fits;
}

// A random config for each compressible layer: block (an N that divides its
// outputs), unstructured, N:M, channel (where its group is prunable) or dense.
inline Policy RandomPolicy(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> sparsity(0.3, 0.9);
  Policy p;
  for (const Layer& layer : g.layers) {
    if (!layer.compressible) continue;
    LayerConfig c;
    switch (rng() % 5) {
      case 0: {
        const std::vector<int> fits = FittingBlocks(layer, {4, 8, 16});
        c.pattern = fits.empty() ? Pattern::kUnstructured : Pattern::kBlock;
        if (!fits.empty()) c.block = fits[rng() % fits.size()];
        c.sparsity = sparsity(rng);
        break;
      }
      case 1:
        c.pattern = Pattern::kUnstructured;
        c.sparsity = sparsity(rng);
        break;
      case 2:
        c.pattern = Pattern::kNM;
        std::tie(c.nm_n, c.nm_m) = std::vector<std::pair<int, int>>{{2, 4}, {1, 4}, {2, 8}}[rng() % 3];
        break;
      case 3:
        if (layer.out_group >= 0 && g.groups[layer.out_group].prunable && !layer.depthwise()) {
          c.pattern = Pattern::kChannel;
          c.sparsity = 0.5;
        }
        break;
      default:
        break;
    }
    p.layers[layer.name] = c;
  }
  return p;
}

inline void ExpectSameOutput(CompressedModel& compressed, RuntimeModel& rt, const torch::Tensor& x,
                             const std::string& what, bool int8 = false) {
  StatusOr<torch::Tensor> expect = compressed.Forward(x);
  StatusOr<torch::Tensor> got = rt.Forward(x);
  ASSERT_TRUE(expect.ok()) << what << ": " << expect.status().ToString();
  ASSERT_TRUE(got.ok()) << what << ": " << got.status().ToString();
  ASSERT_EQ(got->sizes(), expect->sizes()) << what;
  const double scale = std::max(1.0, expect->abs().max().item<double>());
  const torch::Tensor diff = (*got - *expect).abs();
  EXPECT_LE(diff.max().item<double>(), (int8 ? kInt8MaxTolerance : kTolerance) * scale) << what;
  if (int8) {
    EXPECT_LE(diff.mean().item<double>(), kInt8MeanTolerance * scale) << what;
  }
}

struct Built {
  CompressedModel compressed;
  RuntimeModel rt;
};

inline Built Build(const ImportedModel& model, const Policy& policy, const RuntimeOptions& options,
                   const CompressorOptions& compress = {}) {
  StatusOr<CompressedModel> c = Compress(model, policy, compress);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  StatusOr<RuntimeModel> rt = CompileForRuntime(model, policy, *c, options);
  EXPECT_TRUE(rt.ok()) << rt.status().ToString();
  return {std::move(c).value(), std::move(rt).value()};
}

inline const LayerKernel& Kernel(const RuntimeModel& rt, const std::string& name) {
  for (const LayerKernel& k : rt.layers()) {
    if (k.name == name) return k;
  }
  static const LayerKernel none;
  ADD_FAILURE() << "no layer " << name;
  return none;
}

// ExpectSameOutput on random inputs of batch 1 and 3 drawn from `seed`.
inline void ExpectSameOutputAtBatches(Built& b, const Policy& policy, const std::string& what, uint32_t seed,
                                      bool int8 = false) {
  torch::manual_seed(seed);
  for (int64_t batch : {1, 3}) {
    ExpectSameOutput(b.compressed, b.rt, torch::randn({batch, 3, 16, 16}),
                     what + " batch " + std::to_string(batch) + " policy " + policy.ToJson(-1), int8);
  }
}

}  // namespace acs::runtime::runtime_test
