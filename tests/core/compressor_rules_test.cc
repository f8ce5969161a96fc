// Compressor rules beside the random-policy property test: channel counts under block
// patterns, and saving.
#include <gtest/gtest.h>

#include "core/compressor.h"
#include "core/importer.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

using test_models::BuildTestModel;
using test_models::TestInputShape;

// A layer with a 1xN block pattern keeps a multiple of N output channels.
TEST(CompressorBlockTest, KeptChannelsAreAMultipleOfTheBlockSize) {
  auto model = ImportTorchScript(BuildTestModel("residual", 3), {TestInputShape()});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const Graph& g = (*model)->graph;
  Policy policy;
  LayerConfig channel;
  channel.pattern = Pattern::kChannel;
  channel.sparsity = 0.6;
  policy.default_config = channel;
  for (const Layer& l : g.layers) {
    if (l.compressible && l.out_group >= 0 && g.groups[l.out_group].prunable && l.out_channels % 4 == 0) {
      LayerConfig block;
      block.pattern = Pattern::kBlock;
      block.block = 4;
      block.sparsity = 0.5;
      policy.layers[l.name] = block;
      break;
    }
  }
  ASSERT_FALSE(policy.layers.empty());
  auto compressed = Compress(**model, policy);
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  for (const LayerResult& r : compressed->layers) {
    if (r.config.pattern == Pattern::kBlock) {
      EXPECT_EQ(r.out_channels_after % 4, 0) << r.name;
      EXPECT_LT(r.out_channels_after, r.out_channels_before) << r.name;
    }
  }
}

// Kept counts the hardware would pad are not kept: multiples of 16 (else 8) where the
// layer has at least two of them and keeps at least one, then 1xN block multiples.
TEST(ChannelsKeptTest, CountsAreAlignedWhereTheLayerHasTwoAlignmentsOfChannels) {
  EXPECT_EQ(ChannelsKept(64, 0.15), 48);   // 54.4 -> nearest multiple of 16
  EXPECT_EQ(ChannelsKept(64, 0.1), 64);    // 57.6 -> 64: nothing removed
  EXPECT_EQ(ChannelsKept(64, 0.85), 10);   // fewer than one alignment: as rounded
  EXPECT_EQ(ChannelsKept(64, 0.99), 1);
  EXPECT_EQ(ChannelsKept(512, 0.3), 352);  // 358.4
  EXPECT_EQ(ChannelsKept(24, 0.5), 16);    // 12 -> multiple of 8 (24 is none of 16)
  EXPECT_EQ(ChannelsKept(16, 0.3), 8);     // 11.2 -> multiple of 8
  EXPECT_EQ(ChannelsKept(12, 0.5), 6);     // too few channels to align
  EXPECT_EQ(ChannelsKept(10, 0.99), 1);
  EXPECT_EQ(ChannelsKept(64, 0.3, 32), 64);  // 48 -> up to a multiple of the block size
  EXPECT_EQ(ChannelsKept(20, 0.5, 4), 12);   // 10 -> 12
  EXPECT_EQ(ChannelsKept(20, 0.5, 3), 10);   // 3 does not divide 20
}

TEST(CompressorSaveTest, SaveReportsAnUnwritablePath) {
  auto model = ImportTorchScript(BuildTestModel("plain"), {TestInputShape()});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  StatusOr<CompressedModel> c = Compress(**model, Policy());
  ASSERT_TRUE(c.ok());
  Status s = c->Save(test_models::TempPath("_no_such_dir") + "/model.pt");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.pt"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace acs
