// Helpers shared by the latency budget tests: a predictor of a made-up device and a
// calibration of a model measured on it.
#pragma once

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "agents/latency_cost.h"
#include "predictors/features.h"
#include "predictors/sampling.h"

namespace acs::test_util {

// A predictor trained on a made-up device (20 GFLOP/s plus 2 us per kernel).
inline predictors::TrainedPredictor MadeUpPredictor() {
  predictors::KernelSampler sampler(predictors::ShapePrior::Builtin(), predictors::SampleSpace{}, 11);
  std::vector<predictors::KernelSample> samples;
  for (const KernelSpec& s : sampler.Sample(400)) {
    samples.push_back({s, 2.0 + 2.0 * predictors::ShapeStats(s).macs_nonzero / 20e3});
  }
  predictors::TrainedPredictor p;
  auto k = predictors::XgbLatencyModel::Train(samples);
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  if (k.ok()) p.kernels = std::move(k).value();
  return p;
}

// A calibration of the dense baseline, the uncompressed runtime and the share outside layers.
inline ModelCalibration Anchored(double dense_us, double uncompressed_us, double outside_layers_share) {
  ModelCalibration c;
  c.dense_us = dense_us;
  c.uncompressed_us = uncompressed_us;
  c.outside_layers_share = outside_layers_share;
  return c;
}

// A policy's layers as a made-up device runs them in a model: `cost`'s unscaled predictions
// x aten on aten ops, x own on the runtime's own kernels, x int8 on its int8 ones (int8 < 0: x own).
inline double ScaledLayersUs(const LatencyCostModel& cost, const Graph& graph, const Policy& policy, double aten,
                             double own, double int8 = -1) {
  const LayerSplit split = cost.SplitPolicyLayersUs(graph, policy);
  return aten * split.aten_us + own * split.own_us + (int8 < 0 ? own : int8) * split.int8_us;
}

}  // namespace acs::test_util
