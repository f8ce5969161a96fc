// Campaign specs: a good one expands to its product of cells with stable keys; every bad
// field is an error naming it.
#include "campaigns/campaign_spec.h"

#include <cstdio>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace acs {
namespace {

nlohmann::json GoodSpec() {
  return nlohmann::json::parse(R"({
    "name": "nightly-zoo",
    "models": [
      {"name": "resnet20", "path": "data/zoo/resnet20.pt", "input": [1, 1, 28, 28], "data": "name:fashion-mnist",
       "test_data": "name:fashion-mnist"},
      {"name": "stored", "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "input": [1, 3, 32, 32], "data": "name:cifar10"}
    ],
    "budgets": ["latency=0.5x", "flops=0.35x"],
    "agents": ["amc", "random"],
    "seeds": [1, 2],
    "episodes": 12,
    "compare": {"relative_floor": 0.1, "gate": ["measured_speedup"]}
  })");
}

// The error of parsing `spec`, which must fail.
std::string ErrorOf(const nlohmann::json& spec) {
  StatusOr<CampaignSpec> s = ParseCampaignSpec(spec.dump(), "nightly.json");
  EXPECT_FALSE(s.ok()) << spec.dump();
  if (s.ok()) return "";
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  return s.status().message();
}

TEST(CampaignSpecTest, AGoodSpecExpandsToItsProductWithStableKeys) {
  StatusOr<CampaignSpec> spec = ParseCampaignSpec(GoodSpec().dump());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->episodes, 12);
  EXPECT_EQ(spec->top_k, 3);  // the default
  EXPECT_DOUBLE_EQ(spec->compare.relative_floor, 0.1);
  EXPECT_DOUBLE_EQ(spec->compare.noise_multiplier, 3);
  const std::vector<CampaignCell> cells = CampaignCells(*spec);
  ASSERT_EQ(cells.size(), 2u * 2 * 2 * 2);
  EXPECT_EQ(cells.front().Key(*spec), "resnet20 latency=0.5x amc seed=1");
  EXPECT_EQ(cells.back().Key(*spec), "stored flops=0.35x random seed=2");
  std::set<std::string> keys;
  for (const CampaignCell& c : cells) keys.insert(c.Key(*spec));
  EXPECT_EQ(keys.size(), cells.size());

  // The hash follows the content, not the formatting.
  StatusOr<CampaignSpec> reformatted = ParseCampaignSpec(GoodSpec().dump(4));
  ASSERT_TRUE(reformatted.ok());
  EXPECT_EQ(CampaignSpecHash(*reformatted), CampaignSpecHash(*spec));
  nlohmann::json changed = GoodSpec();
  changed["episodes"] = 13;
  StatusOr<CampaignSpec> other = ParseCampaignSpec(changed.dump());
  ASSERT_TRUE(other.ok());
  EXPECT_NE(CampaignSpecHash(*other), CampaignSpecHash(*spec));

  nlohmann::json classes = GoodSpec();
  classes["device_classes"] = {"x86_64-avx2", "x86_64-avx512"};
  StatusOr<CampaignSpec> two = ParseCampaignSpec(classes.dump());
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(CampaignCells(*two).size(), 32u);
  EXPECT_EQ(CampaignCells(*two).front().Key(*two), "resnet20 latency=0.5x amc seed=1 on x86_64-avx2");
}

TEST(CampaignSpecTest, EveryBadFieldIsNamed) {
  EXPECT_EQ(ParseCampaignSpec("{\"name\": ", "nightly.json").status().message(),
            "nightly.json: not JSON at line 1, column 10 (byte 10)");
  // A number past double's range is an error like a syntax error, not an exception that
  // escapes the parser (found by fuzz_campaign_spec).
  EXPECT_EQ(ParseCampaignSpec("{\"name\": \"n\", \"episodes\": 1e400}", "nightly.json").status().message(),
            "nightly.json: not JSON: number overflow parsing '1e400'");
  // A syntax error names its line and column.
  EXPECT_EQ(ParseCampaignSpec("{\n  \"name\": \"n\",\n  \"agents\": [\"amc\",]\n}\n", "nightly.json").status().message(),
            "nightly.json: not JSON at line 3, column 20 (byte 37)");
  auto with = [](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = GoodSpec();
    change(j);
    return j;
  };
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["episode"] = 3; })).rfind("nightly.json: episode: unknown field", 0), 0u);
  EXPECT_EQ(ErrorOf(with([](auto& j) { j.erase("name"); })), "nightly.json: name: missing (a string)");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["name"] = "night ly"; })),
            "nightly.json: name: 'night ly' is not 1-64 of [A-Za-z0-9._-]");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["models"] = nlohmann::json::array(); })),
            "nightly.json: models: expected a non-empty list of models");
  EXPECT_EQ(ErrorOf(with([](auto& j) {
              j["models"][1]["input"] = {1, 0, 32};
            })),
            "nightly.json: models[1].input: expected a list of 1 to 8 positive integers, e.g. [1, 3, 32, 32]");
  EXPECT_EQ(ErrorOf(with([](auto& j) {
              j["models"][1]["input"] = {1, 3, 8192, 8192};
            })),
            "nightly.json: models[1].input: more than 67108864 elements");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["models"][0]["sha256"] = std::string(64, 'a'); })),
            "nightly.json: models[0].path: give exactly one of path and sha256");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["models"][1]["sha256"] = "abc"; })),
            "nightly.json: models[1].sha256: expected 64 lowercase hex digits");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["models"][1]["name"] = "resnet20"; })),
            "nightly.json: models[1].name: 'resnet20' names two models");
  EXPECT_EQ(ErrorOf(with([](auto& j) {
              j["models"][0]["dataset"] = "x";
            })).rfind("nightly.json: models[0].dataset: unknown field", 0),
            0u);
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["budgets"][1] = "latency=1.5x"; })).rfind("nightly.json: budgets[1]: ", 0),
            0u);
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["budgets"][1] = "latency=0.5x"; })),
            "nightly.json: budgets[1]: 'latency=0.5x' is listed twice");
  // Written apart, the same budget: its cells would have the same keys.
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["budgets"][1] = "latency=0.50X"; })),
            "nightly.json: budgets[1]: 'latency=0.50X' is budgets[0] ('latency=0.5x') again, as latency=0.5x");
  EXPECT_EQ(ErrorOf(with([](auto& j) {
              j["agents"] = {"amc", "dqn"};
            })),
            "nightly.json: agents[1]: unknown agent 'dqn' (known: amc, agmc, random, evo, uniform)");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["seeds"] = {1, -2}; })), "nightly.json: seeds[1]: expected an integer >= 0");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["episodes"] = 0; })),
            "nightly.json: episodes: must be between 1 and 100000, not 0");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["fine_tune"] = "yes"; })), "nightly.json: fine_tune: expected true or false");
  EXPECT_EQ(ErrorOf(with([](auto& j) {
              j["compare"]["gate"] = {"latency"};
            })).rfind("nightly.json: compare.gate[0]: unknown metric 'latency'", 0),
            0u);
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["compare"]["relative_floor"] = 2; })),
            "nightly.json: compare.relative_floor: must be between 0 and 1, not 2");
  EXPECT_EQ(ErrorOf(with([](auto& j) {
              j["seeds"] = nlohmann::json::array();
              for (int s = 0; s < 2000; ++s) j["seeds"].push_back(s);
            })),
            "nightly.json: 16000 cells (models x device classes x budgets x agents x seeds), more than 10000");
  EXPECT_EQ(ReadCampaignSpec("/nonexistent/nightly.json").status().code(), StatusCode::kNotFound);
}

// The search options every cell carries: threads and the search space, each checked by
// name; a spec without them keeps the hash it had before they existed.
TEST(CampaignSpecTest, TheSearchSpaceAndThreadsAreReadAndChecked) {
  const std::string before = CampaignSpecHash(*ParseCampaignSpec(GoodSpec().dump()));
  nlohmann::json j = GoodSpec();
  j["threads"] = 2;
  j["space"] = {{"patterns", {"block", "channel"}},
                {"block_sizes", {4, 8}},
                {"precisions", {"fp32", "int8"}},
                {"max_sparsity", 0.9},
                {"skip_layers", {"fc"}}};
  StatusOr<CampaignSpec> spec = ParseCampaignSpec(j.dump());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->threads, 2);
  EXPECT_EQ(spec->space.patterns, (std::vector<std::string>{"block", "channel"}));
  EXPECT_EQ(spec->space.block_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(spec->space.precisions, (std::vector<std::string>{"fp32", "int8"}));
  EXPECT_DOUBLE_EQ(spec->space.max_sparsity, 0.9);
  EXPECT_EQ(spec->space.skip_layers, (std::vector<std::string>{"fc"}));
  EXPECT_NE(CampaignSpecHash(*spec), before);
  nlohmann::json defaults = GoodSpec();
  defaults["threads"] = 1;
  defaults["space"] = nlohmann::json::object();
  EXPECT_EQ(CampaignSpecHash(*ParseCampaignSpec(defaults.dump())), before);

  auto with = [](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = GoodSpec();
    change(j);
    return j;
  };
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["threads"] = 0; })), "nightly.json: threads: must be between 1 and 64, not 0");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["space"] = {{"patterns", {"block", "diagonal"}}}; })).rfind(
                "nightly.json: space.patterns[1]: unknown pattern 'diagonal' (known: ", 0),
            0u);
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["space"] = {{"precisions", {"fp8"}}}; })).rfind(
                "nightly.json: space.precisions[0]: unknown precision 'fp8' (known: ", 0),
            0u);
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["space"] = {{"block_sizes", {8, 1}}}; })),
            "nightly.json: space.block_sizes[1]: expected an integer from 2 to 64");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["space"] = {{"max_sparsity", 1.5}}; })),
            "nightly.json: space.max_sparsity: must be between 0 and 0.99, not 1.5");
  EXPECT_EQ(ErrorOf(with([](auto& j) { j["space"] = {{"pattern", {"block"}}}; })).rfind(
                "nightly.json: space.pattern: unknown field", 0),
            0u);
}

// Lists whose lengths multiply to 2^64 (65,536 models, device classes, budgets and seeds):
// their product must not wrap around to 0 cells, under the cap.
TEST(CampaignSpecTest, ListsWhoseLengthsMultiplyPastTwoToThe64AreRefused) {
  const int n = 65536;
  const char* const kinds[] = {"latency", "flops", "params", "bytes"};
  std::string models, classes, budgets, seeds;
  for (int i = 0; i < n; ++i) {
    const std::string sep = i == 0 ? "" : ",", at = std::to_string(i);
    models += sep + R"({"name": "m)" + at + R"(", "path": "m.pt", "input": [1, 1, 28, 28], "data": "d"})";
    classes += sep + "\"c" + at + "\"";
    char budget[64];  // 4 kinds x 16,384 ratios, distinct to 6 significant digits
    std::snprintf(budget, sizeof budget, "\"%s=%.17gx\"", kinds[i % 4], (i / 4 + 1) / 16384.0);
    budgets += sep + budget;
    seeds += sep + at;
  }
  const std::string text = R"({"name": "huge", "agents": ["random"], "models": [)" + models +
                           "], \"device_classes\": [" + classes + "], \"budgets\": [" + budgets + "], \"seeds\": [" +
                           seeds + "]}";
  StatusOr<CampaignSpec> spec = ParseCampaignSpec(text, "huge.json");
  ASSERT_FALSE(spec.ok()) << spec->models.size();
  EXPECT_EQ(spec.status().message(),
            "huge.json: over 2^64 cells (models x device classes x budgets x agents x seeds), more than 10000");
}

TEST(CampaignSpecTest, TheExampleSpecParses) {
  StatusOr<CampaignSpec> spec = ReadCampaignSpec(ACS_SOURCE_DIR "/experiments/campaigns/zoo-nightly.json");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(CampaignCells(*spec).size(), 4u);
}

}  // namespace
}  // namespace acs
