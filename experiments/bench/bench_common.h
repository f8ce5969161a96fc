// Pieces shared by the benchmark programs: the dense fp32 LibTorch baselines of one layer
// and writing a result file.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace acs::bench {

struct DenseOp {
  std::string name;
  std::function<void()> run;
};

// The dense fp32 LibTorch implementations of a conv (square stride and padding, no
// dilation, groups 1) or linear layer; weights prepacked for oneDNN where the API allows
// it (what a deployed dense model would do). An implementation that fails to prepare is
// skipped with a message on stderr.
std::vector<DenseOp> DenseBaselines(bool conv, int64_t stride, int64_t pad, const torch::Tensor& input,
                                    const torch::Tensor& weight, const torch::Tensor& bias);

// Writes json to path (2-space indent) and says so; false with a message when it cannot.
bool WriteJsonFile(const std::string& path, const nlohmann::json& json);

}  // namespace acs::bench
