// The split of a search's data: its forms (text, JSON), its checks, and the counts it
// resolves to on data of a given size.
#include "core/data_split.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace acs {
namespace {

TEST(DataSplitTest, ParsesCountsPercentagesAndFractions) {
  StatusOr<DataSplit> s = DataSplit::Parse("calibration=128,validation=10%,fine_tune=0.5,shuffle_seed=7");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->calibration.samples, 128);
  EXPECT_DOUBLE_EQ(s->validation.fraction, 0.1);
  EXPECT_DOUBLE_EQ(s->fine_tune.fraction, 0.5);
  EXPECT_EQ(s->shuffle_seed, 7u);
  EXPECT_EQ(s->ToString(), "calibration=128,validation=10%,fine_tune=50%,shuffle_seed=7");
  // The JSON form round-trips, and so does the text form.
  StatusOr<DataSplit> back = DataSplit::FromJson(s->ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->ToJson(), s->ToJson());
  StatusOr<DataSplit> reparsed = DataSplit::Parse(s->ToString());
  ASSERT_TRUE(reparsed.ok());
  EXPECT_EQ(reparsed->ToJson(), s->ToJson());
  EXPECT_TRUE(DataSplit::Parse("")->empty());
  EXPECT_TRUE(DataSplit::FromJson(nlohmann::json::object())->empty());
}

TEST(DataSplitTest, RefusesMalformedSplitsNamingThePart) {
  const auto message = [](const StatusOr<DataSplit>& s) { return s.ok() ? std::string("ok") : s.status().message(); };
  EXPECT_NE(message(DataSplit::Parse("calibration=0")).find("'0' is no split size"), std::string::npos);
  EXPECT_NE(message(DataSplit::Parse("validation=150%")).find("validation: '150%'"), std::string::npos);
  EXPECT_NE(message(DataSplit::Parse("validation=-3")).find("validation"), std::string::npos);
  EXPECT_NE(message(DataSplit::Parse("test=10")).find("unknown part 'test'"), std::string::npos);
  EXPECT_NE(message(DataSplit::Parse("validation=60%,fine_tune=0.5")).find("add up to more than the data"),
            std::string::npos);
  EXPECT_NE(message(DataSplit::Parse("shuffle_seed=x")).find("shuffle_seed"), std::string::npos);
  EXPECT_NE(message(DataSplit::FromJson(nlohmann::json::parse(R"({"validation": {"fraction": 2}})")))
                .find("validation's fraction must be in (0, 1]"),
            std::string::npos);
  EXPECT_NE(message(DataSplit::FromJson(nlohmann::json::parse(R"({"validation": {"samples": 5, "fraction": 0.1}})")))
                .find("validation is given as a count and as a fraction"),
            std::string::npos);
  EXPECT_NE(message(DataSplit::FromJson(nlohmann::json::parse(R"({"calibration": 5})"))).find("calibration must be"),
            std::string::npos);
  EXPECT_NE(message(DataSplit::FromJson(nlohmann::json::parse(R"({"holdout": {}})"))).find("unknown key 'holdout'"),
            std::string::npos);
  EXPECT_NE(message(DataSplit::FromJson(nlohmann::json::parse("[1]"))).find("expected a JSON object"),
            std::string::npos);
}

TEST(DataSplitTest, ResolvesCountsOnTheDataSize) {
  const SplitCounts defaults;  // 256, 500, 5000
  StatusOr<SplitCounts> c = ResolveSplit(DataSplit{}, defaults, 60000, /*fine_tune=*/true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->calibration, 256);
  EXPECT_EQ(c->validation, 500);
  EXPECT_EQ(c->fine_tune, 5000);
  EXPECT_EQ(ResolveSplit(DataSplit{}, defaults, 60000, /*fine_tune=*/false)->fine_tune, 0);

  // Fractions of the data, rounded down.
  DataSplit split = *DataSplit::Parse("calibration=1%,validation=0.25,fine_tune=50%");
  c = ResolveSplit(split, defaults, 1001, true);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->calibration, 10);
  EXPECT_EQ(c->validation, 250);
  EXPECT_EQ(c->fine_tune, 500);
  EXPECT_EQ(c->ToString(), "calibration 10, validation 250, fine-tuning 500");

  // Default parts shrink to what small data holds; named parts must fit.
  c = ResolveSplit(DataSplit{}, defaults, 300, false);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->calibration, 256);
  EXPECT_EQ(c->validation, 44);
  StatusOr<SplitCounts> none_left = ResolveSplit(DataSplit{}, defaults, 300, true);
  ASSERT_FALSE(none_left.ok());
  EXPECT_NE(none_left.status().message().find("fine-tuning none left"), std::string::npos)
      << none_left.status().message();
  split = *DataSplit::Parse("validation=400");
  StatusOr<SplitCounts> too_many = ResolveSplit(split, defaults, 600, false);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("holds 600 samples, too few for the split (calibration 256, validation "
                                             "400)"),
            std::string::npos)
      << too_many.status().message();
  c = ResolveSplit(DataSplit{}, defaults, 1, false);  // one sample: it validates
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->calibration, 0);
  EXPECT_EQ(c->validation, 1);
  EXPECT_FALSE(ResolveSplit(DataSplit{}, defaults, 0, false).ok());
}

// Counts near 2^63 (JSON's integers) fail as too many; their difference from the data's
// size must not wrap around to a split that fits (kept as a fuzz_data_specs input too).
TEST(DataSplitTest, HugeCountsDoNotWrapAroundIntoASplitThatFits) {
  const int64_t most = std::numeric_limits<int64_t>::max();
  StatusOr<DataSplit> split = DataSplit::FromJson(
      {{"calibration", {{"samples", most}}}, {"validation", {{"samples", most}}}, {"fine_tune", {{"samples", most}}}});
  ASSERT_TRUE(split.ok()) << split.status().message();
  for (bool fine_tune : {false, true}) {
    StatusOr<SplitCounts> c = ResolveSplit(*split, SplitCounts{}, 60000, fine_tune);
    ASSERT_FALSE(c.ok()) << c->ToString();
    EXPECT_NE(c.status().message().find("holds 60000 samples, too few for the split"), std::string::npos)
        << c.status().message();
  }
}

}  // namespace
}  // namespace acs
