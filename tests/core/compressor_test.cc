#include "core/compressor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "core/importer.h"
#include "core/weight_transforms.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

using ::testing::HasSubstr;
using test_models::BuildTestModel;
using test_models::FirstNodeOfKind;
using test_models::Input;
using test_models::Param;
using test_models::StoredLayer;
using test_models::StoredLayers;
using test_models::TestInputShape;

constexpr int64_t kCalibrationSamples = 16;

torch::Tensor Rand(const Shape& shape, uint64_t seed) {
  return torch::rand(shape, at::detail::createCPUGenerator(seed));
}

// Calibration data: kCalibrationSamples samples of the model's input shape.
torch::Tensor Calibration(const Shape& input_shape, uint64_t seed = 7) {
  Shape s = input_shape;
  s[0] = kCalibrationSamples;
  return Rand(s, seed);
}

std::shared_ptr<ImportedModel> Import(const std::string& path, const Shape& shape) {
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(path, {shape});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

torch::jit::Node* FirstBatchNorm(torch::jit::Module& m) { return FirstNodeOfKind(m, "aten::batch_norm"); }

double MaxAbs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

const Precision kPrecisions[] = {Precision::kFp32, Precision::kBf16, Precision::kInt8, Precision::kInt4w};

// A random valid policy: per compressible layer a random pattern (channel only where the
// output group is prunable, block sizes dividing the output channels), sparsity in
// [0, 0.9) and precision (int8 only when allowed).
Policy RandomPolicy(const Graph& g, bool allow_int8, std::mt19937* rng) {
  std::uniform_real_distribution<double> sparsity(0.0, 0.9);
  Policy policy;
  for (const Layer& l : g.layers) {
    if (!l.compressible) continue;
    LayerConfig c;
    bool channel_ok = l.out_group >= 0 && g.groups[l.out_group].prunable;
    switch ((*rng)() % (channel_ok ? 5 : 4)) {
      case 0: break;
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

// Channels each group keeps under the policy: the largest channel sparsity among its
// producers and carriers, round(C * (1 - s)), at least 1, rounded up to a multiple of
// every 1xN block size in the group.
std::vector<int64_t> ExpectedKeep(const Graph& g, const Policy& policy) {
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
      k = std::max<int64_t>(1, std::llround(group.channels * (1 - s)));
      k = std::min(group.channels, (k + multiple - 1) / multiple * multiple);
    }
    keep.push_back(k);
  }
  return keep;
}

// Input channels (features) of a layer left after removing its groups' channels.
int64_t ExpectedIn(const Layer& l, const std::vector<int64_t>& keep) {
  int64_t in = l.in_channels;
  for (const ChannelSegment& s : l.input_segments) in -= (s.channels - keep[s.group]) * s.stride;
  return in;
}

// Checks the stored weights of an exported model against the policy (see the contract of
// PatternMask for the per-pattern bounds).
void CheckStoredWeights(const Graph& g, const Policy& policy, const CompressedModel& compressed,
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
    nonzero += (w != 0).sum().item<int64_t>() + (stored[li].bias.defined() ? (stored[li].bias != 0).sum().item<int64_t>() : 0);
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
      // Per output channel symmetric grid: every value an integer multiple of max|row| / levels.
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

// When the first batch norm directly follows a conv on the model input, checks that its
// recalibrated statistics are those of the stored conv's output on the calibration data.
void CheckFirstBatchNorm(torch::jit::Module& module, const Graph& g, const torch::Tensor& calibration) {
  torch::jit::Node* bn = FirstBatchNorm(module);
  if (bn == nullptr) return;
  torch::jit::Node* conv = bn->input(0)->node();
  if (!IsWeightedOpKind(conv->kind().toQualString()) || conv->input(0) != conv->owningGraph()->inputs()[1]) return;
  const Layer& l = g.layers.front();  // the only layer reading the model input in every test model
  ASSERT_EQ(l.type, LayerType::kConv2d);
  torch::Tensor y = torch::conv2d(calibration, Input(conv, 1), Input(conv, 2),
                                  {l.stride[0], l.stride[1]}, {l.padding[0], l.padding[1]},
                                  {l.dilation[0], l.dilation[1]}, l.groups);
  EXPECT_TRUE(torch::allclose(Input(bn, 3), y.mean({0, 2, 3}), 1e-4, 1e-5)) << "running mean of the first batch norm";
  EXPECT_TRUE(torch::allclose(Input(bn, 4), y.var({0, 2, 3}, true), 1e-4, 1e-5)) << "running var of the first batch norm";
}

bool HasInt8(const Graph& g, const Policy& policy) {
  for (const Layer& l : g.layers) {
    if (policy.Get(l.name).precision == Precision::kInt8) return true;
  }
  return false;
}

// Compresses with the policy and checks the export against itself, the masked
// simulation and the policy.
void CheckPolicy(const ImportedModel& model, const Policy& policy, const torch::Tensor& calibration,
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
  // The same graph and constants: equal up to nondeterminism of kernel dispatch.
  double scale = MaxAbs(*in_memory);
  EXPECT_LE(MaxAbs(from_file - *in_memory), 1e-6 * scale + 1e-7);

  options.remove_channels = false;
  StatusOr<CompressedModel> masked = Compress(model, policy, options);
  ASSERT_TRUE(masked.ok()) << masked.status().ToString();
  StatusOr<torch::Tensor> masked_out = masked->Forward(input);
  ASSERT_TRUE(masked_out.ok()) << masked_out.status().ToString();
  // Both runs use identical kept weights; only the summation order differs (removed
  // channels are summed as exact zeros): a few float32 ulps per layer, far below 1e-4 of
  // the output scale. With int8 layers the activation fake-quantization rounds to a grid
  // of step range / 255 (0.4% of the range): an input that differs by one ulp can land on
  // the other side of a rounding boundary and move by one step. Such flips are rare (an
  // input must lie within an ulp of a boundary), and a few of them move the logits by
  // well under 2% of their scale.
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

struct ModelCase {
  std::string name;  // a test model, or "tv:<torchvision name>:<script|trace>"
  int policies;
};

class RandomPolicyTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(RandomPolicyTest, ExportMatchesMaskedSimulationAndPolicy) {
  const ModelCase& c = GetParam();
  std::string path;
  Shape shape = TestInputShape();
  if (c.name.rfind("tv:", 0) == 0) {
    size_t colon = c.name.find(':', 3);
    path = test_models::ExportTorchvisionModel(c.name.substr(3, colon - 3), c.name.substr(colon + 1) == "trace");
    if (path.empty()) GTEST_SKIP() << "/usr/bin/python3 with torchvision is not available";
    shape = {1, 3, 64, 64};
  } else {
    path = BuildTestModel(c.name);
  }
  auto model = Import(path, shape);
  ASSERT_NE(model, nullptr);
  torch::jit::Module original = torch::jit::load(path);
  original.eval();
  Shape input_shape = shape;
  input_shape[0] = 2;
  torch::Tensor input = Rand(input_shape, 11);
  torch::Tensor dense_out = original.forward({input}).toTensor();
  // The empty policy without calibration data reproduces the model (within 1e-5).
  StatusOr<CompressedModel> same = Compress(*model, Policy());
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  StatusOr<torch::Tensor> same_out = same->Forward(input);
  ASSERT_TRUE(same_out.ok()) << same_out.status().ToString();
  EXPECT_LE(MaxAbs(*same_out - dense_out), 1e-5 * MaxAbs(dense_out) + 1e-6);
  EXPECT_EQ(same->params_after, same->params_before);
  EXPECT_EQ(same->params_before, model->graph.TotalParams());

  torch::Tensor calibration = Calibration(shape);
  std::mt19937 rng(1234);
  for (int i = 0; i < c.policies; ++i) {
    Policy policy = RandomPolicy(model->graph, /*allow_int8=*/i % 2 == 1, &rng);
    SCOPED_TRACE("policy " + std::to_string(i) + ": " + policy.ToJson(-1));
    CheckPolicy(*model, policy, calibration, input, dense_out);
    if (HasFailure()) break;
  }
}

std::string CaseName(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string name = info.param.name;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(TestModels, RandomPolicyTest,
                         ::testing::Values(ModelCase{"plain", 15}, ModelCase{"residual", 15},
                                           ModelCase{"concat", 15}, ModelCase{"depthwise", 15},
                                           ModelCase{"grouped", 15}, ModelCase{"se", 15},
                                           ModelCase{"channel_constants", 15}, ModelCase{"unknown_ops", 15},
                                           ModelCase{"shared_weights", 10}),
                         CaseName);
INSTANTIATE_TEST_SUITE_P(Torchvision, RandomPolicyTest,
                         ::testing::Values(ModelCase{"tv:resnet18:script", 3},
                                           ModelCase{"tv:mobilenet_v3_small:trace", 3}),
                         CaseName);

TEST(CompressorTest, CompressingLeavesTheImportedModelUnchangedAndIsDeterministic) {
  auto model = Import(BuildTestModel("residual"), TestInputShape());
  ASSERT_NE(model, nullptr);
  torch::Tensor input = Rand({2, 3, 16, 16}, 3);
  StatusOr<torch::Tensor> before = RunGraph(model->frozen, model->module, input);
  ASSERT_TRUE(before.ok());
  std::mt19937 rng(5);
  Policy policy = RandomPolicy(model->graph, /*allow_int8=*/true, &rng);
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape());
  StatusOr<CompressedModel> a = Compress(*model, policy, options);
  StatusOr<CompressedModel> b = Compress(*model, policy, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(torch::equal(*a->Forward(input), *b->Forward(input)));
  EXPECT_EQ(a->policy_hash, policy.Hash());
  StatusOr<torch::Tensor> after = RunGraph(model->frozen, model->module, input);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(torch::equal(*before, *after));
}

TEST(CompressorTest, DefaultConfigAppliesToEveryTakingLayer) {
  auto model = Import(BuildTestModel("residual"), TestInputShape());
  ASSERT_NE(model, nullptr);
  const Graph& g = model->graph;
  LayerConfig channel;
  channel.pattern = Pattern::kChannel;
  channel.sparsity = 0.5;
  Policy policy;
  policy.default_config = channel;
  StatusOr<CompressedModel> c = Compress(*model, policy);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  CheckStoredWeights(g, ResolvePolicy(policy, g), *c, StoredLayers(c->module));
  int channel_layers = 0, prunable = 0;
  for (const LayerResult& r : c->layers) channel_layers += r.config.pattern == Pattern::kChannel;
  for (const Layer& l : g.layers) prunable += l.out_group >= 0 && g.groups[l.out_group].prunable;
  EXPECT_EQ(channel_layers, prunable);
  EXPECT_EQ(StoredLayers(c->module).back().weight.size(0), 10);  // the classifier keeps its outputs
}

TEST(CompressorTest, BatchNormIsRecalibratedOnTheCalibrationData) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  torch::Tensor calibration = Calibration(TestInputShape());
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::Tensor w0 = Param(original, "features.conv1.weight");
  for (double sparsity : {0.0, 0.5}) {
    SCOPED_TRACE(sparsity);
    Policy policy;
    if (sparsity > 0) {
      LayerConfig c;
      c.pattern = Pattern::kChannel;
      c.sparsity = sparsity;
      policy.layers["features.conv1"] = c;
    }
    CompressorOptions options;
    options.calibration = calibration;
    StatusOr<CompressedModel> compressed = Compress(*model, policy, options);
    ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
    std::string path = test_models::TempPath(".pt");
    ASSERT_TRUE(compressed->Save(path).ok());
    torch::jit::Module reloaded = torch::jit::load(path);
    StoredLayer conv1 = StoredLayers(reloaded).at(0);
    ASSERT_EQ(conv1.weight.size(0), sparsity > 0 ? 4 : 8);
    // The kept channels, found by matching the stored rows with the original ones.
    std::vector<int64_t> kept;
    for (int64_t r = 0; r < conv1.weight.size(0); ++r) {
      for (int64_t o = 0; o < w0.size(0); ++o) {
        if (torch::equal(conv1.weight[r], w0[o])) kept.push_back(o);
      }
    }
    ASSERT_EQ(static_cast<int64_t>(kept.size()), conv1.weight.size(0));
    torch::Tensor index = torch::tensor(kept);
    // Mean and unbiased variance (as batch_norm in training mode records) of the stored
    // conv's output over the calibration samples and positions.
    CheckFirstBatchNorm(reloaded, model->graph, calibration);
    torch::jit::Node* bn = FirstBatchNorm(reloaded);
    ASSERT_NE(bn, nullptr);
    // Affine parameters are the original ones of the kept channels.
    EXPECT_TRUE(torch::equal(Input(bn, 1), Param(original, "features.bn1.weight").index_select(0, index)));
    EXPECT_TRUE(torch::equal(Input(bn, 2), Param(original, "features.bn1.bias").index_select(0, index)));
    std::remove(path.c_str());
  }
}

TEST(CompressorTest, BatchNormStatisticsAverageCalibrationChunks) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape()).narrow(0, 0, 11);
  options.calibration_batch = 5;  // chunks of 5, 5 and 1; the single sample joins the last
  StatusOr<CompressedModel> compressed = Compress(*model, Policy(), options);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::Tensor y = torch::conv2d(options.calibration, Param(original, "features.conv1.weight"),
                                  Param(original, "features.conv1.bias"), 1, 1);
  // Per-chunk statistics weighted by chunk size: chunks [0, 5) and [5, 11).
  torch::Tensor a = y.narrow(0, 0, 5), b = y.narrow(0, 5, 6);
  torch::Tensor mean = (a.mean({0, 2, 3}) * 5 + b.mean({0, 2, 3}) * 6) / 11;
  torch::Tensor var = (a.var({0, 2, 3}, true) * 5 + b.var({0, 2, 3}, true) * 6) / 11;
  torch::jit::Node* bn = FirstBatchNorm(compressed->module);
  ASSERT_NE(bn, nullptr);
  EXPECT_TRUE(torch::allclose(Input(bn, 3), mean, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(Input(bn, 3), y.mean({0, 2, 3}), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(Input(bn, 4), var, 1e-4, 1e-5));
}

TEST(CompressorTest, CalibrationDataIsCheckedAndRecalibrationOptional) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  CompressorOptions options;
  options.calibration = torch::rand({4, 3, 8, 8});  // wrong sample shape
  EXPECT_EQ(Compress(*model, Policy(), options).status().code(), StatusCode::kInvalidArgument);
  options.calibration = Calibration(TestInputShape()).narrow(0, 0, 1);  // batch norm needs 2
  EXPECT_EQ(Compress(*model, Policy(), options).status().code(), StatusCode::kInvalidArgument);
  options.recalibrate_batch_norm = false;  // then the statistics stay
  StatusOr<CompressedModel> compressed = Compress(*model, Policy(), options);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::jit::Node* bn = FirstBatchNorm(compressed->module);
  ASSERT_NE(bn, nullptr);
  EXPECT_TRUE(torch::equal(Input(bn, 3), Param(original, "features.bn1.running_mean")));
  EXPECT_TRUE(torch::equal(Input(bn, 4), Param(original, "features.bn1.running_var")));
}

// Loads each model file in Python PyTorch and prints its output on a fixed input.
const char* kRunInPython = R"(import sys
import torch
x = torch.linspace(-1, 1, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)
for path in sys.argv[1:]:
    m = torch.jit.load(path)
    with torch.no_grad():
        y = m(x)
    print(" ".join(repr(v) for v in y.flatten().tolist()))
)";

TEST(CompressorTest, ExportLoadsAndRunsInPython) {
  std::vector<std::string> paths;
  std::vector<torch::Tensor> expected;
  torch::Tensor input = torch::linspace(-1, 1, 2 * 3 * 16 * 16).reshape({2, 3, 16, 16});
  std::mt19937 rng(99);
  for (const std::string& name : test_models::TestModelNames()) {
    auto model = Import(BuildTestModel(name), TestInputShape());
    ASSERT_NE(model, nullptr);
    CompressorOptions options;
    options.calibration = Calibration(TestInputShape());
    StatusOr<CompressedModel> c = Compress(*model, RandomPolicy(model->graph, true, &rng), options);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    paths.push_back(test_models::TempPath("_" + name + ".pt"));
    ASSERT_TRUE(c->Save(paths.back()).ok());
    StatusOr<torch::Tensor> out = c->Forward(input);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    expected.push_back(out->flatten());
  }
  std::string output;
  if (!test_models::RunPython(kRunInPython, paths, &output)) {
    if (test_models::ExportTorchvisionModel("resnet18", false).empty()) GTEST_SKIP() << "no python with torch";
    FAIL() << "python could not load or run the exported models";
  }
  std::istringstream lines(output);
  for (size_t i = 0; i < paths.size(); ++i) {
    SCOPED_TRACE(test_models::TestModelNames()[i]);
    std::string line;
    ASSERT_TRUE(std::getline(lines, line));
    std::istringstream values(line);
    std::vector<float> got;
    for (double v; values >> v;) got.push_back(static_cast<float>(v));
    ASSERT_EQ(static_cast<int64_t>(got.size()), expected[i].numel());
    EXPECT_LE(MaxAbs(torch::tensor(got) - expected[i]), 1e-5 * MaxAbs(expected[i]) + 1e-6);
  }
}

// Compresses "grouped" with one layer's config and returns the status.
Status CompressWith(const std::string& layer, const LayerConfig& c, bool calibration = true) {
  auto model = Import(BuildTestModel("grouped"), TestInputShape());
  if (!model) return Status::Internal("import failed");
  Policy policy;
  policy.layers[layer] = c;
  CompressorOptions options;
  if (calibration) options.calibration = Calibration(TestInputShape());
  return Compress(*model, policy, options).status();
}

TEST(CompressorTest, InvalidPoliciesAreRejected) {
  LayerConfig unstructured;
  unstructured.pattern = Pattern::kUnstructured;
  unstructured.sparsity = 0.5;
  Status s = CompressWith("no_such_layer", unstructured);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("no_such_layer"));

  LayerConfig block = unstructured;
  block.pattern = Pattern::kBlock;
  block.block = 3;  // conv3 has 8 output channels
  s = CompressWith("conv3", block);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("conv3"));

  LayerConfig nm;
  nm.pattern = Pattern::kNM;
  nm.nm_n = 5;
  nm.nm_m = 4;
  s = CompressWith("conv3", nm);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();

  LayerConfig channel = unstructured;
  channel.pattern = Pattern::kChannel;
  s = CompressWith("conv1", channel);  // feeds the grouped conv
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("conv1"));
  s = CompressWith("fc", channel);  // the classifier output
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();

  LayerConfig too_sparse = unstructured;
  too_sparse.sparsity = 1.0;
  s = CompressWith("conv3", too_sparse);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();

  LayerConfig int8;
  int8.precision = Precision::kInt8;
  s = CompressWith("conv3", int8, /*calibration=*/false);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("calibration"));
  EXPECT_TRUE(CompressWith("conv3", int8, /*calibration=*/true).ok());
}

TEST(CompressorTest, ChannelPatternOnGroupedConvSaysWhy) {
  LayerConfig channel;
  channel.pattern = Pattern::kChannel;
  channel.sparsity = 0.5;
  Status s = CompressWith("gconv", channel);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  // The reason is the grouped conv, not a missing channel group.
  EXPECT_THAT(s.message(), HasSubstr("grouped conv")) << s.ToString();
}

TEST(CompressorTest, Int8LayersAreFakeQuantizedInTheExport) {
  auto model = Import(BuildTestModel("plain"), TestInputShape());
  ASSERT_NE(model, nullptr);
  LayerConfig int8;
  int8.precision = Precision::kInt8;
  Policy policy;
  policy.layers["features.conv2"] = int8;
  CompressorOptions options;
  options.calibration = Calibration(TestInputShape());
  StatusOr<CompressedModel> c = Compress(*model, policy, options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::shared_ptr<torch::jit::Graph> graph =
      torch::jit::toGraphFunction(c->module.get_method("forward").function()).graph();
  int fake_quant = 0;
  for (torch::jit::Node* node : graph->nodes()) {
    fake_quant += node->kind() == c10::Symbol::fromQualString("aten::fake_quantize_per_tensor_affine");
  }
  EXPECT_EQ(fake_quant, 1);
  // The stored weight is its int8 simulation.
  torch::jit::Module original = torch::jit::load(BuildTestModel("plain"));
  torch::Tensor w = Param(original, "features.conv2.weight");
  EXPECT_TRUE(torch::equal(StoredLayers(c->module).at(1).weight, SimulatePrecision(w, Precision::kInt8)));
}

}  // namespace
}  // namespace acs
