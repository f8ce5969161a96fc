#include "core/reconstruction.h"

#include <torch/nn/functional.h>

#include <algorithm>
#include <map>
#include <string>

namespace acs {

std::pair<torch::Tensor, torch::Tensor> SolveMaskedLeastSquares(const torch::Tensor& x_in, const torch::Tensor& y_in,
                                                               const torch::Tensor& mask, bool fit_bias, double ridge) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.to(torch::kFloat64);
  torch::Tensor y = y_in.to(torch::kFloat64);
  const int64_t k = x.size(0), rows = y.size(0);
  if (fit_bias) x = torch::cat({x, torch::ones({1, x.size(1)}, x.options())}, 0);
  torch::Tensor h = x.matmul(x.t());
  torch::Tensor g = y.matmul(x.t());  // [O, K(+1)]
  double damp = ridge * h.diagonal().narrow(0, 0, k).mean().item<double>() + 1e-12;
  h.diagonal().narrow(0, 0, k).add_(damp);

  torch::Tensor full = torch::zeros({rows, x.size(0)}, x.options());
  // Rows grouped by identical support; the bias column is always in the support.
  std::map<std::string, std::vector<int64_t>> by_support;
  torch::Tensor m = mask.defined() ? (mask.reshape({rows, k}) != 0).to(torch::kUInt8).contiguous()
                                   : torch::ones({rows, k}, torch::kUInt8);
  const uint8_t* mp = m.data_ptr<uint8_t>();
  for (int64_t o = 0; o < rows; ++o) {
    by_support[std::string(reinterpret_cast<const char*>(mp + o * k), k)].push_back(o);
  }
  for (const auto& [key, members] : by_support) {
    std::vector<int64_t> support;
    for (int64_t j = 0; j < k; ++j) {
      if (key[j]) support.push_back(j);
    }
    if (fit_bias) support.push_back(k);
    if (support.empty()) continue;
    torch::Tensor s = torch::tensor(support, torch::kInt64);
    torch::Tensor r = torch::tensor(members, torch::kInt64);
    torch::Tensor hs = h.index_select(0, s).index_select(1, s);
    torch::Tensor gs = g.index_select(0, r).index_select(1, s);  // [R, S]
    torch::Tensor w = torch::linalg_solve(hs, gs.t()).t();       // [R, S]
    full.index_put_({r.unsqueeze(1), s.unsqueeze(0)}, w);
  }
  torch::Tensor weight = full.narrow(1, 0, k).to(y_in.dtype());
  torch::Tensor bias = fit_bias ? full.select(1, k).to(y_in.dtype()) : torch::Tensor();
  return {weight, bias};
}

std::pair<torch::Tensor, torch::Tensor> SolveMaskedLeastSquaresSweep(const torch::Tensor& x_in,
                                                                    const torch::Tensor& y_in,
                                                                    const torch::Tensor& mask, bool fit_bias,
                                                                    double ridge) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.to(torch::kFloat64);
  const int64_t k = x.size(0), rows = y_in.size(0);
  if (fit_bias) x = torch::cat({x, torch::ones({1, x.size(1)}, x.options())}, 0);
  const int64_t columns = x.size(0);
  torch::Tensor h = x.matmul(x.t());
  const double damp = ridge * h.diagonal().narrow(0, 0, k).mean().item<double>() + 1e-12;
  h.diagonal().narrow(0, 0, k).add_(damp);
  torch::Tensor l = torch::linalg_cholesky(h);
  // W* = Y X^T H^-1: the best weights without the mask.
  torch::Tensor w = torch::cholesky_solve(y_in.to(torch::kFloat64).matmul(x.t()).t(), l).t().contiguous();
  if (mask.defined()) {
    torch::Tensor keep = torch::ones({rows, columns}, w.options());
    keep.narrow(1, 0, k).copy_((mask.reshape({rows, k}) != 0).to(torch::kFloat64));
    // H^-1 = U^T U with U upper triangular; row j of U, scaled by 1 / U[j][j], is how the
    // later columns compensate the error of column j (SparseGPT, Frantar & Alistarh 2023).
    torch::Tensor u = torch::linalg_cholesky(torch::cholesky_inverse(l)).t().contiguous();
    constexpr int64_t kBlock = 128;  // columns whose updates of the later ones are batched
    for (int64_t start = 0; start < columns; start += kBlock) {
      const int64_t width = std::min(kBlock, columns - start);
      torch::Tensor block = w.narrow(1, start, width).clone();
      torch::Tensor errors = torch::zeros({rows, width}, w.options());
      torch::Tensor u_block = u.narrow(0, start, width).narrow(1, start, width);
      for (int64_t j = 0; j < width; ++j) {
        torch::Tensor weight = block.select(1, j);
        torch::Tensor error = (weight - weight * keep.select(1, start + j)) / u_block[j][j];
        // Column j itself becomes its kept part; the later columns of the block compensate.
        block.narrow(1, j, width - j).sub_(error.unsqueeze(1) * u_block[j].narrow(0, j, width - j).unsqueeze(0));
        errors.select(1, j).copy_(error);
      }
      w.narrow(1, start, width).copy_(block);
      const int64_t rest = columns - start - width;
      if (rest > 0) {
        w.narrow(1, start + width, rest).sub_(errors.matmul(u.narrow(0, start, width).narrow(1, start + width, rest)));
      }
    }
    w.mul_(keep);  // exact zeros where rounding left a residue
  }
  torch::Tensor weight = w.narrow(1, 0, k).to(y_in.dtype()).contiguous();
  torch::Tensor bias = fit_bias ? w.select(1, k).to(y_in.dtype()).contiguous() : torch::Tensor();
  return {weight, bias};
}

namespace {

torch::Tensor AllColumns(const Layer& layer, const torch::Tensor& input) {
  if (layer.type == LayerType::kLinear) return input.reshape({input.size(0), -1}).t();
  namespace F = torch::nn::functional;
  torch::Tensor cols = F::unfold(input, F::UnfoldFuncOptions({layer.kernel[0], layer.kernel[1]})
                                            .padding({layer.padding[0], layer.padding[1]})
                                            .stride({layer.stride[0], layer.stride[1]})
                                            .dilation({layer.dilation[0], layer.dilation[1]}));  // [N, K, L]
  return cols.permute({1, 0, 2}).reshape({cols.size(1), -1});
}

}  // namespace

int64_t LayerInputColumnCount(const Layer& layer, const torch::Tensor& input) {
  if (layer.type == LayerType::kLinear) return input.size(0);
  int64_t positions = 1;
  for (size_t i = 2; i < layer.output_shape.size(); ++i) positions *= layer.output_shape[i];
  return input.size(0) * positions;
}

torch::Tensor LayerInputColumns(const Layer& layer, const torch::Tensor& input, const torch::Tensor& columns) {
  torch::NoGradGuard no_grad;
  return AllColumns(layer, input).index_select(1, columns);
}

}  // namespace acs
