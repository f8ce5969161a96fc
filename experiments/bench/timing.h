// Benchmark timing: warm-up, then repeats until both a minimum count and a minimum time
// are reached; the median is the figure reported. MeasurePair alternates two functions so
// that both see the same interference from the rest of the machine, which makes their
// ratio far steadier than that of two separate measurements on a shared host.
#pragma once

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

namespace acs::bench {

struct TimingOptions {
  int warmup = 3;              // untimed calls first
  int min_repeats = 7;         // timed calls at least
  int max_repeats = 100000;    // timed calls at most
  double min_seconds = 0.15;   // total timed time at least
};

struct Timing {
  double median_us = 0.0;
  double min_us = 0.0;
  double max_us = 0.0;
  int repeats = 0;
};

inline Timing Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  Timing t;
  t.repeats = static_cast<int>(us.size());
  t.median_us = us.size() % 2 ? us[us.size() / 2] : 0.5 * (us[us.size() / 2 - 1] + us[us.size() / 2]);
  t.min_us = us.front();
  t.max_us = us.back();
  return t;
}

template <class Fn>
double TimeOnce(Fn& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Fn>
Timing Measure(Fn&& fn, const TimingOptions& options) {
  for (int i = 0; i < options.warmup; ++i) fn();
  std::vector<double> us;
  double total = 0.0;
  while (static_cast<int>(us.size()) < options.max_repeats &&
         (static_cast<int>(us.size()) < options.min_repeats || total < options.min_seconds)) {
    const double s = TimeOnce(fn);
    us.push_back(s * 1e6);
    total += s;
  }
  return Summarize(std::move(us));
}

// Times a and b alternately; the minimum time counts both.
template <class A, class B>
std::pair<Timing, Timing> MeasurePair(A&& a, B&& b, const TimingOptions& options) {
  for (int i = 0; i < options.warmup; ++i) {
    a();
    b();
  }
  std::vector<double> ua, ub;
  double total = 0.0;
  while (static_cast<int>(ua.size()) < options.max_repeats &&
         (static_cast<int>(ua.size()) < options.min_repeats || total < options.min_seconds)) {
    const double sa = TimeOnce(a), sb = TimeOnce(b);
    ua.push_back(sa * 1e6);
    ub.push_back(sb * 1e6);
    total += sa + sb;
  }
  return {Summarize(std::move(ua)), Summarize(std::move(ub))};
}

}  // namespace acs::bench
