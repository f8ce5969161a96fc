// Each layer of a model under a policy as report.json's "layers" lists it (docs/jobs.md):
// its FLOPs dense and as compressed (FlopsCostModel, the terms of PolicyCost), and, when
// the search priced latency, its predicted microseconds dense and as compressed (the terms
// of LatencyBudget::PredictUs, calibrated as the search's costs were).
#pragma once

#include <nlohmann/json.hpp>

#include "agents/latency_cost.h"
#include "core/graph.h"
#include "core/policy.h"

namespace acs {

// One object per layer of graph.layers, in their order: name, type ("conv2d", "linear"),
// compressible, flops_dense, flops, params_dense, params and, with `latency`, predicted_us
// and dense_predicted_us. `policy` is resolved (as exported). Predictor errors throw as
// LatencyCostModel's do; the search priced the same layers, so they do not arise here.
nlohmann::json PolicyLayersJson(const Graph& graph, const Policy& policy, const LatencyBudget* latency);

}  // namespace acs
