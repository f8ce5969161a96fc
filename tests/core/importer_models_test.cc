// The importer on torchvision models, shared weights, and inputs it refuses; ParseShape.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/core/importer_test_util.h"

namespace acs {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using test_models::BuildTestModel;
using test_models::TestInputShape;
using namespace importer_test;  // NOLINT: the shared test helpers

TEST(ImporterTest, TorchvisionResNet18Scripted) {
  std::string path = test_models::ExportTorchvisionModel("resnet18", /*trace=*/false);
  if (path.empty()) GTEST_SKIP() << "/usr/bin/python3 with torchvision is not available";
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(path, {{1, 3, 64, 64}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const Graph& g = (*m)->graph;
  ASSERT_EQ(g.layers.size(), 21u);  // 20 convs and fc
  for (const Layer& l : g.layers) EXPECT_TRUE(l.compressible) << l.name << ": " << l.why_not;
  EXPECT_THAT(OutGroup(g, "conv1").producers,
              UnorderedElementsAre(Index(g, "conv1"), Index(g, "layer1.0.conv2"), Index(g, "layer1.1.conv2")));
  EXPECT_TRUE(OutGroup(g, "conv1").prunable) << OutGroup(g, "conv1").why_not;
  EXPECT_THAT(OutGroup(g, "layer2.0.conv2").producers,
              UnorderedElementsAre(Index(g, "layer2.0.conv2"), Index(g, "layer2.0.downsample.0"),
                                   Index(g, "layer2.1.conv2")));
  EXPECT_TRUE(OutGroup(g, "layer1.0.conv1").prunable);
  EXPECT_EQ(Get(g, "conv1").flops, 2 * 64 * (32 * 32) * (3 * 7 * 7));
  ASSERT_EQ(Get(g, "fc").input_segments.size(), 1u);
  ExpectSegment(Get(g, "fc").input_segments[0], Get(g, "layer4.1.conv2").out_group, 0, 512, 1);
}

TEST(ImporterTest, TorchvisionMobileNetV3Traced) {
  std::string path = test_models::ExportTorchvisionModel("mobilenet_v3_small", /*trace=*/true);
  if (path.empty()) GTEST_SKIP() << "/usr/bin/python3 with torchvision is not available";
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(path, {{1, 3, 64, 64}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const Graph& g = (*m)->graph;
  for (const Layer& l : g.layers) EXPECT_TRUE(l.compressible) << l.name << ": " << l.why_not;
  // First block: depthwise conv carrying the stem's channels, then SE scaling them.
  EXPECT_TRUE(Get(g, "features.1.block.0.0").depthwise());
  const ChannelGroup& stem = OutGroup(g, "features.0.0");
  EXPECT_TRUE(stem.prunable) << stem.why_not;
  EXPECT_THAT(stem.producers, UnorderedElementsAre(Index(g, "features.0.0"), Index(g, "features.1.block.1.fc2")));
  EXPECT_THAT(stem.carriers, ElementsAre(Index(g, "features.1.block.0.0")));
  EXPECT_THAT(stem.consumers,
              UnorderedElementsAre(Index(g, "features.1.block.1.fc1"), Index(g, "features.1.block.2.0")));
  EXPECT_FALSE(OutGroup(g, "classifier.3").prunable);
}

TEST(ImporterTest, SharedWeightIsCompressibleOnce) {
  auto m = Import("shared_weights");
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph;
  ASSERT_EQ(g.layers.size(), 4u);
  EXPECT_TRUE(g.layers[1].compressible);
  EXPECT_FALSE(g.layers[2].compressible);
  EXPECT_THAT(g.layers[2].why_not, HasSubstr("shares its weight"));
  // The first use's output feeds the second use, whose input channels cannot change.
  ASSERT_GE(g.layers[1].out_group, 0);
  EXPECT_FALSE(g.groups[g.layers[1].out_group].prunable);
}

TEST(ImporterTest, LayerNamesAreUniqueWhenAWeightIsShared) {
  // Policies, results and latency tables are keyed by layer name.
  auto m = Import("shared_weights");
  ASSERT_NE(m, nullptr);
  std::vector<std::string> names = Names(m->graph);
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size()) << ::testing::PrintToString(names);
}

TEST(ImporterTest, TwoInputModelIsUnimplemented) {
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(BuildTestModel("two_inputs"), {TestInputShape()});
  EXPECT_EQ(m.status().code(), StatusCode::kUnimplemented) << m.status().ToString();
}

TEST(ImporterTest, MissingFileIsNotFound) {
  StatusOr<std::shared_ptr<ImportedModel>> m =
      ImportTorchScript(test_models::TempPath("_missing.pt"), {TestInputShape()});
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

TEST(ImporterTest, GarbageFileIsDataLoss) {
  std::string path = test_models::TempPath("_garbage.pt");
  std::ofstream(path, std::ios::binary) << std::string("\x13\x37not a zip archive\x00\xff", 22);
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(path, {TestInputShape()});
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << m.status().ToString();
  EXPECT_THAT(m.status().message(), HasSubstr(path));
}

TEST(ImporterTest, WrongInputShapeIsInvalidArgument) {
  StatusOr<std::shared_ptr<ImportedModel>> m = ImportTorchScript(BuildTestModel("plain"), {{1, 5, 16, 16}});
  ASSERT_EQ(m.status().code(), StatusCode::kInvalidArgument) << m.status().ToString();
  EXPECT_THAT(m.status().message(), HasSubstr("1x5x16x16"));
  EXPECT_THAT(m.status().message(), HasSubstr("input shape"));
  // The flatten into fc1 needs 16x16 inputs.
  m = ImportTorchScript(BuildTestModel("plain"), {{1, 3, 32, 32}});
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  m = ImportTorchScript(BuildTestModel("plain"), {});
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
}

TEST(ImporterTest, ParseShapeAcceptsPositiveDimensions) {
  EXPECT_EQ(*ParseShape("1x3x32x32"), (Shape{1, 3, 32, 32}));
  EXPECT_EQ(*ParseShape("1,3,32,32"), (Shape{1, 3, 32, 32}));
  EXPECT_EQ(*ParseShape("8"), (Shape{8}));
  EXPECT_EQ(FormatShape({1, 3, 32, 32}), "1x3x32x32");
  EXPECT_EQ(*ParseShape(FormatShape({2, 3, 224, 224})), (Shape{2, 3, 224, 224}));
}

TEST(ImporterTest, ParseShapeRejectsMalformedText) {
  for (const char* bad : {"", "x", "1x0x32x32", "1x-3x32x32", "1x3xax32", "1xx3", "1.5x3", "1x3x32x32 ",
                          "1x3,32x32", "99999999999999999999x3"}) {
    StatusOr<Shape> s = ParseShape(bad);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST(ImporterTest, ParseShapeRejectsTrailingSeparator) {
  // Every dimension must be a positive integer, so an empty last dimension is an error.
  for (const char* bad : {"1x3x32x", "1,3,32,"}) {
    StatusOr<Shape> s = ParseShape(bad);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace acs
