// Layer-wise least-squares reconstruction (AMC's channel reconstruction; row-wise
// restricted least squares for masked weights as in Optimal Brain Compression, or
// SparseGPT's column sweep where that costs too much): refit a
// compressed layer so that its outputs on the compressed model's activations match the
// dense layer's outputs on the dense model's activations.
#pragma once

#include <torch/types.h>

#include <utility>

#include "core/graph.h"

namespace acs {

// Solves, for every row o, min ||Y[o] - W'[o] X - b'[o]||^2 + ridge * mean(diag(X X^T)) ||W'[o]||^2
// over the weights where mask[o] != 0 (others stay exactly zero). X [K, P], Y [O, P],
// mask [O, K] or undefined (all kept). Rows with the same mask share one factorization.
// Returns {W' [O, K], b' [O]}; b' is undefined unless fit_bias.
std::pair<torch::Tensor, torch::Tensor> SolveMaskedLeastSquares(const torch::Tensor& x, const torch::Tensor& y,
                                                               const torch::Tensor& mask, bool fit_bias,
                                                               double ridge = 1e-3);

// The same problem, solved approximately for layers whose exact per-support solves cost too
// much (long reductions, many distinct row supports), as SparseGPT does for a given mask:
// the unconstrained solution W* first (one factorization), then the columns in order, each
// pruned weight set to zero and its error on the layer's outputs compensated by the
// columns after it through the inverse Gram matrix's Cholesky factor (the OBS update).
// Work about K^3 + 2 O K^2 instead of one K^3 / 3 per distinct support. Pruned weights are
// exactly zero; the bias (if fit) is the last column and absorbs what the weights cannot.
// Earlier columns never move, so the fit lies between masking W* and the exact solution,
// measured far from the latter (docs/commands.md, --refit).
std::pair<torch::Tensor, torch::Tensor> SolveMaskedLeastSquaresSweep(const torch::Tensor& x, const torch::Tensor& y,
                                                                    const torch::Tensor& mask, bool fit_bias,
                                                                    double ridge = 1e-3);

// The im2col matrix [K, N*L] of a conv layer's input [N, C, H, W] (K = C * kh * kw,
// L = output positions), restricted to `columns` (indices into N*L). A linear layer's
// input [N, F] becomes [F, N] restricted the same way.
torch::Tensor LayerInputColumns(const Layer& layer, const torch::Tensor& input, const torch::Tensor& columns);

// Number of columns LayerInputColumns can select for an input of this shape.
int64_t LayerInputColumnCount(const Layer& layer, const torch::Tensor& input);

}  // namespace acs
