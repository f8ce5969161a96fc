#include "predictors/model_latency.h"

#include <cmath>
#include <cstdlib>

namespace acs::predictors {
namespace {

constexpr int kOverheadFeatures = 4;

std::vector<double> OverheadFeatures(const ModelShape& s) {
  return {1.0, static_cast<double>(s.layers.size()), s.other_ops, s.other_bytes / 1e6};
}

// Solves (A + lambda I) x = b by Gaussian elimination with partial pivoting (A is small
// and symmetric positive semi-definite; lambda keeps it regular).
std::vector<double> Solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
    std::swap(a[c], a[p]);
    std::swap(b[c], b[p]);
    if (std::abs(a[c][c]) < 1e-300) continue;
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n, 0.0);
  for (size_t c = n; c-- > 0;) {
    double v = b[c];
    for (size_t k = c + 1; k < n; ++k) v -= a[c][k] * x[k];
    x[c] = std::abs(a[c][c]) < 1e-300 ? 0.0 : v / a[c][c];
  }
  return x;
}

}  // namespace

StatusOr<OverheadModel> OverheadModel::Fit(const std::vector<ModelShape>& shapes,
                                           const std::vector<double>& measured_us,
                                           const std::vector<double>& kernel_sum_us) {
  if (shapes.empty() || shapes.size() != measured_us.size() || shapes.size() != kernel_sum_us.size()) {
    return Status::InvalidArgument("the overhead model needs one measurement and one kernel sum per model");
  }
  std::map<int, std::pair<std::vector<std::vector<double>>, std::vector<double>>> normal;
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto& [ata, atb] = normal[shapes[i].threads];
    if (ata.empty()) {
      ata.assign(kOverheadFeatures, std::vector<double>(kOverheadFeatures, 0.0));
      atb.assign(kOverheadFeatures, 0.0);
    }
    const std::vector<double> f = OverheadFeatures(shapes[i]);
    const double residual = measured_us[i] - kernel_sum_us[i];
    for (int r = 0; r < kOverheadFeatures; ++r) {
      atb[r] += f[r] * residual;
      for (int c = 0; c < kOverheadFeatures; ++c) ata[r][c] += f[r] * f[c];
    }
  }
  OverheadModel m;
  for (auto& [threads, eq] : normal) {
    auto& [ata, atb] = eq;
    // Ridge term relative to the scale of each feature's diagonal.
    for (int r = 0; r < kOverheadFeatures; ++r) ata[r][r] += 1e-3 * (ata[r][r] + 1e-9);
    m.weights_[threads] = Solve(ata, atb);
  }
  return m;
}

double OverheadModel::Predict(const ModelShape& shape) const {
  if (weights_.empty()) return 0.0;
  auto best = weights_.begin();
  for (auto it = weights_.begin(); it != weights_.end(); ++it) {
    if (std::abs(it->first - shape.threads) < std::abs(best->first - shape.threads)) best = it;
  }
  const std::vector<double> f = OverheadFeatures(shape);
  double v = 0;
  for (int i = 0; i < kOverheadFeatures; ++i) v += best->second[i] * f[i];
  return v;
}

nlohmann::json OverheadModel::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [threads, w] : weights_) j[std::to_string(threads)] = w;
  return j;
}

StatusOr<OverheadModel> OverheadModel::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("overhead model must be a JSON object");
  OverheadModel m;
  for (const auto& item : j.items()) {
    char* end = nullptr;
    const long threads = std::strtol(item.key().c_str(), &end, 10);
    if (*end != '\0' || threads < 1 || !item.value().is_array() || item.value().size() != kOverheadFeatures) {
      return Status::InvalidArgument("overhead model entry '" + item.key() + "' is malformed");
    }
    std::vector<double> w;
    for (const auto& v : item.value()) {
      if (!v.is_number()) return Status::InvalidArgument("overhead model weights must be numbers");
      w.push_back(v.get<double>());
    }
    m.weights_[static_cast<int>(threads)] = std::move(w);
  }
  return m;
}

StatusOr<std::vector<double>> KernelSums(const LatencyModel& kernels, const std::vector<ModelShape>& shapes) {
  std::vector<KernelSpec> all;
  for (const ModelShape& s : shapes) all.insert(all.end(), s.layers.begin(), s.layers.end());
  ACS_ASSIGN_OR_RETURN(std::vector<double> pred, kernels.Predict(all));
  std::vector<double> sums;
  size_t k = 0;
  for (const ModelShape& s : shapes) {
    double sum = 0;
    for (size_t i = 0; i < s.layers.size(); ++i) sum += pred[k++];
    sums.push_back(sum);
  }
  return sums;
}

StatusOr<std::vector<double>> PredictModels(const LatencyModel& kernels, const OverheadModel& overhead,
                                            const std::vector<ModelShape>& shapes) {
  ACS_ASSIGN_OR_RETURN(std::vector<double> sums, KernelSums(kernels, shapes));
  for (size_t i = 0; i < shapes.size(); ++i) sums[i] += overhead.Predict(shapes[i]);
  return sums;
}

}  // namespace acs::predictors
