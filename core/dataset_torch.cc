// The torch.save'd tensor reader of LoadDataset (see dataset_internal.h).
#include <torch/script.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/dataset_internal.h"

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
    return Status::InvalidArgument(path + ": labels must be [" + std::to_string(n) +
                                   "] to match the images, got " + ShapeOf(t));
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

// A torch.save'd file is a zip archive. LibTorch 1.13's reader runs past its buffer on an
// archive without a sound end-of-central-directory record, and allocates whatever size an
// entry declares (both found by fuzzing). So the record must be there, its central
// directory inside the file, and no entry larger than the file (torch.save stores entries
// uncompressed), before LibTorch sees the bytes.
Status CheckZipLayout(const std::vector<char>& bytes, const std::string& path) {
  constexpr size_t kRecord = 22, kEntry = 46, kMaxComment = 65535;
  auto u16 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<uint8_t>(bytes[at])) |
           static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 1])) << 8;
  };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  const Status bad = Status::DataLoss(path + ": cannot read torch.save'd data: not a sound zip archive");
  if (bytes.size() < kRecord) return bad;
  const size_t last = bytes.size() - kRecord;
  size_t end = std::string::npos;
  for (size_t at = last + 1; at-- > (last > kMaxComment ? last - kMaxComment : 0);) {
    if (u32(at) == 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end == std::string::npos || end + kRecord + u16(end + 20) > bytes.size()) return bad;
  const uint64_t cd_size = u32(end + 12), cd_offset = u32(end + 16);
  if (cd_offset == 0xffffffffu) return Status::Ok();  // zip64: the sizes are elsewhere
  if (cd_offset + cd_size > end) return bad;
  for (uint64_t at = cd_offset; at < cd_offset + cd_size;) {
    if (at + kEntry > cd_offset + cd_size || u32(at) != 0x02014b50) return bad;
    const uint32_t compressed = u32(at + 20), size = u32(at + 24);
    if (size != 0xffffffffu && (compressed > bytes.size() || size > bytes.size())) return bad;
    at += kEntry + u16(at + 28) + u16(at + 30) + u16(at + 32);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Dataset> ReadTorchFile(const std::string& path, const DatasetOptions& options) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ACS_RETURN_IF_ERROR(CheckZipLayout(bytes, path));
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
  const bool tensors =
      std::all_of(items.begin(), items.end(), [](const torch::IValue& v) { return v.isTensor(); });
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
  ACS_RETURN_IF_ERROR(
      CheckDecodedSize(path, window.count, images.size(1), images.size(2), images.size(3), options));
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
