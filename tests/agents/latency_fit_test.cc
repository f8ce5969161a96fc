#include "agents/latency_fit.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/agents/agent_test_util.h"
#include "tests/agents/latency_test_util.h"

namespace acs {
namespace {

using test_util::Anchored;
using test_util::Import;
using test_util::MadeUpPredictor;

// Rows whose whole runs are exactly aten x aten_us + own x own_us + overhead_us, stated net
// of `held_us` as a budget states them.
std::vector<SplitRow> ExactRows(double aten, double own, double overhead_us, double held_us) {
  std::vector<SplitRow> rows;
  const double split[][2] = {{1000, 0}, {600, 300}, {300, 150}, {800, 50}, {100, 400}};
  for (const auto& s : split) {
    SplitRow r;
    r.aten_us = s[0], r.own_us = s[1];
    r.measured_us = aten * s[0] + own * s[1] + overhead_us - held_us;
    rows.push_back(r);
  }
  return rows;
}

TEST(LatencyFitTest, TheOverheadIsFittedWithTheTwoScales) {
  ScalesAndOverhead fit;
  ASSERT_TRUE(FitScalesAndOverhead(ExactRows(0.6, 1.3, 250, 40), 40, 0, 1000, &fit));
  EXPECT_NEAR(fit.aten_scale, 0.6, 1e-9);
  EXPECT_NEAR(fit.own_scale, 1.3, 1e-9);
  EXPECT_NEAR(fit.overhead_us, 250, 1e-6);
  EXPECT_NEAR(fit.residual, 0, 1e-18);
  // Held at 40 us, the two scales alone leave errors.
  double aten = 0, own = 0, residual = 0;
  ASSERT_TRUE(FitTwoScales(ExactRows(0.6, 1.3, 250, 40), &aten, &own, &residual));
  EXPECT_GT(WholeRunResidual(ExactRows(0.6, 1.3, 250, 40), 40, {aten, own, 40, 0}), 1e-4);
}

TEST(LatencyFitTest, AnOverheadPastItsBoundsStopsAtTheNearerBound) {
  // The runs want 250 us outside the layers; allowed at most 100 us, the fit takes 100 us
  // and no overhead within the bounds leaves less residual.
  const std::vector<SplitRow> rows = ExactRows(0.6, 1.3, 250, 40);
  ScalesAndOverhead bounded;
  ASSERT_TRUE(FitScalesAndOverhead(rows, 40, 0, 100, &bounded));
  EXPECT_DOUBLE_EQ(bounded.overhead_us, 100);
  for (double overhead : {0.0, 50.0, 90.0, 99.0}) {
    ScalesAndOverhead at;
    ASSERT_TRUE(FitScalesAndOverhead(rows, 40, overhead, overhead, &at));
    EXPECT_DOUBLE_EQ(at.overhead_us, overhead);
    EXPECT_GT(at.residual, bounded.residual) << overhead;
  }
  // Below zero: runs faster than their layers' share wants stop at 0.
  ScalesAndOverhead floor;
  ASSERT_TRUE(FitScalesAndOverhead(ExactRows(0.6, 1.3, -200, 0), 0, 0, 1000, &floor));
  EXPECT_DOUBLE_EQ(floor.overhead_us, 0);
}

TEST(LatencyFitTest, RowsThatDoNotDetermineTheFitAreRefused) {
  std::vector<SplitRow> alike = ExactRows(0.6, 1.3, 250, 0);
  for (SplitRow& r : alike) r.aten_us = 1000, r.own_us = 0, r.measured_us = 850;
  ScalesAndOverhead fit;
  EXPECT_FALSE(FitScalesAndOverhead(alike, 0, 0, 1000, &fit));
  double aten = 0, own = 0, residual = 0;
  EXPECT_FALSE(FitTwoScales(alike, &aten, &own, &residual));
  // Scales past [0.2, 5] are refused.
  EXPECT_FALSE(FitScalesAndOverhead(ExactRows(9, 1.3, 250, 0), 0, 0, 10000, &fit));
}

// A policy of `config` on every compressible layer of `graph`.
Policy Uniform(const Graph& graph, const LayerConfig& config) {
  Policy p;
  for (const Layer& l : graph.layers) {
    if (l.compressible && !l.depthwise()) p.layers[l.name] = config;
  }
  return p;
}

// The closed loop on a model whose runs carry a constant the profile missed (0.4 x the dense
// layers outside them where the profile says 5% of the anchor): with three verified policies the refit
// fits it and predicts every measured policy; held (refit_overhead false) or with two
// policies, the overhead stays and the predictions stay off.
TEST(LatencyFitTest, TheRefitFitsAnOverheadTheProfileMissed) {
  auto m = Import("residual");
  const predictors::TrainedPredictor predictor = MadeUpPredictor();
  StatusOr<LatencyBudget> plain = MakeLatencyBudget(m->graph, predictor, 1, 0.5);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  const double aten_scale = 0.6, own_scale = 1.1;
  auto layers_us = [&](const Policy& p) {
    double aten = 0, own = 0;
    plain->cost->SplitPolicyLayersUs(m->graph, ResolvePolicy(p, m->graph), &aten, &own);
    return aten_scale * aten + own_scale * own;
  };
  const double constant = 0.4 * layers_us(Policy());
  auto run_us = [&](const Policy& p) { return layers_us(p) + constant; };
  const double anchor = run_us(Policy()), dense = 1.2 * anchor;
  ModelCalibration measured = Anchored(dense, anchor, 0.05);
  for (const Policy& p : ProbePolicies(m->graph, SearchSpace{})) measured.probes.push_back({p, run_us(p) / dense});
  LayerConfig channels{0.5, Pattern::kChannel}, int8, block{0.8, Pattern::kBlock, 8};
  int8.precision = Precision::kInt8;
  for (const LayerConfig& c : {channels, int8, block}) {
    const Policy p = Uniform(m->graph, c);
    measured.verified.push_back({p, run_us(p) / dense});
  }
  auto worst_error = [&](const LatencyBudget& b) {
    double worst = 0;
    for (const auto* list : {&measured.probes, &measured.verified}) {
      for (const MeasuredPolicy& p : *list) {
        worst = std::max(worst, std::abs(b.PredictUs(m->graph, p.policy) / (p.ratio * dense) - 1));
      }
    }
    return worst;
  };

  StatusOr<LatencyBudget> fitted = MakeLatencyBudget(m->graph, predictor, 1, 0.5, measured);
  ASSERT_TRUE(fitted.ok()) << fitted.status().ToString();
  EXPECT_EQ(fitted->verified_policies, 3);
  EXPECT_NEAR(fitted->overhead_before_refit_us, 0.05 * anchor, 1e-9 * anchor);
  EXPECT_NEAR(fitted->overhead_us, constant, 1e-6 * constant);
  EXPECT_LT(worst_error(*fitted), 1e-6);
  // The Env's budget keeps the whole model at half the dense latency with the new overhead.
  EXPECT_NEAR(fitted->layer_scale * fitted->env_budget * DenseCost(m->graph, *fitted->cost) + fitted->overhead_us,
              0.5 * dense, 1e-9 * dense);

  ModelCalibration held = measured;
  held.refit_overhead = false;
  StatusOr<LatencyBudget> kept = MakeLatencyBudget(m->graph, predictor, 1, 0.5, held);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_DOUBLE_EQ(kept->overhead_before_refit_us, -1);
  EXPECT_NEAR(kept->overhead_us, 0.05 * anchor, 1e-9 * anchor);
  EXPECT_GT(worst_error(*kept), 0.01);

  ModelCalibration two = measured;
  two.verified.pop_back();
  StatusOr<LatencyBudget> few = MakeLatencyBudget(m->graph, predictor, 1, 0.5, two);
  ASSERT_TRUE(few.ok()) << few.status().ToString();
  EXPECT_DOUBLE_EQ(few->overhead_before_refit_us, -1);
  EXPECT_EQ(few->verified_policies, 2);
}

}  // namespace
}  // namespace acs
