// The torch.save'd tensor reader of LoadDataset (see dataset_internal.h).
#include <torch/script.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/dataset_internal.h"
#include "core/torch_archive.h"

namespace acs::dataset_internal {
namespace {

// The images as [N, C, H, W], unconverted; an error unless uint8 or floating point.
StatusOr<torch::Tensor> TorchImages(const std::string& path, torch::Tensor t) {
  if (t.dim() == 3) t = t.unsqueeze(1);
  if (t.dim() != 4) {
    return Status::InvalidArgument(path + ": images must be [N, H, W] or [N, C, H, W], got " + ShapeOf(t));
  }
  if (t.scalar_type() == torch::kUInt8 || t.is_floating_point()) return t;
  return Status::InvalidArgument(path + ": images must be uint8 or floating point, got " +
                                 std::string(c10::toString(t.scalar_type())));
}

StatusOr<torch::Tensor> TorchLabels(const std::string& path, const torch::Tensor& t, int64_t n) {
  if (t.dim() != 1 || t.size(0) != n) {
    return Status::InvalidArgument(path + ": labels must be [" + std::to_string(n) + "] to match the images, got " +
                                   ShapeOf(t));
  }
  if (t.is_floating_point() || t.is_complex() || t.scalar_type() == torch::kBool) {
    return Status::InvalidArgument(path + ": labels must be integers, got " +
                                   std::string(c10::toString(t.scalar_type())));
  }
  torch::Tensor labels = t.to(torch::kLong);
  if (n > 0 && labels.min().item<int64_t>() < 0) {
    return Status::InvalidArgument(path + ": labels must not be negative");
  }
  return labels;
}

}  // namespace

StatusOr<Dataset> ReadTorchFile(const std::string& path, const DatasetOptions& options) {
  // LibTorch's zip reader and unpickler trust the file (core/torch_archive.h).
  if (Status sound = CheckTorchArchive(path); !sound.ok()) {
    return Status::DataLoss(path + ": cannot read torch.save'd data: " + sound.message());
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    return Status::DataLoss(path + ": cannot read torch.save'd data: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::DataLoss(path + ": cannot read torch.save'd data: " + e.what());
  }
  std::vector<torch::IValue> items;
  if (value.isTensor()) {
    items = {value};
  } else if (value.isTuple()) {
    const auto& elements = value.toTupleRef().elements();
    items.assign(elements.begin(), elements.end());
  } else if (value.isList()) {
    const auto elements = value.toListRef();
    items.assign(elements.begin(), elements.end());
  }
  const bool tensors = std::all_of(items.begin(), items.end(), [](const torch::IValue& v) { return v.isTensor(); });
  if (items.empty() || items.size() > 2 || !tensors) {
    return Status::InvalidArgument(path + ": expected a tensor of images or a tuple (images, labels), got " +
                                   value.tagKind());
  }
  ACS_ASSIGN_OR_RETURN(torch::Tensor images, TorchImages(path, items[0].toTensor()));
  const int64_t n = images.size(0);
  torch::Tensor labels;
  if (items.size() == 2) {
    ACS_ASSIGN_OR_RETURN(labels, TorchLabels(path, items[1].toTensor(), n));
  }
  ACS_ASSIGN_OR_RETURN(Window window, SelectWindow(path, n, options));
  ACS_RETURN_IF_ERROR(CheckDecodedSize(path, window.count, images.size(1), images.size(2), images.size(3), options));
  Dataset data;
  const bool whole = window.first == 0 && window.count == n;
  // Only the window is converted; a part is copied so that it does not hold the whole file.
  data.images = images.narrow(0, window.first, window.count).to(torch::kFloat, false, /*copy=*/!whole);
  if (images.scalar_type() == torch::kUInt8) data.images.div_(255);
  data.images = data.images.contiguous();
  if (labels.defined()) data.labels = whole ? labels : labels.narrow(0, window.first, window.count).clone();
  data.total = n;
  data.source = "torch file " + path + ", " + DescribeWindow(window, n);
  return data;
}

}  // namespace acs::dataset_internal
