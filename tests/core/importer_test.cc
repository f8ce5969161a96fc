#include "core/importer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "tests/core/test_models.h"

#include "tests/core/importer_test_util.h"

namespace acs {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using test_models::BuildTestModel;
using test_models::TestInputShape;

using namespace importer_test;  // NOLINT: the shared test helpers

TEST(ImporterTest, LayerNamesAreParameterPaths) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"plain", {"features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"}},
      {"residual",
       {"conv1", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2", "layer2.downsample.0", "fc"}},
      {"concat", {"branch_a", "branch_b", "dw", "fuse", "grow", "transition", "fc"}},
      {"depthwise", {"stem", "block.expand", "block.dw", "block.project", "head", "fc"}},
      {"grouped", {"conv1", "gconv", "conv3", "fc"}},
      {"se", {"conv1", "se.reduce", "se.expand", "conv2", "fc"}},
      {"channel_constants", {"conv1", "conv2", "fc"}},
      {"unknown_ops", {"conv1", "conv2", "conv3", "fc"}},
  };
  ASSERT_EQ(expected.size(), test_models::TestModelNames().size());
  for (const auto& [model, names] : expected) {
    SCOPED_TRACE(model);
    auto m = Import(model);
    ASSERT_NE(m, nullptr);
    EXPECT_THAT(Names(m->graph), ElementsAreArray(names));
    for (const Layer& l : m->graph.layers) {
      EXPECT_TRUE(l.compressible) << l.name << ": " << l.why_not;
      EXPECT_EQ(l.weight_path, l.name + ".weight");
    }
  }
}

TEST(ImporterTest, PlainShapesFlopsAndParams) {
  auto m = Import("plain");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  const Layer& conv1 = Get(g, "features.conv1");
  EXPECT_EQ(conv1.type, LayerType::kConv2d);
  EXPECT_EQ(conv1.in_channels, 3);
  EXPECT_EQ(conv1.out_channels, 8);
  EXPECT_EQ(conv1.kernel, (std::array<int64_t, 2>{3, 3}));
  EXPECT_EQ(conv1.stride, (std::array<int64_t, 2>{1, 1}));
  EXPECT_EQ(conv1.padding, (std::array<int64_t, 2>{1, 1}));
  EXPECT_EQ(conv1.groups, 1);
  EXPECT_EQ(conv1.input_shape, (Shape{1, 3, 16, 16}));
  EXPECT_EQ(conv1.output_shape, (Shape{1, 8, 16, 16}));
  EXPECT_TRUE(conv1.has_bias);
  EXPECT_EQ(conv1.bias_path, "features.conv1.bias");
  EXPECT_EQ(conv1.flops, 2 * 8 * (16 * 16) * (3 * 3 * 3));  // 2 x out x HW x (in x k x k)
  EXPECT_EQ(conv1.params, 8 * 3 * 3 * 3 + 8);
  EXPECT_EQ(conv1.reduction_size(), 27);

  const Layer& conv2 = Get(g, "features.conv2");
  EXPECT_EQ(conv2.input_shape, (Shape{1, 8, 8, 8}));
  EXPECT_EQ(conv2.output_shape, (Shape{1, 16, 8, 8}));
  EXPECT_FALSE(conv2.has_bias);
  EXPECT_EQ(conv2.flops, 2 * 16 * 64 * (8 * 9));
  EXPECT_EQ(conv2.params, 16 * 8 * 9);

  const Layer& fc1 = Get(g, "classifier.fc1");
  EXPECT_EQ(fc1.type, LayerType::kLinear);
  EXPECT_EQ(fc1.in_channels, 256);
  EXPECT_EQ(fc1.out_channels, 32);
  EXPECT_EQ(fc1.input_shape, (Shape{1, 256}));
  EXPECT_EQ(fc1.output_shape, (Shape{1, 32}));
  EXPECT_EQ(fc1.flops, 2 * 256 * 32);
  EXPECT_EQ(fc1.params, 256 * 32 + 32);
  const Layer& fc2 = Get(g, "classifier.fc2");
  EXPECT_EQ(g.TotalFlops(), conv1.flops + conv2.flops + fc1.flops + 2 * 32 * 10);
  EXPECT_EQ(g.TotalParams(), conv1.params + conv2.params + fc1.params + fc2.params);
}

TEST(ImporterTest, BatchSizeOfInputShapeDoesNotChangePerSampleFlops) {
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(BuildTestModel("plain"), {{4, 3, 16, 16}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(Get((*m)->graph, "features.conv1").flops, 2 * 8 * 256 * 27);
  EXPECT_EQ(Get((*m)->graph, "classifier.fc1").flops, 2 * 256 * 32);
}

TEST(ImporterTest, PlainGroupsFlattenAndBatchNorm) {
  auto m = Import("plain");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  const Layer& conv1 = Get(g, "features.conv1");
  const Layer& conv2 = Get(g, "features.conv2");
  const Layer& fc1 = Get(g, "classifier.fc1");
  // The model input cannot be pruned.
  EXPECT_FALSE(InGroup(g, "features.conv1").prunable);
  EXPECT_THAT(InGroup(g, "features.conv1").why_not, HasSubstr("model input"));
  // conv1 -> conv2.
  EXPECT_TRUE(OutGroup(g, "features.conv1").prunable);
  EXPECT_THAT(OutGroup(g, "features.conv1").producers, ElementsAre(Index(g, "features.conv1")));
  EXPECT_THAT(OutGroup(g, "features.conv1").consumers, ElementsAre(Index(g, "features.conv2")));
  EXPECT_EQ(conv2.in_group, conv1.out_group);
  // Flatten of 16 x 4 x 4 into fc1: each channel spans 16 consecutive features.
  ASSERT_EQ(fc1.input_segments.size(), 1u);
  ExpectSegment(fc1.input_segments[0], conv2.out_group, 0, 16, 16);
  EXPECT_TRUE(OutGroup(g, "features.conv2").prunable);
  EXPECT_THAT(OutGroup(g, "features.conv2").consumers, ElementsAre(Index(g, "classifier.fc1")));
  // fc1 -> fc2 is prunable; the classifier output is not.
  EXPECT_TRUE(OutGroup(g, "classifier.fc1").prunable);
  EXPECT_EQ(Get(g, "classifier.fc2").in_group, fc1.out_group);
  EXPECT_FALSE(OutGroup(g, "classifier.fc2").prunable);
  EXPECT_THAT(OutGroup(g, "classifier.fc2").why_not, HasSubstr("model output"));

  // Both batch norms' weight, bias, mean and var are channel tensors of their conv's group.
  std::vector<int> bns = NodesOfKind(g, "aten::batch_norm");
  ASSERT_EQ(bns.size(), 2u);
  const int groups[] = {conv1.out_group, conv2.out_group};
  const int64_t channels[] = {8, 16};
  for (int k = 0; k < 2; ++k) {
    std::map<int, ChannelTensor> tensors = TensorsOfNode(g, bns[k]);
    ASSERT_EQ(tensors.size(), 4u) << "batch norm " << k;
    for (int input = 1; input <= 4; ++input) {
      const ChannelTensor& t = tensors[input];
      EXPECT_EQ(t.axis, 0);
      ASSERT_EQ(t.segments.size(), 1u);
      ExpectSegment(t.segments[0], groups[k], 0, channels[k], 1);
    }
  }
}

TEST(ImporterTest, ResidualAddJoinsProducersIntoOneGroup) {
  auto m = Import("residual");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  EXPECT_FALSE(NodesOfKind(g, "aten::add_").empty());  // the in-place += survives freezing
  // Identity block: the stem conv (block input producer) and layer1.conv2 are one group.
  const ChannelGroup& a = OutGroup(g, "conv1");
  EXPECT_EQ(Get(g, "layer1.conv2").out_group, Get(g, "conv1").out_group);
  EXPECT_TRUE(a.prunable) << a.why_not;
  EXPECT_EQ(a.channels, 8);
  EXPECT_THAT(a.producers, UnorderedElementsAre(Index(g, "conv1"), Index(g, "layer1.conv2")));
  EXPECT_THAT(a.consumers, UnorderedElementsAre(Index(g, "layer1.conv1"), Index(g, "layer2.conv1"),
                                                Index(g, "layer2.downsample.0")));
  // Downsample block: layer2.conv2 and the 1x1 downsample conv are one group.
  const ChannelGroup& b = OutGroup(g, "layer2.conv2");
  EXPECT_EQ(Get(g, "layer2.downsample.0").out_group, Get(g, "layer2.conv2").out_group);
  EXPECT_TRUE(b.prunable) << b.why_not;
  EXPECT_THAT(b.producers, UnorderedElementsAre(Index(g, "layer2.conv2"), Index(g, "layer2.downsample.0")));
  EXPECT_THAT(b.consumers, ElementsAre(Index(g, "fc")));
  // The inner convs have their own groups.
  EXPECT_THAT(OutGroup(g, "layer1.conv1").producers, ElementsAre(Index(g, "layer1.conv1")));
  EXPECT_THAT(OutGroup(g, "layer1.conv1").consumers, ElementsAre(Index(g, "layer1.conv2")));
  const Layer& down = Get(g, "layer2.downsample.0");
  EXPECT_EQ(down.stride, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(down.output_shape, (Shape{1, 16, 8, 8}));
  EXPECT_EQ(down.flops, 2 * 16 * 64 * 8);
  // Global pooling then flatten: stride 1.
  ASSERT_EQ(Get(g, "fc").input_segments.size(), 1u);
  ExpectSegment(Get(g, "fc").input_segments[0], Get(g, "layer2.conv2").out_group, 0, 16, 1);
  EXPECT_FALSE(OutGroup(g, "fc").prunable);
}

TEST(ImporterTest, ConcatGivesConsumersOffsetSegments) {
  auto m = Import("concat");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  int ga = Get(g, "branch_a").out_group, gb = Get(g, "branch_b").out_group;
  ASSERT_NE(ga, gb);
  EXPECT_TRUE(g.groups[ga].prunable);
  EXPECT_TRUE(g.groups[gb].prunable);
  const Layer& fuse = Get(g, "fuse");
  ASSERT_EQ(fuse.input_segments.size(), 2u);
  ExpectSegment(fuse.input_segments[0], ga, 0, 4, 1);
  ExpectSegment(fuse.input_segments[1], gb, 4, 6, 1);
  EXPECT_EQ(fuse.in_group, ga);
  EXPECT_THAT(g.groups[ga].consumers, ElementsAre(Index(g, "fuse")));
  EXPECT_THAT(g.groups[gb].consumers, ElementsAre(Index(g, "fuse")));
  // The depthwise conv between the concat and fuse carries both groups.
  const Layer& dw = Get(g, "dw");
  EXPECT_TRUE(dw.depthwise());
  ASSERT_EQ(dw.input_segments.size(), 2u);
  ExpectSegment(dw.input_segments[1], gb, 4, 6, 1);
  EXPECT_THAT(g.groups[ga].carriers, ElementsAre(Index(g, "dw")));
  EXPECT_THAT(g.groups[gb].carriers, ElementsAre(Index(g, "dw")));
  // The batch norm on the concatenation is sliced by both groups.
  std::vector<int> bns = NodesOfKind(g, "aten::batch_norm");
  ASSERT_EQ(bns.size(), 1u);
  std::map<int, ChannelTensor> tensors = TensorsOfNode(g, bns[0]);
  ASSERT_EQ(tensors.size(), 4u);
  ASSERT_EQ(tensors[3].segments.size(), 2u);
  ExpectSegment(tensors[3].segments[0], ga, 0, 4, 1);
  ExpectSegment(tensors[3].segments[1], gb, 4, 6, 1);
  // DenseNet-like: the transition sees fuse's 8 channels then grow's 4.
  int gy = Get(g, "fuse").out_group, gz = Get(g, "grow").out_group;
  const Layer& transition = Get(g, "transition");
  ASSERT_EQ(transition.input_segments.size(), 2u);
  ExpectSegment(transition.input_segments[0], gy, 0, 8, 1);
  ExpectSegment(transition.input_segments[1], gz, 8, 4, 1);
  EXPECT_EQ(transition.in_channels, 12);
  EXPECT_THAT(g.groups[gy].consumers, UnorderedElementsAre(Index(g, "grow"), Index(g, "transition")));
  EXPECT_TRUE(g.groups[gy].prunable);
  EXPECT_TRUE(g.groups[gz].prunable);
}

TEST(ImporterTest, DepthwiseConvCarriesItsInputGroup) {
  auto m = Import("depthwise");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  const Layer& dw = Get(g, "block.dw");
  EXPECT_TRUE(dw.depthwise());
  EXPECT_EQ(dw.groups, 16);
  EXPECT_EQ(dw.flops, 2 * 16 * 256 * 9);
  const Layer& expand = Get(g, "block.expand");
  EXPECT_EQ(dw.in_group, expand.out_group);
  EXPECT_EQ(dw.out_group, expand.out_group);
  EXPECT_EQ(Get(g, "block.project").in_group, expand.out_group);
  const ChannelGroup& e = OutGroup(g, "block.expand");
  EXPECT_TRUE(e.prunable) << e.why_not;
  EXPECT_THAT(e.producers, ElementsAre(Index(g, "block.expand")));
  EXPECT_THAT(e.carriers, ElementsAre(Index(g, "block.dw")));
  EXPECT_THAT(e.consumers, ElementsAre(Index(g, "block.project")));
  for (const ChannelGroup& group : g.groups) {
    EXPECT_THAT(group.producers, ::testing::Not(::testing::Contains(Index(g, "block.dw"))));
    EXPECT_THAT(group.consumers, ::testing::Not(::testing::Contains(Index(g, "block.dw"))));
  }
  // Inverted residual: the stem and the projection are one group.
  EXPECT_THAT(OutGroup(g, "stem").producers, UnorderedElementsAre(Index(g, "stem"), Index(g, "block.project")));
  EXPECT_THAT(OutGroup(g, "stem").consumers, UnorderedElementsAre(Index(g, "block.expand"), Index(g, "head")));
  EXPECT_TRUE(OutGroup(g, "stem").prunable);
  // The batch norms after expand and after the depthwise conv are both sliced by expand's group.
  int bn_in_expand_group = 0;
  for (const ChannelTensor& t : g.channel_tensors) {
    if (t.segments.size() == 1 && t.segments[0].group == expand.out_group) ++bn_in_expand_group;
  }
  EXPECT_EQ(bn_in_expand_group, 8);
}

TEST(ImporterTest, GroupedConvLocksItsChannels) {
  auto m = Import("grouped");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  const Layer& gconv = Get(g, "gconv");
  EXPECT_TRUE(gconv.compressible);
  EXPECT_FALSE(gconv.depthwise());
  EXPECT_EQ(gconv.groups, 2);
  EXPECT_EQ(gconv.in_channels, 8);
  EXPECT_EQ(gconv.reduction_size(), 4 * 9);
  EXPECT_EQ(gconv.flops, 2 * 8 * 256 * 4 * 9);
  // Its input channels (conv1's output) are not prunable.
  const ChannelGroup& in = OutGroup(g, "conv1");
  EXPECT_FALSE(in.prunable);
  EXPECT_THAT(in.why_not, HasSubstr("grouped conv"));
  // Its output channels (what conv3 reads) are not prunable.
  const ChannelGroup& out = InGroup(g, "conv3");
  EXPECT_FALSE(out.prunable);
  EXPECT_THAT(out.why_not, HasSubstr("grouped conv"));
  // Whatever groups gconv itself reports are not prunable either.
  if (gconv.in_group >= 0) {
    EXPECT_FALSE(g.groups[gconv.in_group].prunable);
  }
  if (gconv.out_group >= 0) {
    EXPECT_FALSE(g.groups[gconv.out_group].prunable);
  }
  EXPECT_TRUE(OutGroup(g, "conv3").prunable);
}

TEST(ImporterTest, SqueezeExcitationJoinsExpandWithMainBranch) {
  auto m = Import("se");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  EXPECT_EQ(Get(g, "se.expand").out_group, Get(g, "conv1").out_group);
  const ChannelGroup& main = OutGroup(g, "conv1");
  EXPECT_TRUE(main.prunable) << main.why_not;
  EXPECT_THAT(main.producers, UnorderedElementsAre(Index(g, "conv1"), Index(g, "se.expand")));
  EXPECT_THAT(main.consumers, UnorderedElementsAre(Index(g, "se.reduce"), Index(g, "conv2")));
  EXPECT_EQ(Get(g, "se.reduce").input_shape, (Shape{1, 16, 1, 1}));
  const Layer& conv2 = Get(g, "conv2");  // padding "same" with dilation 2
  EXPECT_EQ(conv2.dilation, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(conv2.padding, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(conv2.output_shape, (Shape{1, 8, 16, 16}));
  EXPECT_EQ(conv2.flops, 2 * 8 * 256 * 16 * 9);
  EXPECT_THAT(OutGroup(g, "se.reduce").consumers, ElementsAre(Index(g, "se.expand")));
  EXPECT_TRUE(OutGroup(g, "se.reduce").prunable);
}

TEST(ImporterTest, PerChannelConstantsAreChannelTensors) {
  auto m = Import("channel_constants");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  const ChannelGroup& group = OutGroup(g, "conv1");
  EXPECT_TRUE(group.prunable) << group.why_not;
  EXPECT_THAT(group.consumers, ElementsAre(Index(g, "conv2")));
  std::vector<int> mul = NodesOfKind(g, "aten::mul"), add = NodesOfKind(g, "aten::add");
  ASSERT_EQ(mul.size(), 1u);
  ASSERT_EQ(add.size(), 1u);
  // scale [1, 8, 1, 1] is indexed on its axis 1, shift [8, 1, 1] on its axis 0.
  std::map<int, ChannelTensor> scale = TensorsOfNode(g, mul[0]), shift = TensorsOfNode(g, add[0]);
  ASSERT_EQ(scale.count(1), 1u);
  EXPECT_EQ(scale[1].axis, 1);
  ASSERT_EQ(scale[1].segments.size(), 1u);
  ExpectSegment(scale[1].segments[0], Get(g, "conv1").out_group, 0, 8, 1);
  ASSERT_EQ(shift.count(1), 1u);
  EXPECT_EQ(shift[1].axis, 0);
  ASSERT_EQ(shift[1].segments.size(), 1u);
  ExpectSegment(shift[1].segments[0], Get(g, "conv1").out_group, 0, 8, 1);
}

TEST(ImporterTest, UnknownOpsImportAndLockTheirChannels) {
  auto m = Import("unknown_ops");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  EXPECT_FALSE(NodesOfKind(g, "aten::roll").empty());
  // conv1 feeds a reshape to 5-d (channel shuffle).
  EXPECT_FALSE(OutGroup(g, "conv1").prunable);
  EXPECT_THAT(OutGroup(g, "conv1").why_not, HasSubstr("aten::reshape"));
  // conv2 reads the shuffled channels and feeds torch.roll.
  EXPECT_FALSE(InGroup(g, "conv2").prunable);
  EXPECT_FALSE(OutGroup(g, "conv2").prunable);
  EXPECT_THAT(OutGroup(g, "conv2").why_not, HasSubstr("aten::roll"));
  EXPECT_FALSE(InGroup(g, "conv3").prunable);
  EXPECT_THAT(InGroup(g, "conv3").why_not, HasSubstr("aten::roll"));
  EXPECT_TRUE(OutGroup(g, "conv3").prunable);
  for (const Layer& l : g.layers) EXPECT_TRUE(l.compressible) << l.name;
}

TEST(ImporterTest, ModelInputAndClassifierOutputAreNeverPrunable) {
  for (const std::string& name : test_models::TestModelNames()) {
    SCOPED_TRACE(name);
    auto m = Import(name);
    ASSERT_NE(m, nullptr);
    const Graph& g = m->graph;
    const Layer& first = g.layers.front();
    const Layer& last = g.layers.back();
    ASSERT_GE(first.in_group, 0);
    EXPECT_FALSE(g.groups[first.in_group].prunable);
    EXPECT_FALSE(g.groups[first.in_group].why_not.empty());
    ASSERT_GE(last.out_group, 0);
    EXPECT_FALSE(g.groups[last.out_group].prunable);
    EXPECT_FALSE(g.groups[last.out_group].why_not.empty());
    for (const ChannelGroup& group : g.groups) {
      EXPECT_EQ(group.prunable, group.why_not.empty()) << group.why_not;
    }
  }
}

}  // namespace
}  // namespace acs
