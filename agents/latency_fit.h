// How a latency budget's scales are fitted to measurements of the model (MakeLatencyBudget's
// parts): least squares of relative errors over rows of predicted and measured latency.
// Internal to agents/; callers use MakeLatencyBudget (agents/latency_cost.h).
#pragma once

#include <vector>

#include "agents/latency_cost.h"

namespace acs {

// A measured policy's layers as the kernels predict them (unscaled, LayerSplit), and the
// measurement of those layers: the whole run minus the budget's overhead.
struct SplitRow {
  double aten_us = 0, own_us = 0, int8_us = 0;  // unscaled predictions (LayerSplit)
  double measured_us = 0;                       // of the layers: the run minus the overhead
  double weight = 1;
};

// Scales of the layers' parts, and how well they fit.
struct ScalesAndOverhead {
  double aten_scale = 0, own_scale = 0;
  double int8_scale = 0;         // = own_scale when not fitted apart
  bool int8_apart = false;       // the int8 part had a scale of its own (one more parameter)
  double overhead_us = 0;        // whole runs: aten x aten_us + own x own_us + int8 x int8_us + this
  double residual = 0;           // weighted sum of squared relative errors
  int parameters() const { return 2 + int8_apart; }
};

// One scale for the layers on aten ops and one for those on the runtime's own kernels such
// that each row's layers are predicted at its measurement (weighted least squares of the
// relative errors; residual: of the layers); with `int8_apart` a third for the own int8
// layers when the rows determine it within [0.2, 5] (else it shares the own scale). False
// when the rows do not determine the two or a scale leaves [0.2, 5].
bool FitScales(const std::vector<SplitRow>& rows, bool int8_apart, ScalesAndOverhead* fit);

// The scales (as FitScales) and the overhead fitted together, the overhead within
// [min_us, max_us] (at the nearer bound when the free optimum lies outside): weighted least
// squares of the whole runs' relative errors (a row's whole run: measured_us +
// overhead_before_us, the overhead its measured_us was taken net of). False when the rows
// do not determine them or a scale leaves [0.2, 5].
bool FitScalesAndOverhead(const std::vector<SplitRow>& rows, double overhead_before_us, double min_us, double max_us,
                          bool int8_apart, ScalesAndOverhead* fit);

// The weighted sum of squared relative errors of the whole runs of `rows` (as above) priced by `fit`.
double WholeRunResidual(const std::vector<SplitRow>& rows, double overhead_before_us, const ScalesAndOverhead& fit);

// The factor on the layers' predictions (beyond b.layer_scale) that puts each measured policy
// at its measured latency (ratio x b.dense_us, the statistic the anchor has): the median
// over the policies, clamped to [0.5, 2]; 1 without any. Policies the predictor cannot
// price are left out; *used counts the others.
double VerifiedScale(const Graph& graph, const LatencyBudget& b, const std::vector<MeasuredPolicy>& verified,
                     int* used);

// With probes: the scales fitted again (FitScales, the int8 part apart when
// measured.int8_scale) on the anchor's and the probes' `rows` and the verified policies
// together (these weighing as much as the others: they are policies the
// search proposes, the probes only the corners of its space), in the context b chose. With at
// least three verified policies and measured.refit_overhead, the overhead is fitted with
// them (within [0, half the anchor's run]) and kept when it leaves less residual per degree
// of freedom than the overhead held. False (b unchanged) without verified policies the
// predictor can price, when the fit fails or when it would move a scale by more than x2
// either way.
bool RefitOnVerified(const Graph& graph, std::vector<SplitRow> rows, const ModelCalibration& measured,
                     LatencyBudget* b);

}  // namespace acs
