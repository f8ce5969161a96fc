#include "core/dataset.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "core/dataset_internal.h"
#include "core/image_folder.h"
#include "core/tar.h"

namespace acs {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dims (N, H, W)
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dim (N)
constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarPixels = 3 * kCifarSide * kCifarSide;
constexpr int64_t kCifarRecord = 1 + kCifarPixels;
constexpr int64_t kCifarClasses = 10;
constexpr const char* kSupportedFormats =
    "IDX images (MNIST family, raw or gzipped), a directory of IDX files, "
    "CIFAR-10 binary batches (3073-byte records), torch.save'd tensors (zip format)";

std::string Hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%0*x", digits, v);
  return buf;
}

}  // namespace

namespace dataset_internal {

std::string ShapeOf(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

StatusOr<Window> SelectWindow(const std::string& path, int64_t total, const DatasetOptions& options) {
  if (options.offset > 0 && options.offset >= total) {
    return Status::OutOfRange(path + ": offset " + std::to_string(options.offset) + " is beyond the " +
                              std::to_string(total) + " samples it holds");
  }
  Window w;
  w.first = options.offset;
  w.count = total - w.first;
  if (options.limit > 0) w.count = std::min(w.count, options.limit);
  return w;
}

std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (seed == 0) return order;
  std::mt19937_64 rng(seed);  // Fisher-Yates on mt19937_64: the same order on every host
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

std::string DescribeWindow(const Window& w, int64_t total) {
  return "samples [" + std::to_string(w.first) + ", " + std::to_string(w.first + w.count) + ") of " +
         std::to_string(total);
}

// ---- The size limit

Status CheckDecodedSize(const std::string& path, int64_t n, int64_t c, int64_t h, int64_t w,
                        const DatasetOptions& options, const char* how) {
  return CheckImagesSize(path, n, {c, h, w}, options.max_decoded_bytes, how);
}

}  // namespace dataset_internal

namespace {

using dataset_internal::CheckDecodedSize;
using dataset_internal::DescribeWindow;
using dataset_internal::ReadTorchFile;
using dataset_internal::SelectWindow;
using dataset_internal::ShapeOf;
using dataset_internal::ShuffledOrder;
using dataset_internal::Window;

// ---- Sequential reading of a gzipped or plain file (zlib passes plain files through).

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

StatusOr<GzFile> OpenGz(const std::string& path) {
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) return Status::NotFound(path + ": cannot open for reading");
  gzbuffer(file.get(), 1 << 18);
  return file;
}

// Reads up to n bytes, appending them to *out (discarding them when out is null). Returns
// how many were read; fewer than n only at the end of the data.
StatusOr<uint64_t> GzRead(gzFile file, const std::string& path, uint64_t n, std::string* out) {
  constexpr uint64_t kChunk = 1 << 20;
  std::string scratch;
  uint64_t total = 0;
  while (total < n) {
    const unsigned want = static_cast<unsigned>(std::min(kChunk, n - total));
    std::string* dst = out != nullptr ? out : &scratch;
    const size_t old = out != nullptr ? out->size() : 0;
    dst->resize(old + want);
    const int got = gzread(file, &(*dst)[old], want);
    if (got < 0) {
      int err = 0;
      return Status::DataLoss(path + ": cannot decompress: " + gzerror(file, &err));
    }
    dst->resize(old + static_cast<size_t>(got));
    total += static_cast<uint64_t>(got);
    if (static_cast<unsigned>(got) < want) break;
  }
  return total;
}

Status Truncated(const std::string& path, gzFile file, const char* what, uint64_t promised,
                 uint64_t present) {
  int err = Z_OK;
  gzerror(file, &err);
  return Status::DataLoss(path + ": truncated: header promises " + std::to_string(promised) + " " + what +
                          " bytes, file has " + std::to_string(present) +
                          (err == Z_BUF_ERROR ? " (the gzip stream ends early)" : ""));
}

// ---- IDX

// Reads and checks the magic number and dimensions of an IDX file of unsigned bytes.
StatusOr<std::vector<uint64_t>> ReadIdxHeader(gzFile file, const std::string& path, uint32_t expected_magic) {
  std::string head;
  ACS_ASSIGN_OR_RETURN(uint64_t got, GzRead(file, path, 4, &head));
  if (got < 4) return Status::DataLoss(path + ": truncated: no room for an IDX magic number");
  const auto* b = reinterpret_cast<const unsigned char*>(head.data());
  const uint32_t magic = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (b[2] << 8) | b[3];
  const std::string expected = expected_magic == kIdxImagesMagic ? "images (N, H, W)" : "labels (N)";
  if (magic != expected_magic) {
    std::string why = "not an IDX " + expected + " file";
    if ((magic >> 16) == 0 && b[2] != 0x08) {
      why = "IDX element type " + Hex(b[2], 2) + " is not supported (only 0x08, unsigned byte)";
    } else if (magic == kIdxLabelsMagic) {
      why = "this is an IDX labels file; pass the images file";
    }
    return Status::InvalidArgument(path + ": " + why + ": magic " + Hex(magic, 8) + ", expected " +
                                   Hex(expected_magic, 8));
  }
  const int ndims = b[3];
  head.clear();
  ACS_ASSIGN_OR_RETURN(got, GzRead(file, path, 4 * ndims, &head));
  if (got < 4u * ndims) return Status::DataLoss(path + ": truncated inside the IDX header");
  std::vector<uint64_t> dims(ndims);
  for (int i = 0; i < ndims; ++i) {
    const auto* d = reinterpret_cast<const unsigned char*>(head.data()) + 4 * i;
    dims[i] = (uint64_t{d[0]} << 24) | (uint64_t{d[1]} << 16) | (uint64_t{d[2]} << 8) | d[3];
  }
  return dims;
}

// The labels file beside an IDX images file, tried with the same and the other compression.
std::vector<std::string> IdxLabelCandidates(const std::string& images_path) {
  const fs::path p(images_path);
  std::string name = p.filename().string();
  const size_t pos = name.find("images-idx3");
  if (pos == std::string::npos) return {};
  name.replace(pos, 11, "labels-idx1");
  const bool gz = name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0;
  const std::string other = gz ? name.substr(0, name.size() - 3) : name + ".gz";
  return {(p.parent_path() / name).string(), (p.parent_path() / other).string()};
}

StatusOr<torch::Tensor> ReadIdxLabels(const std::string& path, const std::string& images_path, int64_t images,
                                      const Window& window) {
  ACS_ASSIGN_OR_RETURN(GzFile file, OpenGz(path));
  ACS_ASSIGN_OR_RETURN(std::vector<uint64_t> dims, ReadIdxHeader(file.get(), path, kIdxLabelsMagic));
  if (dims[0] != static_cast<uint64_t>(images)) {
    return Status::DataLoss(path + ": holds " + std::to_string(dims[0]) + " labels but " + images_path +
                            " holds " + std::to_string(images) + " images");
  }
  ACS_ASSIGN_OR_RETURN(uint64_t skipped, GzRead(file.get(), path, window.first, nullptr));
  std::string bytes;
  ACS_ASSIGN_OR_RETURN(uint64_t got, GzRead(file.get(), path, window.count, &bytes));
  if (skipped + got < static_cast<uint64_t>(window.first + window.count)) {
    return Truncated(path, file.get(), "label", dims[0], skipped + got);
  }
  return torch::from_blob(bytes.data(), {window.count}, torch::kUInt8).to(torch::kLong);
}

// The largest image side an IDX header may give (fuzzing found sides whose product
// overflows LibTorch's strides).
constexpr uint64_t kMaxImageSide = 65536;

StatusOr<Dataset> ReadIdx(const std::string& path, const DatasetOptions& options) {
  ACS_ASSIGN_OR_RETURN(GzFile file, OpenGz(path));
  ACS_ASSIGN_OR_RETURN(std::vector<uint64_t> dims, ReadIdxHeader(file.get(), path, kIdxImagesMagic));
  const uint64_t n = dims[0], h = dims[1], w = dims[2];
  if (h == 0 || w == 0) {
    return Status::DataLoss(path + ": IDX header gives an empty image size " + std::to_string(h) + "x" +
                            std::to_string(w));
  }
  if (h > kMaxImageSide || w > kMaxImageSide) {
    return Status::DataLoss(path + ": IDX header gives an image size " + std::to_string(h) + "x" + std::to_string(w) +
                            " past " + std::to_string(kMaxImageSide) + "x" + std::to_string(kMaxImageSide));
  }
  const uint64_t record = h * w;  // < 2^32
  if (n > static_cast<uint64_t>(INT64_MAX) / record) {
    return Status::DataLoss(path + ": IDX header gives an impossible size");
  }
  ACS_ASSIGN_OR_RETURN(Window window, SelectWindow(path, static_cast<int64_t>(n), options));
  ACS_RETURN_IF_ERROR(
      CheckDecodedSize(path, window.count, 1, static_cast<int64_t>(h), static_cast<int64_t>(w), options));
  ACS_ASSIGN_OR_RETURN(uint64_t skipped, GzRead(file.get(), path, window.first * record, nullptr));
  std::string pixels;
  ACS_ASSIGN_OR_RETURN(uint64_t got, GzRead(file.get(), path, window.count * record, &pixels));
  if (skipped + got < (window.first + window.count) * record) {
    return Truncated(path, file.get(), "pixel", n * record, skipped + got);
  }
  Dataset data;
  data.images =
      torch::from_blob(pixels.data(), {window.count, 1, static_cast<int64_t>(h), static_cast<int64_t>(w)},
                       torch::kUInt8)
          .to(torch::kFloat)
          .div_(255);
  data.total = static_cast<int64_t>(n);
  data.source = "IDX " + path;
  for (const std::string& candidate : IdxLabelCandidates(path)) {
    std::error_code ec;
    if (!fs::is_regular_file(candidate, ec)) continue;
    ACS_ASSIGN_OR_RETURN(data.labels, ReadIdxLabels(candidate, path, static_cast<int64_t>(n), window));
    data.source += " with labels " + candidate;
    break;
  }
  data.source += ", " + DescribeWindow(window, static_cast<int64_t>(n));
  return data;
}

StatusOr<std::string> FindIdxInDirectory(const std::string& dir, const std::string& split) {
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    return Status::InvalidArgument(dir + ": split must be \"train\" or \"test\", got \"" + split + "\"");
  }
  const std::string name = prefix + "-images-idx3-ubyte";
  for (const std::string& candidate : {name, name + ".gz"}) {
    const fs::path p = fs::path(dir) / candidate;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return Status::NotFound(dir + ": directory holds no " + name + " or " + name + ".gz");
}

// ---- CIFAR-10 binary

StatusOr<Dataset> ReadCifar(const std::string& path, uint64_t size, const DatasetOptions& options) {
  if (size == 0 || size % kCifarRecord != 0) {
    return Status::DataLoss(path + ": a CIFAR-10 binary batch holds 3073-byte records, but the file has " +
                            std::to_string(size) + " bytes");
  }
  const int64_t n = static_cast<int64_t>(size / kCifarRecord);
  ACS_ASSIGN_OR_RETURN(Window window, SelectWindow(path, n, options));
  ACS_RETURN_IF_ERROR(CheckDecodedSize(path, window.count, 3, kCifarSide, kCifarSide, options));
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(window.count * kCifarRecord), '\0');
  in.seekg(window.first * kCifarRecord);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<size_t>(in.gcount()) != bytes.size()) {
    return Status::DataLoss(path + ": read failed at record " + std::to_string(window.first));
  }
  torch::Tensor records = torch::from_blob(bytes.data(), {window.count, kCifarRecord}, torch::kUInt8);
  torch::Tensor labels = records.select(1, 0).to(torch::kLong);
  const torch::Tensor bad = labels.ge(kCifarClasses).nonzero();
  if (bad.numel() > 0) {
    const int64_t i = bad[0][0].item<int64_t>();
    return Status::DataLoss(path + ": record " + std::to_string(window.first + i) + " has label " +
                            std::to_string(labels[i].item<int64_t>()) + "; CIFAR-10 labels are below 10");
  }
  Dataset data;
  data.images = records.narrow(1, 1, kCifarPixels)
                    .reshape({window.count, 3, kCifarSide, kCifarSide})
                    .to(torch::kFloat)
                    .div_(255);
  data.labels = labels;
  data.total = n;
  data.source = "CIFAR-10 " + path + ", " + DescribeWindow(window, n);
  return data;
}

// ---- Format detection

StatusOr<Dataset> ReadAny(const std::string& path, const DatasetOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path + ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    ACS_ASSIGN_OR_RETURN(std::string file, FindIdxInDirectory(path, options.split));
    return ReadAny(file, options);
  }
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return Status::NotFound(path + ": cannot read: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  unsigned char b[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(b), 4);
  if (!in && size >= 4) return Status::NotFound(path + ": cannot read");
  const uint32_t magic = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (b[2] << 8) | b[3];

  if (size >= 2 && b[0] == 0x1f && b[1] == 0x8b) return ReadIdx(path, options);  // gzip
  if (size >= 4 && magic == kIdxImagesMagic) return ReadIdx(path, options);
  if (size >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return ReadTorchFile(path, options);
  if (IsTarFile(path)) {
    return Status::InvalidArgument(path + ": a tar archive; extract it and give the folder (a job extracts an "
                                          "uploaded archive of an image folder itself)");
  }
  if (size > 0 && size % kCifarRecord == 0) return ReadCifar(path, size, options);
  // Looks like IDX but is not an images file of bytes: let the reader say what is wrong.
  if (size >= 4 && b[0] == 0 && b[1] == 0 && b[3] >= 1 && b[3] <= 4) return ReadIdx(path, options);
  if (size >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) {
    return Status::InvalidArgument(path +
                                   ": legacy (non-zip) torch.save format is not supported; "
                                   "save it again with the default torch.save settings");
  }
  if (fs::path(path).extension() == ".bin") return ReadCifar(path, size, options);
  return Status::InvalidArgument(path + ": unrecognized data format; supported: " + kSupportedFormats);
}

}  // namespace

StatusOr<Dataset> LoadDataset(const std::string& path, const DatasetOptions& options) {
  if (options.limit < 0 || options.offset < 0 || options.max_decoded_bytes < 0) {
    return Status::InvalidArgument(path + ": limit, offset and max_decoded_bytes must not be negative");
  }
  StatusOr<Dataset> read = Status::Internal("not read");
  const bool shuffled = options.shuffle_seed > 0;
  try {
    if (IsImageFolder(path)) return ReadImageFolder(path, options);  // prepared image by image
    if (shuffled) {  // read whole, then the window of the shuffled order
      DatasetOptions whole = options;
      whole.offset = whole.limit = 0;
      read = ReadAny(path, whole);
    } else {
      read = ReadAny(path, options);
    }
  } catch (const c10::Error& e) {  // a LibTorch check on malformed data
    return Status::DataLoss(path + ": cannot read it: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::DataLoss(path + ": cannot read it: " + e.what());
  }
  ACS_ASSIGN_OR_RETURN(Dataset data, std::move(read));
  if (shuffled) {
    ACS_ASSIGN_OR_RETURN(Window window, SelectWindow(path, data.size(), options));
    const std::vector<int64_t> order = ShuffledOrder(data.size(), options.shuffle_seed);
    const torch::Tensor picked =
        torch::tensor(std::vector<int64_t>(order.begin() + window.first, order.begin() + window.first + window.count),
                      torch::kLong);
    data.images = data.images.index_select(0, picked);
    if (data.has_labels()) data.labels = data.labels.index_select(0, picked);
    data.source += "; " + DescribeWindow(window, data.size()) + " of them shuffled by seed " +
                   std::to_string(options.shuffle_seed);
  }
  StatusOr<torch::Tensor> images = TransformImages(data.images, options);
  if (!images.ok()) return images.status().WithPrefix(path + ": ");
  data.images = std::move(images).value();
  return data;
}

}  // namespace acs
