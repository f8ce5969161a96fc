// What the importer tests share: importing a test model, finding layers, groups and nodes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/importer.h"
#include "tests/core/test_models.h"

namespace acs::importer_test {

using test_models::BuildTestModel;
using test_models::TestInputShape;


inline std::shared_ptr<ImportedModel> Import(const std::string& name) {
  std::string path = BuildTestModel(name);
  EXPECT_FALSE(path.empty()) << name;
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(path, {TestInputShape()});
  EXPECT_TRUE(m.ok()) << name << ": " << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

// The layer with this name; fails the test when missing.
inline const Layer& Get(const Graph& g, const std::string& name) {
  int i = g.FindLayer(name);
  EXPECT_GE(i, 0) << "no layer " << name;
  static const Layer kMissing;
  return i >= 0 ? g.layers[i] : kMissing;
}
inline int Index(const Graph& g, const std::string& name) { return g.FindLayer(name); }

inline const ChannelGroup& OutGroup(const Graph& g, const std::string& name) {
  const Layer& l = Get(g, name);
  EXPECT_GE(l.out_group, 0) << name;
  static const ChannelGroup kMissing;
  return l.out_group >= 0 ? g.groups[l.out_group] : kMissing;
}
inline const ChannelGroup& InGroup(const Graph& g, const std::string& name) {
  const Layer& l = Get(g, name);
  EXPECT_GE(l.in_group, 0) << name;
  static const ChannelGroup kMissing;
  return l.in_group >= 0 ? g.groups[l.in_group] : kMissing;
}

inline std::vector<std::string> Names(const Graph& g) {
  std::vector<std::string> out;
  for (const Layer& l : g.layers) out.push_back(l.name);
  return out;
}

// Channel tensors attached to the node, keyed by input position.
inline std::map<int, ChannelTensor> TensorsOfNode(const Graph& g, int node) {
  std::map<int, ChannelTensor> out;
  for (const ChannelTensor& t : g.channel_tensors) {
    if (t.node == node) out[t.input] = t;
  }
  return out;
}

// Indices of the nodes of this kind, in graph order.
inline std::vector<int> NodesOfKind(const Graph& g, const std::string& kind) {
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].kind == kind) out.push_back(static_cast<int>(i));
  }
  return out;
}

inline void ExpectSegment(const ChannelSegment& s, int group, int64_t offset, int64_t channels,
                          int64_t stride) {
  EXPECT_EQ(s.group, group);
  EXPECT_EQ(s.offset, offset);
  EXPECT_EQ(s.channels, channels);
  EXPECT_EQ(s.stride, stride);
}

}  // namespace acs::importer_test
