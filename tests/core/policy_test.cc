#include "core/policy.h"

#include <cstdio>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/core/policy_test_util.h"

namespace acs {
namespace {

using ::testing::HasSubstr;

using namespace policy_test;  // NOLINT: the shared test helpers

// --- names -------------------------------------------------------------------------------

TEST(PolicyNames, PatternsAndPrecisionsRoundTrip) {
  for (Pattern p : {Pattern::kDense, Pattern::kUnstructured, Pattern::kBlock, Pattern::kNM,
                    Pattern::kChannel}) {
    StatusOr<Pattern> back = ParsePattern(PatternName(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  for (Precision p : {Precision::kFp32, Precision::kBf16, Precision::kInt8, Precision::kInt4w}) {
    StatusOr<Precision> back = ParsePrecision(PrecisionName(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  EXPECT_STREQ(PatternName(Pattern::kNM), "nm");
  EXPECT_STREQ(PrecisionName(Precision::kInt4w), "int4w");
}

TEST(PolicyNames, UnknownNamesAreInvalid) {
  StatusOr<Pattern> p = ParsePattern("2:4");
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("'2:4'"));
  StatusOr<Precision> q = ParsePrecision("INT8");
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(q.status().message(), HasSubstr("'INT8'"));
}

// --- LayerConfig ---------------------------------------------------------------------------

TEST(LayerConfig, EffectiveSparsity) {
  EXPECT_DOUBLE_EQ(LayerConfig().EffectiveSparsity(), 0.0);
  EXPECT_DOUBLE_EQ(Config(Pattern::kUnstructured, 0.7).EffectiveSparsity(), 0.7);
  EXPECT_DOUBLE_EQ(Block(4, 0.5).EffectiveSparsity(), 0.5);
  EXPECT_DOUBLE_EQ(Config(Pattern::kChannel, 0.25).EffectiveSparsity(), 0.25);
  EXPECT_DOUBLE_EQ(NM(2, 4).EffectiveSparsity(), 0.5);
  EXPECT_DOUBLE_EQ(NM(1, 8).EffectiveSparsity(), 0.875);
  LayerConfig nm = NM(2, 4);
  nm.sparsity = 0.9;  // ignored for N:M
  EXPECT_DOUBLE_EQ(nm.EffectiveSparsity(), 0.5);
}

TEST(LayerConfig, EqualityIgnoresFieldsThePatternDoesNotUse) {
  LayerConfig a = NM(2, 4);
  LayerConfig b = NM(2, 4);
  b.sparsity = 0.3;
  b.block = 16;
  EXPECT_EQ(a, b);
  LayerConfig u = Config(Pattern::kUnstructured, 0.5);
  LayerConfig v = u;
  v.block = 8;
  v.nm_n = 1;
  EXPECT_EQ(u, v);
  EXPECT_NE(Block(4, 0.5), Block(8, 0.5));
  EXPECT_NE(Block(4, 0.5), Block(4, 0.6));
  EXPECT_NE(NM(2, 4), NM(1, 4));
  EXPECT_NE(Config(Pattern::kUnstructured, 0.5), Config(Pattern::kChannel, 0.5));
  EXPECT_NE(LayerConfig(), Config(Pattern::kDense, 0, Precision::kInt8));
}

// --- JSON ----------------------------------------------------------------------------------

TEST(PolicyJson, RoundTrip) {
  Policy p;
  p.layers["conv1"] = Config(Pattern::kChannel, 0.25, Precision::kInt8);
  p.layers["conv2"] = Block(8, 0.5);
  p.layers["fc"] = NM(2, 4);
  p.layers["fc"].precision = Precision::kInt4w;
  p.layers["other"] = Config(Pattern::kDense, 0, Precision::kBf16);
  p.default_config = Config(Pattern::kUnstructured, 0.3);

  for (int indent : {2, -1}) {
    StatusOr<Policy> back = Policy::FromJson(p.ToJson(indent));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->layers, p.layers);
    ASSERT_TRUE(back->default_config.has_value());
    EXPECT_EQ(*back->default_config, *p.default_config);
    EXPECT_EQ(back->ToJson(indent), p.ToJson(indent));
    EXPECT_EQ(back->Hash(), p.Hash());
  }
}

TEST(PolicyJson, CanonicalFormHasOnlyFieldsThePatternUses) {
  Policy p;
  p.layers["a"] = Block(8, 0.5);
  p.layers["b"] = NM(1, 4);
  p.layers["b"].sparsity = 0.9;
  p.layers["c"] = Config(Pattern::kDense, 0, Precision::kInt8);
  p.layers["c"].block = 4;
  p.layers["d"] = Config(Pattern::kUnstructured, 0.5);
  EXPECT_EQ(p.ToJson(-1),
            "{\"layers\":{"
            "\"a\":{\"block\":8,\"pattern\":\"block\",\"precision\":\"fp32\",\"sparsity\":0.5},"
            "\"b\":{\"m\":4,\"n\":1,\"pattern\":\"nm\",\"precision\":\"fp32\"},"
            "\"c\":{\"pattern\":\"dense\",\"precision\":\"int8\"},"
            "\"d\":{\"pattern\":\"unstructured\",\"precision\":\"fp32\",\"sparsity\":0.5}"
            "},\"version\":1}");
}

TEST(PolicyJson, MissingFieldsTakeDefaults) {
  Policy p = Parse(R"({"version": 1, "layers": {
      "a": {},
      "b": {"pattern": "block", "sparsity": 0.5},
      "c": {"pattern": "nm", "n": 1},
      "d": {"precision": "int8"}}})");
  ASSERT_EQ(p.layers.size(), 4u);
  EXPECT_EQ(p.layers["a"], LayerConfig());
  EXPECT_EQ(p.layers["b"].pattern, Pattern::kBlock);
  EXPECT_EQ(p.layers["b"].block, 1);
  EXPECT_EQ(p.layers["b"].precision, Precision::kFp32);
  EXPECT_EQ(p.layers["c"].nm_n, 1);
  EXPECT_EQ(p.layers["c"].nm_m, 4);
  EXPECT_EQ(p.layers["d"].pattern, Pattern::kDense);
  EXPECT_EQ(p.layers["d"].precision, Precision::kInt8);
  EXPECT_FALSE(p.default_config.has_value());

  Policy empty = Parse("{}");
  EXPECT_TRUE(empty.layers.empty());
  EXPECT_FALSE(empty.default_config.has_value());
}

TEST(PolicyJson, DefaultIsParsed) {
  Policy p = Parse(R"({"version": 1, "default": {"pattern": "nm", "n": 2, "m": 8}, "layers": {}})");
  ASSERT_TRUE(p.default_config.has_value());
  EXPECT_EQ(*p.default_config, NM(2, 8));
}

TEST(PolicyJson, GetFallsBackToDenseFp32) {
  Policy p;
  p.layers["conv1"] = Block(4, 0.5);
  EXPECT_EQ(p.Get("conv1"), Block(4, 0.5));
  EXPECT_EQ(p.Get("missing"), LayerConfig());
}

TEST(PolicyJson, UnknownKeyNamesKeyAndLayer) {
  StatusOr<Policy> p = Policy::FromJson(R"({"layers": {"conv1": {"sparsty": 0.5}}})");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("'sparsty'"));
  EXPECT_THAT(p.status().message(), HasSubstr("'conv1'"));

  p = Policy::FromJson(R"({"default": {"blocks": 4}})");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("'blocks'"));
  EXPECT_THAT(p.status().message(), HasSubstr("default"));

  p = Policy::FromJson(R"({"layer": {}})");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("'layer'"));
}

TEST(PolicyJson, WrongTypesNameTheField) {
  struct Case {
    const char* text;
    const char* field;
  };
  const Case cases[] = {
      {R"({"layers": {"a": {"sparsity": "0.5"}}})", "'sparsity'"},
      {R"({"layers": {"a": {"sparsity": true}}})", "'sparsity'"},
      {R"({"layers": {"a": {"block": 4.5}}})", "'block'"},
      {R"({"layers": {"a": {"n": "2"}}})", "'n'"},
      {R"({"layers": {"a": {"m": null}}})", "'m'"},
      {R"({"layers": {"a": {"m": 99999999999}}})", "'m'"},
      {R"({"layers": {"a": {"pattern": 3}}})", "'pattern'"},
      {R"({"layers": {"a": {"precision": ["int8"]}}})", "'precision'"},
      {R"({"layers": {"a": 0.5}})", "'a'"},
      {R"({"layers": [1, 2]})", "'layers'"},
  };
  for (const Case& c : cases) {
    StatusOr<Policy> p = Policy::FromJson(c.text);
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(p.status().message(), HasSubstr(c.field)) << c.text;
  }
}

TEST(PolicyJson, BadPatternAndPrecisionNames) {
  StatusOr<Policy> p = Policy::FromJson(R"({"layers": {"conv1": {"pattern": "2:4"}}})");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("unknown pattern '2:4'"));
  EXPECT_THAT(p.status().message(), HasSubstr("'conv1'"));

  p = Policy::FromJson(R"({"layers": {"fc": {"precision": "int3"}}})");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("unknown precision 'int3'"));
  EXPECT_THAT(p.status().message(), HasSubstr("'fc'"));
}

TEST(PolicyJson, SyntaxErrorsAndVersion) {
  StatusOr<Policy> p = Policy::FromJson(R"({"layers": {)");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(p.status().message(), HasSubstr("parse error"));  // nlohmann's own words

  p = Policy::FromJson("[1]");
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);

  p = Policy::FromJson(R"({"version": 2})");
  ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("version 2"));
}

TEST(PolicyJson, Files) {
  const std::string path = ::testing::TempDir() + "acs_policy_test.json";
  Policy p;
  p.layers["conv1"] = Block(4, 0.5);
  p.default_config = NM(2, 4);
  ASSERT_TRUE(p.ToFile(path).ok());
  StatusOr<Policy> back = Policy::FromFile(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Hash(), p.Hash());
  EXPECT_EQ(back->layers, p.layers);

  {
    std::ofstream out(path, std::ios::trunc);
    out << R"({"layers": {"conv1": {"colour": 1}}})";
  }
  back = Policy::FromFile(path);
  ASSERT_EQ(back.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(back.status().message(), HasSubstr(path));
  EXPECT_THAT(back.status().message(), HasSubstr("'colour'"));
  std::remove(path.c_str());

  back = Policy::FromFile(path);
  ASSERT_EQ(back.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(back.status().message(), HasSubstr(path));

  Status s = p.ToFile(::testing::TempDir() + "no/such/dir/p.json");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("no/such/dir/p.json"));
}

// --- hash ----------------------------------------------------------------------------------

TEST(PolicyHash, IsSixteenLowercaseHexDigitsAndStable) {
  Policy p;
  p.layers["conv1"] = Block(4, 0.5);
  const std::string h = p.Hash();
  ASSERT_EQ(h.size(), 16u);
  for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
  EXPECT_EQ(p.Hash(), h);
  Policy q;
  q.layers["conv1"] = Block(4, 0.5);
  EXPECT_EQ(q.Hash(), h);
  // Pinned so a change of the canonical form is noticed: it invalidates stored results.
  EXPECT_EQ(Policy().Hash(), "4758c354913c9226");
}

TEST(PolicyHash, KeyOrderInJsonDoesNotMatter) {
  Policy a = Parse(R"({"version": 1, "layers": {
      "conv1": {"sparsity": 0.5, "pattern": "block", "block": 4},
      "fc": {"pattern": "nm", "n": 2, "m": 4, "precision": "int8"}}})");
  Policy b = Parse(R"({"layers": {
      "fc": {"precision": "int8", "m": 4, "n": 2, "pattern": "nm"},
      "conv1": {"block": 4, "pattern": "block", "sparsity": 0.5}}, "version": 1})");
  EXPECT_EQ(a.Hash(), b.Hash());
}

TEST(PolicyHash, DenseFp32EntriesDoNotMatter) {
  Policy a;
  a.layers["conv1"] = Block(4, 0.5);
  Policy b = a;
  b.layers["conv2"] = LayerConfig();
  b.layers["fc"] = Config(Pattern::kDense, 0.0);
  EXPECT_EQ(a.Hash(), b.Hash());
  Policy c = a;
  c.default_config = LayerConfig();  // a dense fp32 default changes nothing either
  EXPECT_EQ(a.Hash(), c.Hash());
  // But a dense entry that overrides a real default does matter.
  Policy d = a;
  d.default_config = Config(Pattern::kUnstructured, 0.5);
  Policy e = d;
  e.layers["fc"] = LayerConfig();
  EXPECT_NE(d.Hash(), e.Hash());
  // And one equal to the default does not.
  Policy f = d;
  f.layers["fc"] = *d.default_config;
  EXPECT_EQ(d.Hash(), f.Hash());
}

TEST(PolicyHash, IgnoredFieldsDoNotMatter) {
  Policy a;
  a.layers["conv1"] = NM(2, 4);
  a.layers["fc"] = Config(Pattern::kUnstructured, 0.5);
  Policy b;
  b.layers["conv1"] = NM(2, 4);
  b.layers["conv1"].sparsity = 0.7;
  b.layers["conv1"].block = 16;
  b.layers["fc"] = Config(Pattern::kUnstructured, 0.5);
  b.layers["fc"].block = 8;
  b.layers["fc"].nm_n = 1;
  b.layers["fc"].nm_m = 8;
  EXPECT_EQ(a.Hash(), b.Hash());
  Policy c = a;
  c.layers["conv2"] = Config(Pattern::kDense, -0.0);
  c.layers["conv2"].block = 4;
  EXPECT_EQ(a.Hash(), c.Hash());
}

TEST(PolicyHash, DifferentPoliciesDiffer) {
  Policy base;
  base.layers["conv1"] = Block(4, 0.5);
  auto with = [&](const std::string& name, const LayerConfig& c) {
    Policy p = base;
    p.layers[name] = c;
    return p.Hash();
  };
  const std::string h = base.Hash();
  EXPECT_NE(with("conv1", Block(4, 0.51)), h);
  EXPECT_NE(with("conv1", Block(2, 0.5)), h);
  EXPECT_NE(with("conv1", Config(Pattern::kUnstructured, 0.5)), h);
  EXPECT_NE(with("conv2", Block(4, 0.5)), h);
  EXPECT_NE(with("conv2", Config(Pattern::kDense, 0, Precision::kInt8)), h);
  LayerConfig int8 = Block(4, 0.5);
  int8.precision = Precision::kInt8;
  EXPECT_NE(with("conv1", int8), h);
  EXPECT_NE(with("fc", NM(2, 4)), with("fc", NM(1, 4)));
  Policy d = base;
  d.default_config = Config(Pattern::kUnstructured, 0.2);
  EXPECT_NE(d.Hash(), h);
}

// --- resolve and uniform -------------------------------------------------------------------

}  // namespace
}  // namespace acs
