// The measurement harness on a fake clock: statistics and the repeat rules, never real
// timings.
#include "devices/measure/harness.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <string>
#include <vector>

namespace acs::measure {
namespace {

// A clock that only moves when the measured function says so.
struct FakeClock {
  double now = 0.0;
  std::function<double()> Fn() {
    return [this] { return now; };
  }
};

TEST(SummarizeTest, MedianIqrMinOfOddCount) {
  const Measurement m = Summarize({5, 1, 3, 2, 4});
  EXPECT_EQ(m.repeats, 5);
  EXPECT_DOUBLE_EQ(m.median_us, 3);
  EXPECT_DOUBLE_EQ(m.iqr_us, 2);  // quartiles 2 and 4
  EXPECT_DOUBLE_EQ(m.min_us, 1);
  EXPECT_EQ(m.samples_us, (std::vector<double>{5, 1, 3, 2, 4}));  // order kept
}

TEST(SummarizeTest, InterpolatesBetweenOrderStatistics) {
  const Measurement m = Summarize({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(m.median_us, 2.5);
  EXPECT_DOUBLE_EQ(m.iqr_us, 3.25 - 1.75);
  const Measurement one = Summarize({7});
  EXPECT_DOUBLE_EQ(one.median_us, 7);
  EXPECT_DOUBLE_EQ(one.iqr_us, 0);
  const Measurement none = Summarize({});
  EXPECT_EQ(none.repeats, 0);
  EXPECT_DOUBLE_EQ(none.median_us, 0);
}

TEST(MeasureTest, SamplesAreWhatTheClockSays) {
  FakeClock clock;
  const std::vector<double> durations = {0.004, 0.001, 0.003, 0.002, 0.005};
  int calls = 0;
  MeasureOptions o;
  o.warmup = 2;
  o.min_repeats = 5;
  o.min_seconds = 0;
  o.clock = clock.Fn();
  const Measurement m = Measure([&] { clock.now += durations[calls++ % durations.size()]; }, o);
  EXPECT_EQ(calls, 7);  // warm-up calls are not sampled
  ASSERT_EQ(m.repeats, 5);
  // The sampled calls are calls 2..6 of the duration cycle.
  EXPECT_NEAR(m.samples_us[0], 3000, 1e-6);
  EXPECT_NEAR(m.samples_us[1], 2000, 1e-6);
  EXPECT_NEAR(m.samples_us[2], 5000, 1e-6);
  EXPECT_NEAR(m.median_us, 3000, 1e-6);
  EXPECT_NEAR(m.min_us, 1000, 1e-6);
  EXPECT_NEAR(m.iqr_us, 2000, 1e-6);
}

TEST(MeasureTest, MinimumCountWinsOverReachedTime) {
  FakeClock clock;
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 10;
  o.min_seconds = 0.2;
  o.clock = clock.Fn();
  const Measurement m = Measure([&] { clock.now += 0.25; }, o);  // time reached after one call
  EXPECT_EQ(m.repeats, 10);
}

TEST(MeasureTest, MinimumTimeWinsOverReachedCount) {
  FakeClock clock;
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 2;
  o.min_seconds = 1.0;
  o.clock = clock.Fn();
  const Measurement m = Measure([&] { clock.now += 0.125; }, o);
  EXPECT_EQ(m.repeats, 8);  // 8 x 0.125 s = 1 s exactly
}

TEST(MeasureTest, MaximumRepeatsCapsEverything) {
  FakeClock clock;
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 50;
  o.min_seconds = 100.0;
  o.max_repeats = 7;
  o.clock = clock.Fn();
  EXPECT_EQ(Measure([&] { clock.now += 0.001; }, o).repeats, 7);
  o.max_repeats = 0;  // still one sample
  EXPECT_EQ(Measure([&] { clock.now += 0.001; }, o).repeats, 1);
}

TEST(MeasureTest, AlternatesFunctionsAndCountsTheirTimeTogether) {
  FakeClock clock;
  std::string order;
  MeasureOptions o;
  o.warmup = 1;
  o.min_repeats = 2;
  o.min_seconds = 1.0;
  o.clock = clock.Fn();
  const std::vector<Measurement> m = MeasureAlternating(
      {[&] { order += 'a'; clock.now += 0.25; }, [&] { order += 'b'; clock.now += 0.0625; }}, o);
  ASSERT_EQ(m.size(), 2u);
  // Rounds of a then b until 2 rounds and 1 s of both together: 0.3125 s per round -> 4 rounds.
  EXPECT_EQ(order, "ab" "abababab");
  EXPECT_EQ(m[0].repeats, 4);
  EXPECT_EQ(m[1].repeats, 4);
  EXPECT_NEAR(m[0].median_us, 250000, 1e-3);
  EXPECT_NEAR(m[1].median_us, 62500, 1e-3);
  EXPECT_TRUE(MeasureAlternating({}, o).empty());
}

TEST(MeasureTest, CacheFlushIsOutsideTheSamples) {
  FakeClock clock;
  int calls = 0;
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 3;
  o.min_seconds = 0;
  o.flush_cache_bytes = 1 << 20;
  o.clock = clock.Fn();
  const Measurement m = Measure([&] { ++calls; clock.now += 0.5; }, o);
  EXPECT_EQ(calls, 3);
  EXPECT_NEAR(m.median_us, 500000, 1e-6);
}

TEST(MeasureTest, TurnsOfSeveralRunsTimeAllButTheFirst) {
  FakeClock clock;
  std::string order;
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 4;
  o.min_seconds = 0;
  o.runs_per_turn = 3;
  o.clock = clock.Fn();
  int a_calls = 0;
  auto a = [&] {
    order += 'a';
    clock.now += ++a_calls % 3 == 1 ? 5.0 : 1.0;  // the first of a turn is slow
  };
  auto b = [&] {
    order += 'b';
    clock.now += 2.0;
  };
  const std::vector<Measurement> m = MeasureAlternating({a, b}, o);
  EXPECT_EQ(order, "aaabbbaaabbb");  // 2 turns of 2 timed runs each
  EXPECT_EQ(m[0].repeats, 4);
  EXPECT_NEAR(m[0].median_us, 1e6, 1e-6);  // the slow first runs are not samples
  EXPECT_NEAR(m[1].median_us, 2e6, 1e-6);
}

TEST(MeasureTest, FlushesCountTowardsTheMinimumTime) {
  // Every read of this clock is 1 s after the last: a flush and a sample take 1 s each.
  double now = 0;
  int calls = 0;
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 1;
  o.min_seconds = 10;
  o.clock = [&] { return now += 1; };
  Measure([&] { ++calls; }, o);
  EXPECT_EQ(calls, 10);  // 1 s per round
  calls = 0;
  o.flush_cache_bytes = 1 << 16;
  const Measurement m = Measure([&] { ++calls; }, o);
  EXPECT_EQ(calls, 5);  // 2 s per round: the flushes count
  EXPECT_NEAR(m.median_us, 1e6, 1e-6);  // but are not in the samples
}

int AllowedCpus() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : -1;
}

TEST(MeasureTest, PinningRestrictsThenRestoresTheAffinity) {
  const int before = AllowedCpus();
  ASSERT_GT(before, 0);
  MeasureOptions o;
  o.warmup = 0;
  o.min_repeats = 1;
  o.min_seconds = 0;
  o.threads = 1;
  o.pin_threads = true;
  int inside = -1;
  Measure([&] { inside = AllowedCpus(); }, o);
  EXPECT_EQ(inside, 1);
  EXPECT_EQ(AllowedCpus(), before);
}

TEST(MeasureTest, JsonCarriesTheFigures) {
  const Measurement m = Summarize({1, 2, 3});
  const nlohmann::json j = ToJson(m);
  EXPECT_DOUBLE_EQ(j["median_us"].get<double>(), 2);
  EXPECT_EQ(j["repeats"].get<int>(), 3);
  EXPECT_EQ(j["samples_us"].size(), 3u);
  EXPECT_FALSE(ToJson(m, /*with_samples=*/false).contains("samples_us"));
  EXPECT_EQ(ToJson(MeasureOptions{})["min_repeats"].get<int>(), 10);
}

}  // namespace
}  // namespace acs::measure
