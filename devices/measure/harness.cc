#include "devices/measure/harness.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

namespace acs::measure {
namespace {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Quantile q in [0, 1] of sorted values, interpolating linearly between order statistics.
double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// Restricts the calling thread to its first `threads` allowed CPUs until destroyed.
class AffinityGuard {
 public:
  AffinityGuard(bool enabled, int threads) {
    if (!enabled || sched_getaffinity(0, sizeof(old_), &old_) != 0) return;
    cpu_set_t pinned;
    CPU_ZERO(&pinned);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < std::max(1, threads); ++cpu) {
      if (CPU_ISSET(cpu, &old_)) {
        CPU_SET(cpu, &pinned);
        ++taken;
      }
    }
    active_ = sched_setaffinity(0, sizeof(pinned), &pinned) == 0;
  }
  ~AffinityGuard() {
    if (active_) sched_setaffinity(0, sizeof(old_), &old_);
  }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

 private:
  cpu_set_t old_{};
  bool active_ = false;
};

// Writes and reads a buffer larger than the caches between samples.
class CacheFlusher {
 public:
  explicit CacheFlusher(int64_t bytes) : buffer_(std::max<int64_t>(0, bytes)) {}
  bool active() const { return !buffer_.empty(); }
  void Flush() {
    if (buffer_.empty()) return;
    unsigned sum = 0;
    for (size_t i = 0; i < buffer_.size(); i += 64) {
      buffer_[i] = static_cast<unsigned char>(buffer_[i] + 1);
      sum += buffer_[i];
    }
    sink_ = sink_ + sum;
  }

 private:
  std::vector<unsigned char> buffer_;
  volatile unsigned sink_ = 0;
};

}  // namespace

Measurement Summarize(std::vector<double> samples_us) {
  Measurement m;
  m.repeats = static_cast<int>(samples_us.size());
  m.samples_us = samples_us;
  if (samples_us.empty()) return m;
  std::sort(samples_us.begin(), samples_us.end());
  m.median_us = Quantile(samples_us, 0.5);
  m.iqr_us = Quantile(samples_us, 0.75) - Quantile(samples_us, 0.25);
  m.min_us = samples_us.front();
  return m;
}

Measurement Measure(const std::function<void()>& fn, const MeasureOptions& options) {
  return MeasureAlternating({fn}, options).front();
}

std::vector<Measurement> MeasureAlternating(const std::vector<std::function<void()>>& fns,
                                            const MeasureOptions& options) {
  if (fns.empty()) return {};
  AffinityGuard pin(options.pin_threads, options.threads);
  CacheFlusher flusher(options.flush_cache_bytes);
  const std::function<double()> clock = options.clock ? options.clock : SteadySeconds;
  for (int i = 0; i < options.warmup; ++i) {
    for (const auto& fn : fns) fn();
  }
  const int max_repeats = std::max(1, options.max_repeats);
  const int min_repeats = std::clamp(options.min_repeats, 1, max_repeats);
  std::vector<std::vector<double>> samples(fns.size());
  double total_seconds = 0.0;
  const int per_turn = std::max(1, options.runs_per_turn);
  int n = 0;
  while (n < max_repeats && (n < min_repeats || total_seconds < options.min_seconds)) {
    const int timed = per_turn == 1 ? 1 : std::min(per_turn - 1, max_repeats - n);
    for (size_t f = 0; f < fns.size(); ++f) {
      if (per_turn > 1) {
        const double start = clock();
        fns[f]();
        total_seconds += clock() - start;
      }
      for (int t = 0; t < timed; ++t) {
        if (flusher.active()) {
          const double flush_start = clock();
          flusher.Flush();
          total_seconds += clock() - flush_start;
        }
        const double start = clock();
        fns[f]();
        const double seconds = clock() - start;
        samples[f].push_back(seconds * 1e6);
        total_seconds += seconds;
      }
    }
    n += timed;
  }
  std::vector<Measurement> out;
  for (auto& s : samples) out.push_back(Summarize(std::move(s)));
  return out;
}

std::vector<Measurement> MeasureChoice(const std::vector<std::function<void()>>& fns, int threads) {
  MeasureOptions options;
  options.warmup = 2;
  options.min_repeats = 7;
  options.min_seconds = 0.05;
  options.threads = threads;
  options.runs_per_turn = 3;
  return MeasureAlternating(fns, options);
}

nlohmann::json ToJson(const Measurement& m, bool with_samples) {
  nlohmann::json j = {{"median_us", m.median_us}, {"iqr_us", m.iqr_us}, {"min_us", m.min_us}, {"repeats", m.repeats}};
  if (with_samples) j["samples_us"] = m.samples_us;
  return j;
}

nlohmann::json ToJson(const MeasureOptions& o) {
  return {{"warmup", o.warmup},         {"min_repeats", o.min_repeats}, {"min_seconds", o.min_seconds},
          {"max_repeats", o.max_repeats}, {"threads", o.threads},       {"pin_threads", o.pin_threads},
          {"flush_cache_bytes", o.flush_cache_bytes}, {"runs_per_turn", o.runs_per_turn},
          {"statistic", "median"}};
}

}  // namespace acs::measure
