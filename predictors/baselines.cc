#include "predictors/baselines.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace acs::predictors {
namespace {

double NonZeroFlops(const KernelSpec& spec) { return std::max(1.0, 2.0 * ShapeStats(spec).macs_nonzero); }

std::string Bucket(const KernelSpec& spec) {
  const KernelSpec r = AsRun(spec);
  std::string b = std::string(KernelKindIdName(KindOf(r))) + "/" + PatternName(r.config.pattern) + "/" +
                  PrecisionName(r.config.precision) + "/t" + std::to_string(r.threads);
  if (r.config.pattern == Pattern::kBlock) b += "/b" + std::to_string(r.config.block);
  if (r.config.pattern == Pattern::kNM) b += "/" + std::to_string(r.config.nm_n) + ":" + std::to_string(r.config.nm_m);
  return b;
}

}  // namespace

StatusOr<FlopsModel> FlopsModel::Fit(const std::vector<KernelSample>& samples) {
  if (samples.empty()) return Status::InvalidArgument("the FLOPs model needs at least one sample");
  std::map<std::pair<int, int>, std::pair<double, int>> sums;
  for (const KernelSample& s : samples) {
    auto& [sum, n] = sums[{static_cast<int>(KindOf(s.spec)), s.spec.threads}];
    sum += std::log(s.latency_us / NonZeroFlops(s.spec));
    ++n;
  }
  FlopsModel m;
  for (const auto& [key, v] : sums) m.us_per_flop_[key] = std::exp(v.first / v.second);
  return m;
}

StatusOr<std::vector<double>> FlopsModel::Predict(const std::vector<KernelSpec>& specs) const {
  std::vector<double> out;
  out.reserve(specs.size());
  for (const KernelSpec& s : specs) {
    const int kind = static_cast<int>(KindOf(s));
    auto it = us_per_flop_.find({kind, s.threads});
    if (it == us_per_flop_.end()) {  // nearest thread count of the same kind
      int best = std::numeric_limits<int>::max();
      for (auto j = us_per_flop_.begin(); j != us_per_flop_.end(); ++j) {
        if (j->first.first == kind && std::abs(j->first.second - s.threads) < best) {
          best = std::abs(j->first.second - s.threads);
          it = j;
        }
      }
    }
    if (it == us_per_flop_.end()) {
      return Status::FailedPrecondition(std::string("the FLOPs model has no data for ") +
                                        KernelKindIdName(KindOf(s)) + " layers");
    }
    out.push_back(it->second * NonZeroFlops(s));
  }
  return out;
}

nlohmann::json RooflinePoint::ToJson() const {
  return {{"threads", threads}, {"peak_gflops", peak_gflops}, {"bandwidth_gbs", bandwidth_gbs}};
}

StatusOr<RooflinePoint> RooflinePoint::FromJson(const nlohmann::json& j) {
  RooflinePoint p;
  if (!j.is_object() || !j.contains("threads") || !j.contains("peak_gflops") || !j.contains("bandwidth_gbs") ||
      !j["threads"].is_number_integer() || !j["peak_gflops"].is_number() || !j["bandwidth_gbs"].is_number()) {
    return Status::InvalidArgument("roofline point needs integer threads and numbers peak_gflops, bandwidth_gbs");
  }
  p.threads = j["threads"].get<int>();
  p.peak_gflops = j["peak_gflops"].get<double>();
  p.bandwidth_gbs = j["bandwidth_gbs"].get<double>();
  return p;
}

StatusOr<RooflineModel> RooflineModel::Create(std::vector<RooflinePoint> points) {
  if (points.empty()) return Status::InvalidArgument("the roofline model needs a measured peak");
  for (const RooflinePoint& p : points) {
    if (!(p.peak_gflops > 0) || !(p.bandwidth_gbs > 0)) {
      return Status::InvalidArgument("roofline peak and bandwidth must be positive");
    }
  }
  RooflineModel m;
  m.points_ = std::move(points);
  return m;
}

StatusOr<std::vector<double>> RooflineModel::Predict(const std::vector<KernelSpec>& specs) const {
  std::vector<double> out;
  out.reserve(specs.size());
  for (const KernelSpec& s : specs) {
    const RooflinePoint* p = &points_[0];
    for (const RooflinePoint& q : points_) {
      if (std::abs(q.threads - s.threads) < std::abs(p->threads - s.threads)) p = &q;
    }
    const KernelShapeStats st = ShapeStats(s);
    const double compute_us = 2.0 * st.macs_nonzero / (p->peak_gflops * 1e3);
    const double memory_us = (st.weight_bytes + st.input_bytes + st.output_bytes) / (p->bandwidth_gbs * 1e3);
    out.push_back(std::max(compute_us, memory_us));
  }
  return out;
}

std::vector<double> LookupModel::Point(const KernelSpec& spec) const {
  const auto f = Features(spec);
  // Shape features only (batch .. out_hw, log flops, log bytes, sparsity), standardized.
  static const int kUsed[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 26};
  std::vector<double> p;
  for (int i : kUsed) {
    const bool linear_scale = i == 10 || i == 11 || i == 12 || i == 13 || i == 26;
    p.push_back(linear_scale ? f[i] : std::log2(1.0 + f[i]));
  }
  if (!mean_.empty()) {
    for (size_t i = 0; i < p.size(); ++i) p[i] = (p[i] - mean_[i]) / scale_[i];
  }
  return p;
}

StatusOr<LookupModel> LookupModel::Fit(const std::vector<KernelSample>& samples) {
  if (samples.empty()) return Status::InvalidArgument("the lookup model needs at least one sample");
  LookupModel m;
  std::vector<std::vector<double>> raw;
  for (const KernelSample& s : samples) raw.push_back(m.Point(s.spec));
  const size_t d = raw[0].size();
  m.mean_.assign(d, 0.0);
  m.scale_.assign(d, 0.0);
  for (const auto& p : raw)
    for (size_t i = 0; i < d; ++i) m.mean_[i] += p[i] / raw.size();
  for (const auto& p : raw)
    for (size_t i = 0; i < d; ++i) m.scale_[i] += (p[i] - m.mean_[i]) * (p[i] - m.mean_[i]) / raw.size();
  for (double& s : m.scale_) s = s > 0 ? std::sqrt(s) : 1.0;
  for (size_t k = 0; k < samples.size(); ++k) {
    Entry e;
    e.bucket = Bucket(samples[k].spec);
    e.kind_bucket = KernelKindIdName(KindOf(samples[k].spec));
    e.point = m.Point(samples[k].spec);
    e.macs_nonzero = std::max(1.0, ShapeStats(samples[k].spec).macs_nonzero);
    e.latency_us = samples[k].latency_us;
    m.entries_.push_back(std::move(e));
  }
  return m;
}

StatusOr<std::vector<double>> LookupModel::Predict(const std::vector<KernelSpec>& specs) const {
  std::vector<double> out;
  out.reserve(specs.size());
  for (const KernelSpec& s : specs) {
    const std::string bucket = Bucket(s), kind = KernelKindIdName(KindOf(s));
    const std::vector<double> p = Point(s);
    const Entry* best = nullptr;
    double best_d = std::numeric_limits<double>::infinity();
    for (int pass = 0; pass < 2 && !best; ++pass) {
      for (const Entry& e : entries_) {
        if (pass == 0 ? e.bucket != bucket : e.kind_bucket != kind) continue;
        double d = 0;
        for (size_t i = 0; i < p.size(); ++i) d += (p[i] - e.point[i]) * (p[i] - e.point[i]);
        if (d < best_d) {
          best_d = d;
          best = &e;
        }
      }
    }
    if (!best) {
      return Status::FailedPrecondition("the lookup table has no " + kind + " layers");
    }
    out.push_back(best->latency_us * std::max(1.0, ShapeStats(s).macs_nonzero) / best->macs_nonzero);
  }
  return out;
}

}  // namespace acs::predictors
