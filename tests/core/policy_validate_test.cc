// Policies against a graph: resolving defaults, uniform policies, validation errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/core/policy_test_util.h"

namespace acs {
namespace {

using ::testing::HasSubstr;
using namespace policy_test;  // NOLINT: the shared test helpers

TEST(ResolvePolicy, DefaultFillsUnlistedCompressibleLayers) {
  const Graph g = TestGraph();
  Policy p;
  p.layers["conv1"] = Block(4, 0.5);
  p.default_config = Config(Pattern::kUnstructured, 0.3);
  Policy r = ResolvePolicy(p, g);
  EXPECT_FALSE(r.default_config.has_value());
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_EQ(r.layers["conv1"], Block(4, 0.5));  // listed entries win
  EXPECT_EQ(r.layers["conv2"], *p.default_config);
  EXPECT_EQ(r.layers["fc"], *p.default_config);
  EXPECT_EQ(r.layers.count("odd"), 0u);  // not compressible

  Policy plain;
  plain.layers["conv1"] = Block(4, 0.5);
  EXPECT_EQ(ResolvePolicy(plain, g).layers, plain.layers);
}

TEST(UniformPolicy, SkipsListedAndNonCompressibleLayers) {
  const Graph g = TestGraph();
  const LayerConfig c = Config(Pattern::kUnstructured, 0.5);
  Policy p = UniformPolicy(g, c, {"fc", "not_a_layer"});
  ASSERT_EQ(p.layers.size(), 2u);
  EXPECT_EQ(p.layers["conv1"], c);
  EXPECT_EQ(p.layers["conv2"], c);
  EXPECT_TRUE(ValidatePolicy(p, g).ok());
}

TEST(UniformPolicy, ChannelPatternSkipsUnprunableGroups) {
  const Graph g = TestGraph();
  Policy p = UniformPolicy(g, Config(Pattern::kChannel, 0.25));
  ASSERT_EQ(p.layers.size(), 1u);  // conv2's group is not prunable, fc has none
  EXPECT_EQ(p.layers.count("conv1"), 1u);
  EXPECT_TRUE(ValidatePolicy(p, g).ok());
}

// --- validation ----------------------------------------------------------------------------

Status ValidateOne(const std::string& layer, const LayerConfig& c) {
  Policy p;
  p.layers[layer] = c;
  return ValidatePolicy(p, TestGraph());
}

TEST(ValidatePolicy, AcceptsGoodPolicies) {
  const Graph g = TestGraph();
  EXPECT_TRUE(ValidatePolicy(Policy(), g).ok());
  Policy p;
  p.layers["conv1"] = Config(Pattern::kChannel, 0.5, Precision::kInt8);
  p.layers["conv2"] = Block(16, 0.9);
  p.layers["fc"] = NM(64, 64);
  EXPECT_TRUE(ValidatePolicy(p, g).ok()) << ValidatePolicy(p, g).ToString();
  EXPECT_TRUE(ValidateOne("fc", Block(1, 0.5)).ok());  // block 1 is allowed
  EXPECT_TRUE(ValidateOne("fc", Config(Pattern::kUnstructured, 0.0)).ok());
  EXPECT_TRUE(ValidateOne("fc", NM(1, 1)).ok());
  LayerConfig nm = NM(2, 4);
  nm.sparsity = 5.0;  // ignored for N:M
  EXPECT_TRUE(ValidateOne("fc", nm).ok());
}

TEST(ValidatePolicy, UnknownLayer) {
  Status s = ValidateOne("conv3", Config(Pattern::kUnstructured, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("policy names layer 'conv3', which the model does not have"));
  EXPECT_THAT(s.message(), HasSubstr("did you mean 'conv1' or 'conv2'?"));

  s = ValidateOne("classifier.weight", Config(Pattern::kUnstructured, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("did you mean")));
}

TEST(ValidatePolicy, NonCompressibleLayer) {
  Status s = ValidateOne("odd", Config(Pattern::kUnstructured, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'odd'"));
  EXPECT_THAT(s.message(), HasSubstr("grouped conv with 3 groups is not supported"));
}

TEST(ValidatePolicy, SparsityOutOfRange) {
  for (double sparsity : {-0.1, 1.0, 1.5}) {
    Status s = ValidateOne("conv1", Config(Pattern::kUnstructured, sparsity));
    EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << sparsity;
    EXPECT_THAT(s.message(), HasSubstr("'conv1'"));
  }
  Status s = ValidateOne("conv2", Block(4, 1.0));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("sparsity 1.0 on layer 'conv2' is outside [0, 1)"));
}

TEST(ValidatePolicy, DenseWithSparsity) {
  Status s = ValidateOne("fc", Config(Pattern::kDense, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'fc'"));
  EXPECT_THAT(s.message(), HasSubstr("unstructured"));  // suggests a pattern
}

TEST(ValidatePolicy, BlockSize) {
  Status s = ValidateOne("conv1", Block(8, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "block size 8 does not divide 12 output channels of layer 'conv1'");

  s = ValidateOne("conv1", Block(0, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("block size 0"));
  EXPECT_THAT(s.message(), HasSubstr("'conv1'"));

  EXPECT_TRUE(ValidateOne("conv1", Block(6, 0.5)).ok());
  // The block field does not matter for other patterns.
  LayerConfig u = Config(Pattern::kUnstructured, 0.5);
  u.block = 0;
  EXPECT_TRUE(ValidateOne("conv1", u).ok());
}

TEST(ValidatePolicy, NMRange) {
  Status s = ValidateOne("fc", NM(5, 4));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "N:M needs 1 <= N <= M <= 64, got 5:4 on layer 'fc'");
  EXPECT_EQ(ValidateOne("fc", NM(0, 4)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateOne("fc", NM(2, 128)).code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(ValidateOne("fc", NM(2, 128)).message(), HasSubstr("2:128"));
}

TEST(ValidatePolicy, ChannelPatternNeedsPrunableGroup) {
  Status s = ValidateOne("conv2", Config(Pattern::kChannel, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("'conv2'"));
  EXPECT_THAT(s.message(), HasSubstr("its channels feed a concat with the model input"));

  s = ValidateOne("fc", Config(Pattern::kChannel, 0.5));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("'fc'"));
  EXPECT_THAT(s.message(), HasSubstr("no channel group"));
}

TEST(ValidatePolicy, DefaultIsResolvedFirst) {
  const Graph g = TestGraph();
  Policy p;
  p.default_config = Block(4, 0.5);  // fc has 10 output channels
  Status s = ValidatePolicy(p, g);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "block size 4 does not divide 10 output channels of layer 'fc'");

  p.layers["fc"] = Config(Pattern::kUnstructured, 0.5);  // override the default there
  EXPECT_TRUE(ValidatePolicy(p, g).ok()) << ValidatePolicy(p, g).ToString();

  // The default is not applied to non-compressible layers.
  Policy q;
  q.default_config = Config(Pattern::kUnstructured, 0.5);
  EXPECT_TRUE(ValidatePolicy(q, g).ok());

  // A bad default is reported even if every layer overrides it.
  Policy r = UniformPolicy(g, Config(Pattern::kUnstructured, 0.5));
  r.default_config = NM(3, 2);
  s = ValidatePolicy(r, g);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("default"));
}

}  // namespace
}  // namespace acs
