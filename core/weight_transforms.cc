#include "core/weight_transforms.h"

#include <algorithm>
#include <cmath>

namespace acs {

namespace {

torch::Tensor UnstructuredMask(const torch::Tensor& w2d, double sparsity) {
  torch::Tensor mask = torch::ones_like(w2d);
  int64_t remove = static_cast<int64_t>(std::floor(sparsity * static_cast<double>(w2d.numel())));
  if (remove <= 0) return mask;
  torch::Tensor idx = std::get<1>(w2d.abs().flatten().topk(remove, /*dim=*/0, /*largest=*/false));
  mask.view({-1}).index_fill_(0, idx, 0.0);
  return mask;
}

torch::Tensor BlockMask(const torch::Tensor& w2d, double sparsity, int64_t n) {
  int64_t rows = w2d.size(0), cols = w2d.size(1);
  int64_t blocks_per_col = (rows + n - 1) / n;
  torch::Tensor padded = torch::zeros({blocks_per_col * n, cols}, w2d.options());
  padded.narrow(0, 0, rows).copy_(w2d.abs());
  torch::Tensor scores = padded.view({blocks_per_col, n, cols}).sum(1);  // [B, cols]
  torch::Tensor block_mask = UnstructuredMask(scores, sparsity);          // same rule on blocks
  return block_mask.unsqueeze(1).expand({blocks_per_col, n, cols}).reshape({blocks_per_col * n, cols}).narrow(0, 0, rows).contiguous();
}

torch::Tensor NMMask(const torch::Tensor& w2d, int64_t keep, int64_t m) {
  int64_t rows = w2d.size(0), cols = w2d.size(1);
  int64_t runs = (cols + m - 1) / m;
  // Padding gets magnitude -1 so it is never preferred over a real weight.
  torch::Tensor padded = torch::full({rows, runs * m}, -1.0, w2d.options());
  padded.narrow(1, 0, cols).copy_(w2d.abs());
  torch::Tensor grouped = padded.view({rows, runs, m});
  torch::Tensor idx = std::get<1>(grouped.topk(std::min(keep, m), /*dim=*/2));
  torch::Tensor mask = torch::zeros_like(grouped).scatter_(2, idx, 1.0);
  return mask.view({rows, runs * m}).narrow(1, 0, cols).contiguous();
}

}  // namespace

torch::Tensor PatternMask(const torch::Tensor& weight, const LayerConfig& config) {
  torch::NoGradGuard no_grad;
  torch::Tensor w2d = weight.reshape({weight.size(0), -1}).to(torch::kFloat32);
  torch::Tensor mask;
  switch (config.pattern) {
    case Pattern::kUnstructured: mask = UnstructuredMask(w2d, config.sparsity); break;
    case Pattern::kBlock: mask = BlockMask(w2d, config.sparsity, std::max(1, config.block)); break;
    case Pattern::kNM: mask = NMMask(w2d, config.nm_n, config.nm_m); break;
    case Pattern::kDense:
    case Pattern::kChannel: mask = torch::ones_like(w2d); break;
  }
  return mask.view(weight.sizes()).to(weight.dtype());
}

torch::Tensor SimulatePrecision(const torch::Tensor& weight, Precision precision) {
  torch::NoGradGuard no_grad;
  if (precision == Precision::kFp32) return weight;
  if (precision == Precision::kBf16) return weight.to(torch::kBFloat16).to(weight.dtype());
  double levels = precision == Precision::kInt8 ? 127.0 : 7.0;
  torch::Tensor w2d = weight.reshape({weight.size(0), -1});
  torch::Tensor scale = w2d.abs().amax(1, /*keepdim=*/true) / levels;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  torch::Tensor q = (w2d / scale).round().clamp(-levels, levels);
  return (q * scale).view(weight.sizes());
}

ActivationQuant ActivationQuantFromRange(double min, double max) {
  min = std::min(min, 0.0);
  max = std::max(max, 0.0);
  ActivationQuant q;
  double span = max - min;
  q.scale = span > 0 ? span / static_cast<double>(ActivationQuant::kMax - ActivationQuant::kMin) : 1.0;
  q.zero_point = std::clamp<int64_t>(static_cast<int64_t>(std::llround(-min / q.scale)),
                                     ActivationQuant::kMin, ActivationQuant::kMax);
  return q;
}

}  // namespace acs
