// The measurement protocol (DESIGN §5), the one place where anything is timed: warm-up
// calls, then timed calls until both a minimum count and a minimum total time are reached;
// the median and the interquartile range of the samples are the figures reported.
//
// Torch-free. Not thread-safe across concurrent Measure calls when pin_threads is set (the
// calling thread's CPU affinity is changed for the duration of the call).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

namespace acs::measure {

struct MeasureOptions {
  int warmup = 3;                 // untimed calls first
  int min_repeats = 10;           // timed calls at least
  double min_seconds = 0.2;       // total timed time at least (sum of the samples)
  int max_repeats = 10000;        // timed calls at most; caps min_repeats too
  int threads = 1;                // CPUs the calling thread may run on when pin_threads is set
  bool pin_threads = false;       // restrict the calling thread to its first `threads` allowed
                                  // CPUs (sched_setaffinity) while measuring; threads it starts
                                  // meanwhile inherit that set. The old set is restored after.
  int runs_per_turn = 1;          // MeasureAlternating: consecutive calls of one function per
                                  // turn; when > 1 the first of each turn is untimed (it pays
                                  // for what the other functions left in the caches), so each
                                  // is timed in its own steady state, as a serving loop runs it
  int64_t flush_cache_bytes = 0;  // when > 0, a buffer of this size is written and read
                                  // before each sample (untimed, but counted in
                                  // min_seconds) to evict the caches
  // Seconds on a monotonic clock; null = std::chrono::steady_clock. Tests pass a fake.
  std::function<double()> clock;
};

struct Measurement {
  std::vector<double> samples_us;  // in the order taken
  double median_us = 0.0;
  double iqr_us = 0.0;             // third minus first quartile
  double min_us = 0.0;
  int repeats = 0;                 // samples_us.size()
};

// Median, interquartile range and minimum of samples (quartiles by linear interpolation
// between order statistics, as numpy's default). An empty input gives all zeros.
Measurement Summarize(std::vector<double> samples_us);

// Calls fn options.warmup times, then times single calls until at least min_repeats
// samples and min_seconds of sampled time are reached (max_repeats at most, and at least
// one sample). Exceptions from fn propagate.
Measurement Measure(const std::function<void()>& fn, const MeasureOptions& options = {});

// Measures several functions in alternation (one turn of each per round, all warmed up
// first) so that they see the same interference from the rest of the machine; their
// ratios are then far steadier than those of separate measurements on a shared host.
// A turn is runs_per_turn calls (the first untimed when more than one). Rounds continue
// until every function has min_repeats samples and the total time reaches min_seconds
// (untimed calls and flushes count). Returns one Measurement per function, in order.
std::vector<Measurement> MeasureAlternating(const std::vector<std::function<void()>>& fns,
                                            const MeasureOptions& options = {});

// A short alternated timing to choose between forms of one computation (2 warm-up calls,
// at least 7 samples and 50 ms of them, in turns of 3 calls whose first is untimed: each
// form timed in its own steady state, as one of them will run) on `threads`.
std::vector<Measurement> MeasureChoice(const std::vector<std::function<void()>>& fns, int threads);

// {"median_us", "iqr_us", "min_us", "repeats"} and, when with_samples, "samples_us".
nlohmann::json ToJson(const Measurement& m, bool with_samples = true);
// The options as recorded beside a measurement (the clock is left out).
nlohmann::json ToJson(const MeasureOptions& options);

}  // namespace acs::measure
