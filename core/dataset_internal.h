// What the dataset readers (dataset.cc) share with the torch.save'd tensor reader
// (dataset_torch.cc). Internal to those two files.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/status.h"

namespace acs::dataset_internal {

// A tensor's sizes for messages, e.g. "[2, 3]".
std::string ShapeOf(const torch::Tensor& t);

// Samples [first, first + count) of a file holding `total`.
struct Window {
  int64_t first = 0;
  int64_t count = 0;
};

// The samples options.offset and options.limit select; OutOfRange past the last sample.
StatusOr<Window> SelectWindow(const std::string& path, int64_t total, const DatasetOptions& options);

// 0..n-1 in the order a Fisher-Yates shuffle on mt19937_64 seeded by `seed` makes (the
// same on every host); 0..n-1 in order for seed 0.
std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed);

// "samples [first, end) of total".
std::string DescribeWindow(const Window& w, int64_t total);

// OK when n images of c x h x w take at most options.max_decoded_bytes as float32 (or it is
// 0); otherwise ResourceExhausted "[PATH: ]N images of CxHxW HOW X of float32, past the
// limit of Y ...". Computed in double: exact below 2^53 bytes, far past any real limit.
Status CheckDecodedSize(const std::string& path, int64_t n, int64_t c, int64_t h, int64_t w,
                        const DatasetOptions& options, const char* how = "decode to");

// A torch.save'd file (zip format) holding a tensor of images, [N, H, W] or [N, C, H, W],
// uint8 or floating point, or a tuple/list (images, labels); the window of
// options.offset/limit read as float32 [N, C, H, W], uint8 scaled to [0, 1]. Untransformed.
StatusOr<Dataset> ReadTorchFile(const std::string& path, const DatasetOptions& options);

}  // namespace acs::dataset_internal
