#include "experiments/bench/bench_common.h"

#include <cstdio>

namespace acs::bench {

kernels::Conv2dGeometry BenchLayer::Geometry() const {
  kernels::Conv2dGeometry g;
  g.channels = in;
  g.height = g.width = size;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  return g;
}

int64_t BenchLayer::P() const { return conv ? Geometry().p() : size; }

std::vector<BenchLayer> BenchLayers() {
  return {
      {"r18.layer1 3x3 64>64 @56", true, 64, 64, 56, 3, 1, 1},
      {"r18.layer2 3x3 128>128 @28", true, 128, 128, 28, 3, 1, 1},
      {"r18.layer3 3x3 256>256 @14", true, 256, 256, 14, 3, 1, 1},
      {"r18.layer4 3x3 512>512 @7", true, 512, 512, 7, 3, 1, 1},
      {"r18.layer2.down 1x1/2 64>128 @56", true, 64, 128, 56, 1, 2, 0},
      {"mbv2 1x1 24>144 @56", true, 24, 144, 56, 1, 1, 0},
      {"mbv2 1x1 144>24 @56", true, 144, 24, 56, 1, 1, 0},
      {"mbv2 1x1 96>576 @14", true, 96, 576, 14, 1, 1, 0},
      {"mbv2 1x1 320>1280 @7", true, 320, 1280, 7, 1, 1, 0},
      {"small 3x3 32>64 @28", true, 32, 64, 28, 3, 1, 1},
      {"small 3x3 64>64 @14", true, 64, 64, 14, 3, 1, 1},
      {"r18.fc 512>1000 b1", false, 512, 1000, 1},
      {"r18.fc 512>1000 b32", false, 512, 1000, 32},
      {"small.fc 1024>128 b1", false, 1024, 128, 1},
  };
}

std::vector<DenseOp> DenseBaselines(bool conv, int64_t stride_size, int64_t pad_size, const torch::Tensor& input,
                                    const torch::Tensor& weight, const torch::Tensor& bias) {
  std::vector<DenseOp> out;
  if (conv) {
    const std::vector<int64_t> stride = {stride_size, stride_size}, pad = {pad_size, pad_size}, dil = {1, 1};
    out.push_back({"torch.conv2d", [=] { torch::conv2d(input, weight, bias, stride, pad); }});
    out.push_back({"onednn", [=] { at::mkldnn_convolution(input, weight, bias, pad, stride, dil, 1); }});
    try {
      const torch::Tensor w_mkl = at::mkldnn_reorder_conv2d_weight(weight.to_mkldnn(), pad, stride, dil, 1);
      const torch::Tensor in_mkl = input.to_mkldnn();
      out.push_back({"onednn.prepacked", [=] { at::mkldnn_convolution(in_mkl, w_mkl, bias, pad, stride, dil, 1); }});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "onednn.prepacked skipped: %s\n", e.what());
    }
  } else {
    out.push_back({"torch.linear", [=] { torch::linear(input, weight, bias); }});
    try {
      const torch::Tensor in_mkl = input.to_mkldnn();
      const torch::Tensor w_mkl = weight.to_mkldnn();
      out.push_back({"onednn", [=] { at::mkldnn_linear(in_mkl, w_mkl, bias); }});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "onednn linear skipped: %s\n", e.what());
    }
  }
  return out;
}

}  // namespace acs::bench
