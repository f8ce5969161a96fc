#include "agents/latency_fit.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace acs {
namespace {

// The most the closed loop's refit moves a scale, either way: a measurement further off says
// more about the measurement than about the layers.
constexpr double kMaxRefitChange = 2;

// Fewest verified policies the refit fits the overhead on: with fewer, a third parameter
// follows the measurements' noise.
constexpr size_t kMinPoliciesForOverhead = 3;

bool ScaleInRange(double s) { return s >= 0.2 && s <= 5; }

// One equation of a weighted least-squares fit: coef . x ~ target.
struct LinearRow {
  double x[3] = {0, 0, 0};
  double target = 1;
  double weight = 1;
};

double Determinant(const double m[3][3], int n) {
  if (n == 2) return m[0][0] * m[1][1] - m[0][1] * m[1][0];
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

// Minimizes sum weight x (coef . x - target)^2 over the first n (2 or 3) coefficients.
// False when the normal equations are near singular (determinant under 1e-6 x the product
// of their diagonal).
bool SolveWeighted(const std::vector<LinearRow>& rows, int n, double coef[3]) {
  double a[3][3] = {}, b[3] = {};
  for (const LinearRow& r : rows) {
    for (int i = 0; i < n; ++i) {
      b[i] += r.weight * r.x[i] * r.target;
      for (int j = 0; j < n; ++j) a[i][j] += r.weight * r.x[i] * r.x[j];
    }
  }
  const double det = Determinant(a, n);
  double diagonal = 1;
  for (int i = 0; i < n; ++i) diagonal *= a[i][i];
  if (!(det > 1e-6 * diagonal)) return false;
  for (int i = 0; i < n; ++i) {  // Cramer's rule
    double m[3][3];
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) m[r][c] = c == i ? b[r] : a[r][c];
    }
    coef[i] = Determinant(m, n) / det;
  }
  return true;
}

// The whole runs of `rows` (measured_us + overhead_before_us) with the overhead at
// `overhead_us`, as equations of the two scales (n = 2) or of the scales and the overhead (n = 3).
std::vector<LinearRow> WholeRunEquations(const std::vector<SplitRow>& rows, double overhead_before_us,
                                         double overhead_us, int n) {
  std::vector<LinearRow> equations;
  for (const SplitRow& r : rows) {
    const double run_us = r.measured_us + overhead_before_us;
    if (!(r.measured_us > 0) || !(run_us > 0)) continue;
    LinearRow e;
    e.x[0] = r.aten_us / run_us, e.x[1] = r.own_us / run_us;
    if (n == 3) {
      e.x[2] = 1 / run_us;
    } else {
      e.target = 1 - overhead_us / run_us;
    }
    e.weight = r.weight;
    equations.push_back(e);
  }
  return equations;
}

}  // namespace

bool FitTwoScales(const std::vector<SplitRow>& rows, double* aten_scale, double* own_scale, double* residual) {
  std::vector<LinearRow> equations;
  for (const SplitRow& r : rows) {
    if (!(r.measured_us > 0)) continue;
    LinearRow e;
    e.x[0] = r.aten_us / r.measured_us, e.x[1] = r.own_us / r.measured_us;
    e.weight = r.weight;
    equations.push_back(e);
  }
  double coef[3];
  if (!SolveWeighted(equations, 2, coef)) return false;
  *aten_scale = coef[0];
  *own_scale = coef[1];
  *residual = 0;
  for (const LinearRow& e : equations) {
    const double error = coef[0] * e.x[0] + coef[1] * e.x[1] - 1;
    *residual += e.weight * error * error;
  }
  return ScaleInRange(*aten_scale) && ScaleInRange(*own_scale);
}

double WholeRunResidual(const std::vector<SplitRow>& rows, double overhead_before_us, const ScalesAndOverhead& fit) {
  double residual = 0;
  for (const LinearRow& e : WholeRunEquations(rows, overhead_before_us, 0, 3)) {
    const double error = fit.aten_scale * e.x[0] + fit.own_scale * e.x[1] + fit.overhead_us * e.x[2] - 1;
    residual += e.weight * error * error;
  }
  return residual;
}

bool FitScalesAndOverhead(const std::vector<SplitRow>& rows, double overhead_before_us, double min_us, double max_us,
                          ScalesAndOverhead* fit) {
  double coef[3];
  if (!SolveWeighted(WholeRunEquations(rows, overhead_before_us, 0, 3), 3, coef)) return false;
  double overhead_us = coef[2];
  if (overhead_us < min_us || overhead_us > max_us) {
    // The residual is convex in the overhead: past a bound, the bound is the best within them.
    overhead_us = std::clamp(overhead_us, min_us, max_us);
    if (!SolveWeighted(WholeRunEquations(rows, overhead_before_us, overhead_us, 2), 2, coef)) return false;
  }
  fit->aten_scale = coef[0];
  fit->own_scale = coef[1];
  fit->overhead_us = overhead_us;
  fit->residual = WholeRunResidual(rows, overhead_before_us, *fit);
  return ScaleInRange(fit->aten_scale) && ScaleInRange(fit->own_scale);
}

double VerifiedScale(const Graph& graph, const LatencyBudget& b, const std::vector<MeasuredPolicy>& verified,
                     int* used) {
  std::vector<double> factors;
  for (const MeasuredPolicy& m : verified) {
    double layers_us = 0;
    try {
      layers_us = b.layer_scale * b.cost->PolicyLayersUs(graph, m.policy);
    } catch (const std::runtime_error&) {
      continue;
    }
    const double measured_layers_us = m.ratio * b.dense_us - b.overhead_us;
    if (layers_us > 0 && measured_layers_us > 0) factors.push_back(measured_layers_us / layers_us);
  }
  *used = static_cast<int>(factors.size());
  if (factors.empty()) return 1;
  std::sort(factors.begin(), factors.end());
  const size_t n = factors.size();
  const double median = n % 2 ? factors[n / 2] : 0.5 * (factors[n / 2 - 1] + factors[n / 2]);
  return std::clamp(median, 1 / kMaxRefitChange, kMaxRefitChange);
}

bool RefitOnVerified(const Graph& graph, std::vector<SplitRow> rows, const ModelCalibration& measured,
                     LatencyBudget* b) {
  std::vector<SplitRow> verified;
  for (const MeasuredPolicy& m : measured.verified) {
    SplitRow row;
    try {
      b->cost->SplitPolicyLayersUs(graph, ResolvePolicy(m.policy, graph), &row.aten_us, &row.own_us);
    } catch (const std::runtime_error&) {
      continue;
    }
    row.measured_us = m.ratio * b->dense_us - b->overhead_us;
    if (row.measured_us > 0) verified.push_back(row);
  }
  if (verified.empty() || rows.empty()) return false;
  double others = 0;
  for (const SplitRow& r : rows) others += r.weight;
  for (SplitRow& r : verified) r.weight = others / static_cast<double>(verified.size());
  const double anchor_run_us = rows.front().measured_us + b->overhead_us;
  rows.insert(rows.end(), verified.begin(), verified.end());

  const double own_before = b->layer_scale * b->own_kernel_factor;
  auto plausible = [&](const ScalesAndOverhead& f) {
    auto within = [](double change) { return change >= 1 / kMaxRefitChange && change <= kMaxRefitChange; };
    return within(f.aten_scale / b->layer_scale) && within(f.own_scale / own_before);
  };
  ScalesAndOverhead best;
  bool found = false;
  ScalesAndOverhead held;  // the overhead as it was
  held.overhead_us = b->overhead_us;
  if (FitTwoScales(rows, &held.aten_scale, &held.own_scale, &held.residual) && plausible(held)) {
    held.residual = WholeRunResidual(rows, b->overhead_us, held);
    best = held;
    found = true;
  }
  ScalesAndOverhead fitted;
  const double n = static_cast<double>(rows.size());
  if (measured.refit_overhead && verified.size() >= kMinPoliciesForOverhead &&
      FitScalesAndOverhead(rows, b->overhead_us, 0, 0.5 * anchor_run_us, &fitted) && plausible(fitted) &&
      (!found || fitted.residual / (n - 3) < best.residual / (n - 2))) {
    best = fitted;
    found = true;
  }
  if (!found) return false;
  b->verified_scale = best.aten_scale / b->layer_scale;
  b->verified_own_scale = best.own_scale / own_before;
  b->verified_policies = static_cast<int>(verified.size());
  if (best.overhead_us != b->overhead_us) {
    b->overhead_before_refit_us = b->overhead_us;
    b->overhead_us = best.overhead_us;
  }
  b->layer_scale = best.aten_scale;
  b->own_kernel_factor = best.own_scale / best.aten_scale;
  b->cost->SetOwnKernelFactor(b->own_kernel_factor);
  return true;
}

}  // namespace acs
