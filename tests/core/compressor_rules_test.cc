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
