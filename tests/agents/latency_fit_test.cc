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

// Rows whose whole runs are exactly aten x aten_us + own x own_us + int8 x int8_us +
// overhead_us, stated net of `held_us` as a budget states them; int8 < 0: no int8 part.
std::vector<SplitRow> ExactRows(double aten, double own, double overhead_us, double held_us, double int8 = -1) {
  std::vector<SplitRow> rows;
  const double split[][3] = {{1000, 0, 0}, {600, 300, 0},   {300, 150, 200},
                             {800, 50, 0}, {100, 400, 300}, {200, 0, 600}};
  for (const auto& s : split) {
    SplitRow r;
    r.aten_us = s[0], r.own_us = s[1], r.int8_us = int8 < 0 ? 0 : s[2];
    r.measured_us = aten * r.aten_us + own * r.own_us + std::max(int8, 0.0) * r.int8_us + overhead_us - held_us;
    rows.push_back(r);
  }
  return rows;
}

TEST(LatencyFitTest, TheOverheadIsFittedWithTheTwoScales) {
  ScalesAndOverhead fit;
  ASSERT_TRUE(FitScalesAndOverhead(ExactRows(0.6, 1.3, 250, 40), 40, 0, 1000, true, &fit));
  EXPECT_FALSE(fit.int8_apart);  // no row has an int8 part
  EXPECT_NEAR(fit.aten_scale, 0.6, 1e-9);
  EXPECT_NEAR(fit.own_scale, 1.3, 1e-9);
  EXPECT_NEAR(fit.overhead_us, 250, 1e-6);
  EXPECT_NEAR(fit.residual, 0, 1e-18);
  // Held at 40 us, the two scales alone leave errors.
  ScalesAndOverhead held;
  ASSERT_TRUE(FitScales(ExactRows(0.6, 1.3, 250, 40), true, &held));
  held.overhead_us = 40;
  EXPECT_GT(WholeRunResidual(ExactRows(0.6, 1.3, 250, 40), 40, held), 1e-4);
}

TEST(LatencyFitTest, TheInt8LayersGetAScaleOfTheirOwnWhenTheRowsDetermineIt) {
  const std::vector<SplitRow> rows = ExactRows(0.6, 1.3, 0, 0, 0.8);
  ScalesAndOverhead apart;
  ASSERT_TRUE(FitScales(rows, true, &apart));
  EXPECT_TRUE(apart.int8_apart);
  EXPECT_EQ(apart.parameters(), 3);
  EXPECT_NEAR(apart.aten_scale, 0.6, 1e-9);
  EXPECT_NEAR(apart.own_scale, 1.3, 1e-9);
  EXPECT_NEAR(apart.int8_scale, 0.8, 1e-9);
  EXPECT_NEAR(apart.residual, 0, 1e-18);
  // One scale for all own kernels leaves errors.
  ScalesAndOverhead together;
  ASSERT_TRUE(FitScales(rows, false, &together));
  EXPECT_FALSE(together.int8_apart);
  EXPECT_DOUBLE_EQ(together.int8_scale, together.own_scale);
  EXPECT_GT(together.residual, 1e-4);
  // With the overhead too: four parameters, each recovered.
  ScalesAndOverhead all;
  ASSERT_TRUE(FitScalesAndOverhead(ExactRows(0.6, 1.3, 250, 40, 0.8), 40, 0, 1000, true, &all));
  EXPECT_TRUE(all.int8_apart);
  EXPECT_NEAR(all.int8_scale, 0.8, 1e-9);
  EXPECT_NEAR(all.overhead_us, 250, 1e-6);
  // An int8 scale past [0.2, 5] falls back to the shared one.
  ScalesAndOverhead wild;
  EXPECT_TRUE(!FitScales(ExactRows(0.6, 1.3, 0, 0, 40), true, &wild) || !wild.int8_apart);
}

TEST(LatencyFitTest, AnOverheadPastItsBoundsStopsAtTheNearerBound) {
  // The runs want 250 us outside the layers; allowed at most 100 us, the fit takes 100 us
  // and no overhead within the bounds leaves less residual.
  const std::vector<SplitRow> rows = ExactRows(0.6, 1.3, 250, 40);
  ScalesAndOverhead bounded;
  ASSERT_TRUE(FitScalesAndOverhead(rows, 40, 0, 100, true, &bounded));
  EXPECT_DOUBLE_EQ(bounded.overhead_us, 100);
  for (double overhead : {0.0, 50.0, 90.0, 99.0}) {
    ScalesAndOverhead at;
    ASSERT_TRUE(FitScalesAndOverhead(rows, 40, overhead, overhead, true, &at));
    EXPECT_DOUBLE_EQ(at.overhead_us, overhead);
    EXPECT_GT(at.residual, bounded.residual) << overhead;
  }
  // Below zero: runs faster than their layers' share wants stop at 0.
  ScalesAndOverhead floor;
  ASSERT_TRUE(FitScalesAndOverhead(ExactRows(0.6, 1.3, -200, 0), 0, 0, 1000, true, &floor));
  EXPECT_DOUBLE_EQ(floor.overhead_us, 0);
}

TEST(LatencyFitTest, RowsThatDoNotDetermineTheFitAreRefused) {
  std::vector<SplitRow> alike = ExactRows(0.6, 1.3, 250, 0);
  for (SplitRow& r : alike) r.aten_us = 1000, r.own_us = 0, r.measured_us = 850;
  ScalesAndOverhead fit;
  EXPECT_FALSE(FitScalesAndOverhead(alike, 0, 0, 1000, true, &fit));
  EXPECT_FALSE(FitScales(alike, true, &fit));
  // No row with a measurement: nothing to fit, and no residual.
  std::vector<SplitRow> unmeasured = alike;
  for (SplitRow& r : unmeasured) r.measured_us = 0;
  EXPECT_FALSE(FitScales(unmeasured, true, &fit));
  EXPECT_DOUBLE_EQ(WholeRunResidual(unmeasured, 0, ScalesAndOverhead{}), 0);
  // Scales past [0.2, 5] are refused.
  EXPECT_FALSE(FitScalesAndOverhead(ExactRows(9, 1.3, 250, 0), 0, 0, 10000, true, &fit));
}

// Probes of a model whose int8 layers run in it at another factor of their isolated kernels
// than its sparse layers: the budget prices each kind at its own scale and predicts every
// probe; with one scale for all own kernels (int8_scale false) some probe stays off.
TEST(LatencyFitTest, ProbesGiveTheInt8KernelsTheirOwnScale) {
  auto m = Import("residual");
  const predictors::TrainedPredictor predictor = MadeUpPredictor();
  StatusOr<LatencyBudget> plain = MakeLatencyBudget(m->graph, predictor, 1, 0.5);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  const double share = 0.1;
  auto layers_us = [&](const Policy& p) {
    return test_util::ScaledLayersUs(*plain->cost, m->graph, ResolvePolicy(p, m->graph), 0.6, 1.1, 0.7);
  };
  const double anchor = layers_us(Policy()) / (1 - share), dense = 1.2 * anchor;
  ModelCalibration measured = Anchored(dense, anchor, share);
  for (const Policy& p : ProbePolicies(m->graph, SearchSpace{})) {
    measured.probes.push_back({p, (share * anchor + layers_us(p)) / dense});
  }
  auto worst_error = [&](const LatencyBudget& b) {
    double worst = 0;
    for (const MeasuredPolicy& p : measured.probes) {
      worst = std::max(worst, std::abs(b.PredictUs(m->graph, p.policy) / (p.ratio * dense) - 1));
    }
    return worst;
  };
  StatusOr<LatencyBudget> apart = MakeLatencyBudget(m->graph, predictor, 1, 0.5, measured);
  ASSERT_TRUE(apart.ok()) << apart.status().ToString();
  EXPECT_NEAR(apart->layer_scale, 0.6, 1e-6);
  EXPECT_NEAR(apart->own_kernel_factor, 1.1 / 0.6, 1e-6);
  EXPECT_NEAR(apart->int8_kernel_factor, 0.7 / 0.6, 1e-6);
  EXPECT_LT(worst_error(*apart), 1e-6);

  ModelCalibration one_scale = measured;
  one_scale.int8_scale = false;
  StatusOr<LatencyBudget> shared = MakeLatencyBudget(m->graph, predictor, 1, 0.5, one_scale);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_DOUBLE_EQ(shared->int8_kernel_factor, shared->own_kernel_factor);
  EXPECT_GT(worst_error(*shared), 0.01);
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
    return test_util::ScaledLayersUs(*plain->cost, m->graph, ResolvePolicy(p, m->graph), aten_scale, own_scale);
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
