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
  double x[4] = {0, 0, 0, 0};
  double target = 1;
  double weight = 1;
};

// Minimizes sum weight x (coef . x - target)^2 over the first n (at most 4) coefficients.
// False when the normal equations are near singular (determinant under 1e-6 x the product
// of their diagonal).
bool SolveWeighted(const std::vector<LinearRow>& rows, int n, double coef[4]) {
  double a[4][5] = {};
  for (const LinearRow& r : rows) {
    for (int i = 0; i < n; ++i) {
      a[i][n] += r.weight * r.x[i] * r.target;
      for (int j = 0; j < n; ++j) a[i][j] += r.weight * r.x[i] * r.x[j];
    }
  }
  double diagonal = 1, det = 1;
  for (int i = 0; i < n; ++i) diagonal *= a[i][i];
  for (int c = 0; c < n; ++c) {  // Gauss-Jordan with partial pivoting; det = product of pivots
    int pivot = c;
    for (int r = c + 1; r < n; ++r) pivot = std::abs(a[r][c]) > std::abs(a[pivot][c]) ? r : pivot;
    if (pivot != c) {
      std::swap(a[c], a[pivot]);
      det = -det;
    }
    det *= a[c][c];
    if (a[c][c] == 0) return false;
    for (int r = 0; r < n; ++r) {
      if (r == c) continue;
      const double k = a[r][c] / a[c][c];
      for (int j = c; j <= n; ++j) a[r][j] -= k * a[c][j];
    }
  }
  if (!(det > 1e-6 * diagonal)) return false;
  for (int i = 0; i < n; ++i) coef[i] = a[i][n] / a[i][i];
  return true;
}

// The layers' columns of a row: aten, own, and int8 apart or added to own.
void LayerColumns(const SplitRow& r, bool int8_apart, double scale, double x[4]) {
  x[0] = r.aten_us * scale;
  x[1] = (r.own_us + (int8_apart ? 0 : r.int8_us)) * scale;
  if (int8_apart) x[2] = r.int8_us * scale;
}

// The rows as equations of the layers' scales, relative to each row's layers
// (overhead_before_us < 0) or to its whole run with the overhead at overhead_us, or with the
// overhead a last unknown (fit_overhead); *n: the unknowns (set even when no row counts).
std::vector<LinearRow> Equations(const std::vector<SplitRow>& rows, bool int8_apart, double overhead_before_us,
                                 double overhead_us, bool fit_overhead, int* n) {
  *n = 2 + int8_apart + fit_overhead;
  std::vector<LinearRow> equations;
  for (const SplitRow& r : rows) {
    const double run_us = overhead_before_us < 0 ? r.measured_us : r.measured_us + overhead_before_us;
    if (!(r.measured_us > 0) || !(run_us > 0)) continue;
    LinearRow e;
    LayerColumns(r, int8_apart, 1 / run_us, e.x);
    if (fit_overhead) {
      e.x[*n - 1] = 1 / run_us;
    } else if (overhead_before_us >= 0) {
      e.target = 1 - overhead_us / run_us;
    }
    e.weight = r.weight;
    equations.push_back(e);
  }
  return equations;
}

// The fit from solved coefficients; false when a scale leaves [0.2, 5].
bool Scales(const double coef[4], bool int8_apart, ScalesAndOverhead* fit) {
  fit->aten_scale = coef[0];
  fit->own_scale = coef[1];
  fit->int8_apart = int8_apart;
  fit->int8_scale = int8_apart ? coef[2] : coef[1];
  return ScaleInRange(fit->aten_scale) && ScaleInRange(fit->own_scale) && ScaleInRange(fit->int8_scale);
}

// Weighted sum of squared errors of `equations` under `coef`.
double Residual(const std::vector<LinearRow>& equations, const double coef[4], int n) {
  double residual = 0;
  for (const LinearRow& e : equations) {
    double error = -e.target;
    for (int i = 0; i < n; ++i) error += coef[i] * e.x[i];
    residual += e.weight * error * error;
  }
  return residual;
}

bool HasInt8(const std::vector<SplitRow>& rows) {
  for (const SplitRow& r : rows) {
    if (r.int8_us > 0) return true;
  }
  return false;
}

// FitScales with the int8 part apart or not.
bool FitScalesAs(const std::vector<SplitRow>& rows, bool int8_apart, ScalesAndOverhead* fit) {
  int n = 0;
  const std::vector<LinearRow> equations = Equations(rows, int8_apart, -1, 0, false, &n);
  double coef[4];
  if (equations.empty() || !SolveWeighted(equations, n, coef)) return false;
  fit->overhead_us = 0;
  fit->residual = Residual(equations, coef, n);
  return Scales(coef, int8_apart, fit);
}

// FitScalesAndOverhead with the int8 part apart or not.
bool FitScalesAndOverheadAs(const std::vector<SplitRow>& rows, double overhead_before_us, double min_us,
                            double max_us, bool int8_apart, ScalesAndOverhead* fit) {
  int n = 0;
  std::vector<LinearRow> equations = Equations(rows, int8_apart, overhead_before_us, 0, true, &n);
  double coef[4];
  if (equations.empty() || !SolveWeighted(equations, n, coef)) return false;
  double overhead_us = coef[n - 1];
  if (overhead_us < min_us || overhead_us > max_us) {
    // The residual is convex in the overhead: past a bound, the bound is the best within them.
    overhead_us = std::clamp(overhead_us, min_us, max_us);
    equations = Equations(rows, int8_apart, overhead_before_us, overhead_us, false, &n);
    if (!SolveWeighted(equations, n, coef)) return false;
  }
  if (!Scales(coef, int8_apart, fit)) return false;
  fit->overhead_us = overhead_us;
  fit->residual = WholeRunResidual(rows, overhead_before_us, *fit);
  return true;
}

}  // namespace

bool FitScales(const std::vector<SplitRow>& rows, bool int8_apart, ScalesAndOverhead* fit) {
  return (int8_apart && HasInt8(rows) && FitScalesAs(rows, true, fit)) || FitScalesAs(rows, false, fit);
}

double WholeRunResidual(const std::vector<SplitRow>& rows, double overhead_before_us, const ScalesAndOverhead& fit) {
  int n = 0;
  const std::vector<LinearRow> equations = Equations(rows, fit.int8_apart, overhead_before_us, 0, true, &n);
  double coef[4] = {fit.aten_scale, fit.own_scale, 0, 0};
  if (fit.int8_apart) coef[2] = fit.int8_scale;
  coef[n - 1] = fit.overhead_us;
  return Residual(equations, coef, n);
}

bool FitScalesAndOverhead(const std::vector<SplitRow>& rows, double overhead_before_us, double min_us, double max_us,
                          bool int8_apart, ScalesAndOverhead* fit) {
  return (int8_apart && HasInt8(rows) &&
          FitScalesAndOverheadAs(rows, overhead_before_us, min_us, max_us, true, fit)) ||
         FitScalesAndOverheadAs(rows, overhead_before_us, min_us, max_us, false, fit);
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
    LayerSplit split;
    try {
      split = b->cost->SplitPolicyLayersUs(graph, ResolvePolicy(m.policy, graph));
    } catch (const std::runtime_error&) {
      continue;
    }
    SplitRow row{split.aten_us, split.own_us, split.int8_us};
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
  const double int8_before = b->layer_scale * b->int8_kernel_factor;
  auto plausible = [&](const ScalesAndOverhead& f) {
    auto within = [](double change) { return change >= 1 / kMaxRefitChange && change <= kMaxRefitChange; };
    return within(f.aten_scale / b->layer_scale) && within(f.own_scale / own_before) &&
           within(f.int8_scale / int8_before);
  };
  ScalesAndOverhead best;
  bool found = false;
  ScalesAndOverhead held;  // the overhead as it was
  if (FitScales(rows, measured.int8_scale, &held) && plausible(held)) {
    held.overhead_us = b->overhead_us;
    held.residual = WholeRunResidual(rows, b->overhead_us, held);
    best = held;
    found = true;
  }
  ScalesAndOverhead fitted;
  const double n = static_cast<double>(rows.size());
  if (measured.refit_overhead && verified.size() >= kMinPoliciesForOverhead &&
      FitScalesAndOverhead(rows, b->overhead_us, 0, 0.5 * anchor_run_us, measured.int8_scale, &fitted) &&
      plausible(fitted) &&
      (!found || fitted.residual / (n - fitted.parameters() - 1) < best.residual / (n - best.parameters()))) {
    best = fitted;
    found = true;
  }
  if (!found) return false;
  b->verified_scale = best.aten_scale / b->layer_scale;
  b->verified_own_scale = best.own_scale / own_before;
  b->verified_int8_scale = best.int8_scale / int8_before;
  b->verified_policies = static_cast<int>(verified.size());
  if (best.overhead_us != b->overhead_us) {
    b->overhead_before_refit_us = b->overhead_us;
    b->overhead_us = best.overhead_us;
  }
  b->layer_scale = best.aten_scale;
  b->own_kernel_factor = best.own_scale / best.aten_scale;
  b->int8_kernel_factor = best.int8_scale / best.aten_scale;
  b->cost->SetOwnKernelFactor(b->own_kernel_factor);
  b->cost->SetInt8KernelFactor(b->int8_kernel_factor);
  return true;
}

}  // namespace acs
