// What the policy tests share: a small graph and config makers.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "core/policy.h"

namespace acs::policy_test {

inline Layer MakeLayer(const std::string& name, LayerType type, int64_t in, int64_t out, int out_group) {
  Layer l;
  l.name = name;
  l.type = type;
  l.compressible = true;
  l.in_channels = in;
  l.out_channels = out;
  l.out_group = out_group;
  l.weight_path = name + ".weight";
  return l;
}

// conv1 (12 out, prunable group 0) -> conv2 (16 out, unprunable group 1) ->
// odd (3 groups, not compressible) -> fc (10 out, no group).
inline Graph TestGraph() {
  Graph g;
  g.layers.push_back(MakeLayer("conv1", LayerType::kConv2d, 3, 12, 0));
  g.layers.push_back(MakeLayer("conv2", LayerType::kConv2d, 12, 16, 1));
  Layer odd = MakeLayer("odd", LayerType::kConv2d, 16, 24, -1);
  odd.groups = 3;
  odd.compressible = false;
  odd.why_not = "grouped conv with 3 groups is not supported";
  g.layers.push_back(odd);
  g.layers.push_back(MakeLayer("fc", LayerType::kLinear, 24, 10, -1));

  ChannelGroup g0;
  g0.channels = 12;
  g0.producers = {0};
  g0.consumers = {1};
  ChannelGroup g1;
  g1.channels = 16;
  g1.producers = {1};
  g1.consumers = {2};
  g1.prunable = false;
  g1.why_not = "its channels feed a concat with the model input";
  g.groups = {g0, g1};
  return g;
}

inline LayerConfig Config(Pattern pattern, double sparsity, Precision precision = Precision::kFp32) {
  LayerConfig c;
  c.pattern = pattern;
  c.sparsity = sparsity;
  c.precision = precision;
  return c;
}

inline LayerConfig Block(int block, double sparsity) {
  LayerConfig c = Config(Pattern::kBlock, sparsity);
  c.block = block;
  return c;
}

inline LayerConfig NM(int n, int m) {
  LayerConfig c = Config(Pattern::kNM, 0.0);
  c.nm_n = n;
  c.nm_m = m;
  return c;
}

inline Policy Parse(const std::string& text) {
  StatusOr<Policy> p = Policy::FromJson(text);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Policy();
}

}  // namespace acs::policy_test
