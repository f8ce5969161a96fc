// What the compressor tests share: calibration data, random policies, the
// expected shapes and weights of an export.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "core/compressor.h"
#include "core/importer.h"
#include "core/weight_transforms.h"
#include "tests/core/test_models.h"

namespace acs::compressor_test {

// Also seen by the files that use this namespace:
using test_models::BuildTestModel;
using test_models::FirstNodeOfKind;
using test_models::Input;
using test_models::Param;
using test_models::StoredLayer;
using test_models::StoredLayers;
using test_models::TestInputShape;
using ::testing::HasSubstr;

inline constexpr int64_t kCalibrationSamples = 16;

inline torch::Tensor Rand(const Shape& shape, uint64_t seed) {
  return torch::rand(shape, at::detail::createCPUGenerator(seed));
}

// Calibration data: kCalibrationSamples samples of the model's input shape.
inline torch::Tensor Calibration(const Shape& input_shape, uint64_t seed = 7) {
  Shape s = input_shape;
  s[0] = kCalibrationSamples;
  return Rand(s, seed);
}

inline std::shared_ptr<ImportedModel> Import(const std::string& path, const Shape& shape) {
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(path, {shape});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

inline torch::jit::Node* FirstBatchNorm(torch::jit::Module& m) { return FirstNodeOfKind(m, "aten::batch_norm"); }

inline double MaxAbs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

inline const Precision kPrecisions[] = {Precision::kFp32, Precision::kBf16, Precision::kInt8, Precision::kInt4w};

// A random valid policy: per compressible layer a random pattern (channel only
// where the output group is prunable, block sizes dividing the output
// channels), sparsity in [0, 0.9) and precision (int8 only when allowed).
inline Policy RandomPolicy(const Graph& g, bool allow_int8, std::mt19937* rng) {
  std::uniform_real_distribution<double> sparsity(0.0, 0.9);
  Policy policy;
  for (const Layer& l : g.layers) {
    if (!l.compressible) continue;
    LayerConfig c;
    bool channel_ok = l.out_group >= 0 && g.groups[l.out_group].prunable;
    switch ((*rng)() % (channel_ok ? 5 : 4)) {
      case 0:
        break;
      case 1:
        c.pattern = Pattern::kUnstructured;
        c.sparsity = sparsity(*rng);
        break;
      case 2: {
        std::vector<int> sizes;
        for (int b : {1, 2, 4, 8, 16}) {
          if (l.out_channels % b == 0) sizes.push_back(b);
        }
        c.pattern = Pattern::kBlock;
        c.block = sizes[(*rng)() % sizes.size()];
        c.sparsity = sparsity(*rng);
        break;
      }
      case 3:
        c.pattern = Pattern::kNM;
        c.nm_m = std::vector<int>{2, 4, 8}[(*rng)() % 3];
        c.nm_n = 1 + static_cast<int>((*rng)() % c.nm_m);
        break;
      case 4:
        c.pattern = Pattern::kChannel;
        c.sparsity = sparsity(*rng);
        break;
    }
    c.precision = kPrecisions[(*rng)() % 4];
    if (!allow_int8 && c.precision == Precision::kInt8) c.precision = Precision::kFp32;
    if (c != LayerConfig()) policy.layers[l.name] = c;
  }
  return policy;
}

// Channels each group keeps under the policy: the largest channel sparsity
// among its producers and carriers, ChannelsKept with every 1xN block size in the group.
inline std::vector<int64_t> ExpectedKeep(const Graph& g, const Policy& policy) {
  std::vector<int64_t> keep;
  for (const ChannelGroup& group : g.groups) {
    double s = 0;
    int64_t multiple = 1;
    std::vector<int> members = group.producers;
    members.insert(members.end(), group.carriers.begin(), group.carriers.end());
    for (int li : members) {
      LayerConfig c = policy.Get(g.layers[li].name);
      if (c.pattern == Pattern::kChannel) s = std::max(s, c.sparsity);
      if (c.pattern == Pattern::kBlock) multiple = std::lcm(multiple, static_cast<int64_t>(c.block));
    }
    int64_t k = group.channels;
    if (group.prunable && s > 0) {
      k = ChannelsKept(group.channels, s, multiple);
    }
    keep.push_back(k);
  }
  return keep;
}

// Input channels (features) of a layer left after removing its groups'
// channels.
inline int64_t ExpectedIn(const Layer& l, const std::vector<int64_t>& keep) {
  int64_t in = l.in_channels;
  for (const ChannelSegment& s : l.input_segments) in -= (s.channels - keep[s.group]) * s.stride;
  return in;
}

// Checks the stored weights of an exported model against the policy (see the
// contract of PatternMask for the per-pattern bounds).
inline void CheckStoredWeights(const Graph& g, const Policy& policy, const CompressedModel& compressed,
                               const std::vector<StoredLayer>& stored) {
  ASSERT_EQ(stored.size(), g.layers.size());
  std::vector<int64_t> keep = ExpectedKeep(g, policy);
  std::map<std::string, const LayerResult*> results;
  for (const LayerResult& r : compressed.layers) results[r.name] = &r;
  int64_t params = 0, nonzero = 0;
  for (size_t li = 0; li < g.layers.size(); ++li) {
    const Layer& l = g.layers[li];
    SCOPED_TRACE(l.name);
    const torch::Tensor& w = stored[li].weight;
    ASSERT_TRUE(w.defined());
    params += w.numel() + (stored[li].bias.defined() ? stored[li].bias.numel() : 0);
    nonzero +=
        (w != 0).sum().item<int64_t>() + (stored[li].bias.defined() ? (stored[li].bias != 0).sum().item<int64_t>() : 0);
    int64_t in = ExpectedIn(l, keep);
    int64_t out = l.depthwise() ? in : (l.out_group >= 0 ? keep[l.out_group] : l.out_channels);
    EXPECT_EQ(w.size(0), out);
    EXPECT_EQ(w.size(1), l.depthwise() ? 1 : in / l.groups);
    if (stored[li].bias.defined()) {
      EXPECT_EQ(stored[li].bias.size(0), out);
    }
    if (!l.compressible) continue;
    ASSERT_EQ(results.count(l.name), 1u);
    const LayerResult& r = *results[l.name];
    EXPECT_EQ(r.out_channels_after, out);
    EXPECT_EQ(r.in_channels_after, in);
    EXPECT_EQ(r.weights, w.numel());
    EXPECT_EQ(r.zeros, (w == 0).sum().item<int64_t>());
    LayerConfig c = policy.Get(l.name);
    torch::Tensor w2 = w.reshape({w.size(0), -1});
    int64_t rows = w2.size(0), cols = w2.size(1);
    if (c.precision == Precision::kInt8 || c.precision == Precision::kInt4w) {
      // Per output channel symmetric grid: every value an integer multiple of
      // max|row| / levels.
      double levels = c.precision == Precision::kInt8 ? 127 : 7;
      torch::Tensor step = (w2.abs().amax(1, true) / levels).clamp_min(1e-30);
      torch::Tensor q = w2 / step;
      EXPECT_LT(MaxAbs(q - q.round()), 1e-3);
      EXPECT_LE(MaxAbs(q), levels + 1e-3);
    } else if (c.precision == Precision::kBf16) {
      EXPECT_TRUE(torch::equal(w, w.to(torch::kBFloat16).to(torch::kFloat32)));
    }
    if (c.pattern == Pattern::kUnstructured) {
      EXPECT_GE(r.zeros, static_cast<int64_t>(std::floor(c.sparsity * w.numel())));
    } else if (c.pattern == Pattern::kBlock) {
      int64_t blocks = (rows + c.block - 1) / c.block;
      torch::Tensor padded = torch::zeros({blocks * c.block, cols});  // a short last block
      padded.narrow(0, 0, rows).copy_(w2.abs());
      int64_t zero_blocks = (padded.view({blocks, c.block, cols}).amax(1) == 0).sum().item<int64_t>();
      EXPECT_GE(zero_blocks, static_cast<int64_t>(std::floor(c.sparsity * blocks * cols)));
    } else if (c.pattern == Pattern::kNM) {
      int64_t runs = (cols + c.nm_m - 1) / c.nm_m;
      torch::Tensor padded = torch::zeros({rows, runs * c.nm_m});
      padded.narrow(1, 0, cols).copy_(w2);
      int64_t most = (padded.view({rows, runs, c.nm_m}) != 0).sum(2).max().item<int64_t>();
      EXPECT_LE(most, c.nm_n) << c.nm_n << ":" << c.nm_m;
    }
  }
  EXPECT_EQ(compressed.params_after, params);
  EXPECT_EQ(compressed.nonzero_after, nonzero);
}

// When the first batch norm directly follows a conv on the model input, checks
// that its recalibrated statistics are those of the stored conv's output on the
// calibration data.
inline void CheckFirstBatchNorm(torch::jit::Module& module, const Graph& g, const torch::Tensor& calibration) {
  torch::jit::Node* bn = FirstBatchNorm(module);
  if (bn == nullptr) return;
  torch::jit::Node* conv = bn->input(0)->node();
  if (!IsWeightedOpKind(conv->kind().toQualString()) || conv->input(0) != conv->owningGraph()->inputs()[1]) return;
  const Layer& l = g.layers.front();  // the only layer reading the model input
                                      // in every test model
  ASSERT_EQ(l.type, LayerType::kConv2d);
  torch::Tensor y = torch::conv2d(calibration, Input(conv, 1), Input(conv, 2), {l.stride[0], l.stride[1]},
                                  {l.padding[0], l.padding[1]}, {l.dilation[0], l.dilation[1]}, l.groups);
  EXPECT_TRUE(torch::allclose(Input(bn, 3), y.mean({0, 2, 3}), 1e-4, 1e-5)) << "running mean of the first batch norm";
  EXPECT_TRUE(torch::allclose(Input(bn, 4), y.var({0, 2, 3}, true), 1e-4, 1e-5))
      << "running var of the first batch norm";
}

inline bool HasInt8(const Graph& g, const Policy& policy) {
  for (const Layer& l : g.layers) {
    if (policy.Get(l.name).precision == Precision::kInt8) return true;
  }
  return false;
}

// Compresses with the policy and checks the export against itself, the masked
// simulation and the policy.
inline void CheckPolicy(const ImportedModel& model, const Policy& policy, const torch::Tensor& calibration,
                        const torch::Tensor& input, const torch::Tensor& dense_out) {
  const Graph& g = model.graph;
  CompressorOptions options;
  options.calibration = calibration;
  options.reconstruction_images = 8;  // keeps the torchvision cases quick
  StatusOr<CompressedModel> exported = Compress(model, policy, options);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  std::string path = test_models::TempPath(".pt");
  ASSERT_TRUE(exported->Save(path).ok());
  torch::jit::Module reloaded = torch::jit::load(path);
  std::remove(path.c_str());

  StatusOr<torch::Tensor> in_memory = exported->Forward(input);
  ASSERT_TRUE(in_memory.ok()) << in_memory.status().ToString();
  torch::Tensor from_file = reloaded.forward({input}).toTensor();
  ASSERT_EQ(in_memory->sizes(), dense_out.sizes());
  ASSERT_EQ(from_file.sizes(), dense_out.sizes());
  // The same graph and constants: equal up to nondeterminism of kernel
  // dispatch.
  double scale = MaxAbs(*in_memory);
  EXPECT_LE(MaxAbs(from_file - *in_memory), 1e-6 * scale + 1e-7);

  options.remove_channels = false;
  StatusOr<CompressedModel> masked = Compress(model, policy, options);
  ASSERT_TRUE(masked.ok()) << masked.status().ToString();
  StatusOr<torch::Tensor> masked_out = masked->Forward(input);
  ASSERT_TRUE(masked_out.ok()) << masked_out.status().ToString();
  // Both runs use identical kept weights; only the summation order differs
  // (removed channels are summed as exact zeros): a few float32 ulps per layer,
  // far below 1e-4 of the output scale. With int8 layers the activation
  // fake-quantization rounds to a grid of step range / 255 (0.4% of the range):
  // an input that differs by one ulp can land on the other side of a rounding
  // boundary and move by one step. Such flips are rare (an input must lie
  // within an ulp of a boundary), and a few of them move the logits by well
  // under 2% of their scale.
  bool int8 = HasInt8(g, policy);
  double tolerance = int8 ? 2e-2 * scale + 1e-4 : 1e-4 * scale + 1e-5;
  EXPECT_LE(MaxAbs(*masked_out - from_file), tolerance) << (int8 ? "with int8 layers" : "");
  // The masked simulation keeps every tensor's dense shape.
  std::vector<StoredLayer> masked_layers = StoredLayers(masked->module);
  ASSERT_EQ(masked_layers.size(), g.layers.size());
  for (size_t li = 0; li < g.layers.size(); ++li) {
    const Layer& l = g.layers[li];
    EXPECT_EQ(masked_layers[li].weight.size(0), l.out_channels) << l.name;
    EXPECT_EQ(masked_layers[li].weight.size(1), l.in_channels / l.groups) << l.name;
  }

  CheckStoredWeights(g, policy, *exported, StoredLayers(reloaded));
  CheckFirstBatchNorm(reloaded, g, calibration);
}

}  // namespace acs::compressor_test
