#include "predictors/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace acs::predictors {
namespace {

KernelSpec Conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t size, int64_t groups = 1) {
  KernelSpec s;
  s.op = "conv2d";
  s.in_channels = in;
  s.out_channels = out;
  s.kernel = {k, k};
  s.stride = {stride, stride};
  s.padding = {k / 2, k / 2};
  s.groups = groups;
  s.input = {1, in, size, size};
  return s;
}

KernelSpec Linear(int64_t in, int64_t out) {
  KernelSpec s;
  s.op = "linear";
  s.in_channels = in;
  s.out_channels = out;
  s.input = {1, in};
  return s;
}

int64_t Out(int64_t size, int64_t k, int64_t stride) { return (size + 2 * (k / 2) - k) / stride + 1; }

void AddResNet18(int64_t size, std::vector<KernelSpec>& v) {
  v.push_back(Conv(3, 64, 7, 2, size));
  int64_t s = Out(Out(size, 7, 2), 3, 2);  // stem conv and max pool
  int64_t in = 64;
  for (int64_t c : {64, 128, 256, 512}) {
    const int64_t stride = c == 64 ? 1 : 2;
    v.push_back(Conv(in, c, 3, stride, s));
    if (stride == 2) v.push_back(Conv(in, c, 1, 2, s));
    s = Out(s, 3, stride);
    v.push_back(Conv(c, c, 3, 1, s));
    in = c;
  }
  v.push_back(Linear(512, 1000));
}

void AddMobileNetV2(int64_t size, std::vector<KernelSpec>& v) {
  v.push_back(Conv(3, 32, 3, 2, size));
  int64_t s = Out(size, 3, 2), in = 32;
  // (expansion t, channels c, repeats n, first stride s) of the published architecture.
  const int table[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  for (const auto& row : table) {
    for (int r = 0; r < row[2]; ++r) {
      const int64_t stride = r == 0 ? row[3] : 1, hidden = in * row[0];
      if (row[0] != 1) v.push_back(Conv(in, hidden, 1, 1, s));
      v.push_back(Conv(hidden, hidden, 3, stride, s, hidden));
      s = Out(s, 3, stride);
      v.push_back(Conv(hidden, row[1], 1, 1, s));
      in = row[1];
    }
  }
  v.push_back(Conv(320, 1280, 1, 1, s));
  v.push_back(Linear(1280, 1000));
}

void AddResNet20(int64_t size, int64_t in_channels, std::vector<KernelSpec>& v) {
  v.push_back(Conv(in_channels, 16, 3, 1, size));
  int64_t s = size, in = 16;
  for (int64_t c : {16, 32, 64}) {
    const int64_t stride = c == 16 ? 1 : 2;
    v.push_back(Conv(in, c, 3, stride, s));
    s = Out(s, 3, stride);
    v.push_back(Conv(c, c, 3, 1, s));
    in = c;
  }
  v.push_back(Linear(64, 10));
}

bool Depthwise(const KernelSpec& s) {
  return s.is_conv() && s.groups > 1 && s.groups == s.in_channels && s.groups == s.out_channels;
}

// Pruned as channel pruning prunes (ChannelsKept: counts the hardware pads are not drawn),
// scaled up by a factor past 1.
int64_t Scaled(int64_t c, double keep, int64_t multiple) {
  const int64_t v = keep <= 1 ? ChannelsKept(c, 1 - keep) : std::llround(static_cast<double>(c) * keep);
  return std::max(multiple, v / multiple * multiple);
}

// Output channels times keep_out and (past an image's few channels) input channels times
// keep_in, multiples of the groups; a depthwise layer keeps in = out = groups.
void ScaleChannels(KernelSpec& s, double keep_in, double keep_out) {
  if (Depthwise(s)) {
    s.in_channels = s.out_channels = s.groups = Scaled(s.out_channels, keep_out, 1);
  } else {
    s.out_channels = Scaled(s.out_channels, keep_out, s.groups);
    if (s.in_channels > 4) s.in_channels = Scaled(s.in_channels, keep_in, s.groups);
  }
  s.input[1] = s.in_channels;
}

}  // namespace

void ShapePrior::AddGraph(const Graph& graph) {
  for (const Layer& l : graph.layers) {
    KernelSpec s = SpecOfLayer(l, LayerConfig{}, 1);
    s.input[0] = 1;
    shapes.push_back(s);
  }
}

ShapePrior ShapePrior::Builtin() {
  ShapePrior p;
  for (int64_t size : {224, 160}) {
    AddResNet18(size, p.shapes);
    AddMobileNetV2(size, p.shapes);
  }
  AddResNet20(32, 3, p.shapes);
  AddResNet20(28, 1, p.shapes);
  return p;
}

KernelSampler::KernelSampler(ShapePrior prior, SampleSpace space, uint64_t seed)
    : prior_(std::move(prior)), space_(std::move(space)), rng_(seed) {}

double KernelSampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int KernelSampler::Index(size_t n) { return static_cast<int>(std::min<size_t>(n - 1, Uniform() * n)); }

double KernelSampler::ChannelKeep() {
  if (Uniform() >= space_.share_channel_pruned) return 1.0;
  return space_.min_channel_keep + Uniform() * (1.0 - space_.min_channel_keep);
}

KernelSpec KernelSampler::Configure(KernelSpec s) {
  s.config = LayerConfig{};
  s.threads = space_.threads.empty() ? 1 : space_.threads[Index(space_.threads.size())];
  s.context_bytes = space_.contexts.empty() ? 0 : space_.contexts[Index(space_.contexts.size())];
  s.seed = next_seed_++;
  if (!space_.precisions.empty()) {
    s.config.precision = space_.precisions[0];
    if (space_.precisions.size() > 1 && Uniform() < space_.share_low_precision) {
      s.config.precision = space_.precisions[1 + Index(space_.precisions.size() - 1)];
    }
  }
  if (s.is_conv() && s.groups > 1) return s;  // dense only
  const double total = space_.weight_dense + space_.weight_block + space_.weight_unstructured + space_.weight_nm;
  double u = Uniform() * total;
  const double sparsity =
      space_.min_sparsity + Uniform() * (space_.max_sparsity - space_.min_sparsity);
  if ((u -= space_.weight_dense) < 0) return s;
  if ((u -= space_.weight_block) < 0 && !space_.block_sizes.empty()) {
    s.config.pattern = Pattern::kBlock;
    s.config.block = space_.block_sizes[Index(space_.block_sizes.size())];
    s.config.sparsity = std::round(sparsity * 100) / 100;
    return s;
  }
  if ((u -= space_.weight_unstructured) < 0 || space_.nm.empty()) {
    s.config.pattern = Pattern::kUnstructured;
    s.config.sparsity = std::round(sparsity * 100) / 100;
    return s;
  }
  const auto [n, m] = space_.nm[Index(space_.nm.size())];
  s.config.pattern = Pattern::kNM;
  s.config.nm_n = n;
  s.config.nm_m = m;
  return s;
}

std::vector<KernelSpec> KernelSampler::Sample(int n) {
  std::vector<KernelSpec> out;
  if (prior_.shapes.empty()) return out;
  for (int i = 0; i < n; ++i) {
    KernelSpec s = prior_.shapes[Index(prior_.shapes.size())];
    const double keep_out = ChannelKeep(), keep_in = ChannelKeep();
    ScaleChannels(s, keep_in, keep_out);
    out.push_back(Configure(s));
  }
  return out;
}

std::vector<KernelSpec> KernelSampler::SampleNear(const KernelSpec& center, int n) {
  std::vector<KernelSpec> out;
  for (int i = 0; i < n; ++i) {
    KernelSpec s = center;
    s.seed = next_seed_++;
    const double f_out = 0.8 + 0.45 * Uniform(), f_in = 0.8 + 0.45 * Uniform();
    ScaleChannels(s, f_in, f_out);
    if (s.config.pattern == Pattern::kBlock || s.config.pattern == Pattern::kUnstructured ||
        s.config.pattern == Pattern::kChannel) {
      const double sp = s.config.sparsity + (Uniform() - 0.5) * 0.1;
      s.config.sparsity = std::round(std::clamp(sp, 0.0, 0.97) * 100) / 100;
    }
    out.push_back(s);
  }
  return out;
}

std::vector<KernelSpec> AdaptiveSamples(KernelSampler& sampler, const std::vector<KernelSpec>& heldout,
                                        const std::vector<double>& relative_errors, double threshold,
                                        int per_point, int budget) {
  std::vector<size_t> order(std::min(heldout.size(), relative_errors.size()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return std::abs(relative_errors[a]) > std::abs(relative_errors[b]); });
  std::vector<KernelSpec> out;
  for (size_t i : order) {
    if (std::abs(relative_errors[i]) <= threshold || static_cast<int>(out.size()) >= budget) break;
    const int n = std::min(per_point, budget - static_cast<int>(out.size()));
    for (KernelSpec& s : sampler.SampleNear(heldout[i], n)) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace acs::predictors
