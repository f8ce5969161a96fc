// Kernel specs (core/kernel_spec.h): parsing, keys, contexts and errors that name the field.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/kernel_spec.h"

namespace acs {
namespace {
nlohmann::json ConvSpec() {
  return nlohmann::json::parse(R"({"op": "conv2d", "in_channels": 8, "out_channels": 16, "kernel": [3, 3],
    "stride": 2, "padding": 1, "input": [1, 8, 12, 12],
    "config": {"pattern": "block", "sparsity": 0.75, "block": 8, "precision": "fp32"}, "threads": 1})");
}

std::string ErrorOf(const nlohmann::json& j) {
  StatusOr<KernelSpec> s = ParseKernelSpec(j);
  EXPECT_FALSE(s.ok()) << j.dump();
  return s.ok() ? "" : s.status().message();
}

TEST(KernelSpecTest, ParsesAndKeysStably) {
  StatusOr<KernelSpec> s = ParseKernelSpec(ConvSpec());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->stride[1], 2);
  EXPECT_EQ(s->out_h(), 6);
  EXPECT_EQ(s->Key(), "conv2d c8 o16 k3x3 s2x2 p1x1 d1x1 g1 in1x8x12x12 block8 sp0.75 fp32");
  StatusOr<KernelSpec> again = ParseKernelSpec(s->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->Key(), s->Key());
  nlohmann::json more_threads = ConvSpec();
  more_threads["threads"] = 2;
  EXPECT_EQ(ParseKernelSpec(more_threads)->Key(), s->Key());  // threads belong to the device class

  StatusOr<KernelSpec> linear = ParseKernelSpec(nlohmann::json::parse(
      R"({"op": "linear", "in_channels": 32, "out_channels": 10, "input": [4, 32],
          "config": {"pattern": "nm", "n": 2, "m": 4}})"));
  ASSERT_TRUE(linear.ok()) << linear.status().ToString();
  EXPECT_EQ(linear->Key(), "linear c32 o10 in4x32 nm2:4 fp32");
}

TEST(KernelSpecTest, ContextIsPartOfTheKeyAndBounded) {
  nlohmann::json j = ConvSpec();
  j["context_bytes"] = 16 << 20;
  StatusOr<KernelSpec> s = ParseKernelSpec(j);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->context_bytes, 16 << 20);
  EXPECT_EQ(s->Key(), "conv2d c8 o16 k3x3 s2x2 p1x1 d1x1 g1 in1x8x12x12 block8 sp0.75 fp32 ctx16M");
  EXPECT_EQ(ParseKernelSpec(s->ToJson())->context_bytes, 16 << 20);
  EXPECT_FALSE(ParseKernelSpec(ConvSpec())->ToJson().contains("context_bytes"));  // warm: as before
  j["context_bytes"] = int64_t{1} << 29;
  EXPECT_NE(ErrorOf(j).find("'context_bytes'"), std::string::npos);
  j["context_bytes"] = -1;
  EXPECT_NE(ErrorOf(j).find("'context_bytes'"), std::string::npos);
}

TEST(KernelSpecTest, ContextBuckets) {
  EXPECT_EQ(ContextBucket(0), 0);
  EXPECT_EQ(ContextBucket((1 << 18) - 1), 0);
  EXPECT_EQ(ContextBucket(1 << 18), 1 << 18);
  EXPECT_EQ(ContextBucket(3 << 20), 4 << 20);       // log2(3 MiB) = 21.58 rounds up
  EXPECT_EQ(ContextBucket(11 << 20), 8 << 20);      // log2(11 MiB) = 23.46 rounds down
  EXPECT_EQ(ContextBucket(int64_t{1} << 40), 1 << 28);
}

TEST(KernelSpecTest, ErrorsNameTheField) {
  nlohmann::json j = ConvSpec();
  j.erase("out_channels");
  EXPECT_NE(ErrorOf(j).find("'out_channels'"), std::string::npos);
  j = ConvSpec();
  j["config"]["block"] = 0;
  EXPECT_NE(ErrorOf(j).find("'config.block'"), std::string::npos);
  j = ConvSpec();
  j["config"]["sparsity"] = 1.5;
  EXPECT_NE(ErrorOf(j).find("'config.sparsity'"), std::string::npos);
  j = ConvSpec();
  j["config"]["pattern"] = "diagonal";
  EXPECT_NE(ErrorOf(j).find("'config.pattern'"), std::string::npos);
  j = ConvSpec();
  j["input"] = {1, 4, 12, 12};
  EXPECT_NE(ErrorOf(j).find("'input'"), std::string::npos);
  j = ConvSpec();
  j["stride"] = {1, 0};
  EXPECT_NE(ErrorOf(j).find("'stride'"), std::string::npos);
  j = ConvSpec();
  j["kernal"] = 3;
  EXPECT_NE(ErrorOf(j).find("'kernal': unknown field"), std::string::npos);
  j = ConvSpec();
  j["op"] = "conv3d";
  EXPECT_NE(ErrorOf(j).find("'op'"), std::string::npos);
  j = ConvSpec();
  j["kernel"] = {15, 15};
  EXPECT_NE(ErrorOf(j).find("'kernel'"), std::string::npos);
}

}  // namespace
}  // namespace acs
