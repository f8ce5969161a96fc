// Statistics of a model's values on calibration data, shared by the compressor (on the graph
// of its plan) and fine-tuning (on the trained model, DESIGN §3): batch-norm running
// statistics from the batch statistics of their inputs, and the input ranges that set the
// int8 layers' activation quantization.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include "core/status.h"

namespace acs {

// Splits [0, n) into (start, size) chunks of about `batch` (at least 2), none of size 1
// (batch norm in training mode needs two samples).
std::vector<std::pair<int64_t, int64_t>> CalibrationChunks(int64_t n, int64_t batch);

// For every top-level aten::batch_norm node of `graph` (a copy of a frozen forward; it is
// not changed), in graph order: the (mean, unbiased variance) of its input per channel on
// `calibration` [N, ...], run in chunks of `batch` and averaged weighted by chunk size, as
// batch norm in training mode computes them; (undefined, undefined) for a node whose running
// statistics are not constant tensors. Errors: InvalidArgument when there is a batch norm
// and fewer than 2 samples, or when the graph fails to run.
StatusOr<std::vector<std::pair<torch::Tensor, torch::Tensor>>> BatchNormStatistics(torch::jit::Graph& graph,
                                                                                   const torch::jit::Module& self,
                                                                                   const torch::Tensor& calibration,
                                                                                   int64_t batch);

// The [min, max] over `calibration` of input 0 of each of `nodes` (top-level nodes of `graph`,
// which is not changed), as the node sees it, run in chunks of `batch`. Errors:
// InvalidArgument when `calibration` is empty or the graph fails to run; Internal for a node
// not at the graph's top level.
StatusOr<std::vector<std::pair<double, double>>> InputRanges(torch::jit::Graph& graph, const torch::jit::Module& self,
                                                             const torch::Tensor& calibration, int64_t batch,
                                                             const std::vector<torch::jit::Node*>& nodes);

// What ReestimateStatistics changed in a graph: the counts, and each replaced input with its
// previous value, so that it can be undone.
struct Reestimation {
  int64_t batch_norms = 0;  // batch norms given their inputs' batch statistics
  int64_t int8_ranges = 0;  // int8 layers' input fake-quants given their inputs' range
  std::vector<std::tuple<torch::jit::Node*, size_t, torch::jit::Value*>> previous;
};

// Re-estimates, in place, the statistics of a compressed model's forward `graph` (module
// `self`) on `calibration` [N, C, H, W], the compressor's way: every batch norm's running
// mean / variance (BatchNormStatistics), then, with those, the scale / zero point of every
// per-tensor fake-quant that feeds a weighted op's input (ActivationQuantFromRange of its
// input's InputRanges). Like the compressor, both are measured with the activation
// fake-quants bypassed. The new values are new constants; the old ones stay in the graph
// (unused) until dead-code elimination, which must not run before an UndoReestimation.
// Errors: those of BatchNormStatistics and InputRanges, with the graph unchanged.
StatusOr<Reestimation> ReestimateStatistics(torch::jit::Graph& graph, const torch::jit::Module& self,
                                            const torch::Tensor& calibration, int64_t batch);

// Puts the previous inputs back.
void UndoReestimation(const Reestimation& reestimation);

}  // namespace acs
