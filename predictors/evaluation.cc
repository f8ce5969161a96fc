#include "predictors/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace acs::predictors {
namespace {

std::vector<double> Ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double avg = 0.5 * static_cast<double>(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) r[order[k]] = avg;
    i = j + 1;
  }
  return r;
}

}  // namespace

nlohmann::json AccuracyMetrics::ToJson() const {
  return {{"count", count}, {"mape", mape}, {"within5", within5}, {"within10", within10}, {"spearman", spearman}};
}

double RelativeError(double predicted, double measured) { return (predicted - measured) / measured; }

double SpearmanRho(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || a.size() != b.size()) return 0.0;
  const std::vector<double> ra = Ranks(a), rb = Ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n;
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    cov += (ra[i] - ma) * (rb[i] - mb);
    va += (ra[i] - ma) * (ra[i] - ma);
    vb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (va <= 0 || vb <= 0) return 0.0;
  return cov / std::sqrt(va * vb);
}

AccuracyMetrics ComputeMetrics(const std::vector<double>& predicted, const std::vector<double>& measured) {
  AccuracyMetrics m;
  m.count = static_cast<int>(std::min(predicted.size(), measured.size()));
  if (m.count == 0) return m;
  for (int i = 0; i < m.count; ++i) {
    const double e = std::abs(RelativeError(predicted[i], measured[i]));
    m.mape += e;
    m.within5 += e <= 0.05 ? 1 : 0;
    m.within10 += e <= 0.10 ? 1 : 0;
  }
  m.mape /= m.count;
  m.within5 /= m.count;
  m.within10 /= m.count;
  m.spearman = SpearmanRho(predicted, measured);
  return m;
}

std::string DescribeRepeatAgreement(int64_t repeated, double within10) {
  char text[256];
  std::snprintf(text, sizeof text, "repeat agreement: %.1f%% of %lld re-measured kernels within 10%% of their first measurement%s",
                100 * within10, static_cast<long long>(repeated),
                within10 < kNoisyRepeatWithin10 ? " (a noisy device class: no prediction can be closer than its own repeats)"
                                                : "");
  return text;
}

}  // namespace acs::predictors
