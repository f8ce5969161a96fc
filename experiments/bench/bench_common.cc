#include "experiments/bench/bench_common.h"

#include <cstdio>
#include <fstream>

namespace acs::bench {

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

bool WriteJsonFile(const std::string& path, const nlohmann::json& json) {
  std::ofstream f(path);
  f << json.dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  std::printf("\nwrote %s\n", path.c_str());
  return true;
}

}  // namespace acs::bench
