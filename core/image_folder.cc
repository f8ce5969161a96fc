#include "core/image_folder.h"

#include <jpeglib.h>
#include <png.h>
#include <torch/torch.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "core/dataset_internal.h"
#include "core/image_files.h"

namespace acs {
namespace {

namespace fs = std::filesystem;

// The most pixels one image may have (5792 x 5792): its float32 RGB tensor is 384 MiB.
constexpr int64_t kMaxImagePixels = int64_t{1} << 25;

Status CheckPixels(const std::string& path, int64_t width, int64_t height) {
  if (width < 1 || height < 1) {
    return Status::DataLoss(path + ": an image of " + std::to_string(width) + "x" + std::to_string(height));
  }
  if (width * height > kMaxImagePixels) {
    return Status::ResourceExhausted(path + ": an image of " + std::to_string(width) + "x" + std::to_string(height) +
                                     " pixels, past this reader's limit of 2^25 pixels");
  }
  return Status::Ok();
}

// [H, W, channels] bytes -> the first 3 channels as [3, H, W] floats in [0, 1].
torch::Tensor FromRgb(std::vector<uint8_t>& bytes, int64_t height, int64_t width, int64_t channels = 3) {
  return torch::from_blob(bytes.data(), {height, width, channels}, torch::kUInt8)
             .narrow(2, 0, 3)
             .permute({2, 0, 1})
             .to(torch::kFloat) /
         255;
}

StatusOr<torch::Tensor> DecodePng(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    const std::string why = image.message;
    png_image_free(&image);
    return Status::DataLoss(path + ": not a readable PNG: " + why);
  }
  if (Status s = CheckPixels(path, image.width, image.height); !s.ok()) {
    png_image_free(&image);
    return s;
  }
  image.format = PNG_FORMAT_RGBA;  // alpha read, then dropped as PIL's convert("RGB") does
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, rgba.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    return Status::DataLoss(path + ": PNG data does not decode: " + why);
  }
  return FromRgb(rgba, image.height, image.width, 4);
}

struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
};

void JpegFail(j_common_ptr info) {
  auto* errors = reinterpret_cast<JpegErrors*>(info->err);
  (*info->err->format_message)(info, errors->message);
  std::longjmp(errors->jump, 1);
}

void JpegQuiet(j_common_ptr) {}

// libjpeg reports errors by longjmp: no object with a destructor is made between the
// setjmp and the end of decoding, and the buffer is sized before it.
Status DecodeJpegInto(const std::string& path, std::FILE* file, std::vector<uint8_t>* rgb, int64_t* height,
                      int64_t* width) {
  jpeg_decompress_struct info;
  JpegErrors errors;
  info.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = JpegFail;
  errors.manager.output_message = JpegQuiet;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    return Status::DataLoss(path + ": JPEG data does not decode: " + errors.message);
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file);
  jpeg_read_header(&info, TRUE);
  if (Status s = CheckPixels(path, info.image_width, info.image_height); !s.ok()) {
    jpeg_destroy_decompress(&info);
    return s;
  }
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  *height = info.output_height;
  *width = info.output_width;
  rgb->resize(static_cast<size_t>(info.output_height) * info.output_width * 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = rgb->data() + static_cast<size_t>(info.output_scanline) * info.output_width * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return Status::Ok();
}

StatusOr<torch::Tensor> DecodeJpeg(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) return Status::NotFound(path + ": cannot open");
  std::vector<uint8_t> rgb;
  int64_t height = 0, width = 0;
  ACS_RETURN_IF_ERROR(DecodeJpegInto(path, file.get(), &rgb, &height, &width));
  return FromRgb(rgb, height, width);
}

struct Listing {
  std::vector<std::string> classes;  // empty: a flat, unlabelled folder
  std::vector<std::pair<fs::path, int64_t>> samples;  // file, class index (-1 unlabelled)
};

StatusOr<Listing> ListFolder(const std::string& root) {
  Listing listing;
  std::error_code ec;
  std::vector<std::string> dirs;
  for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (!HiddenEntry(it->path()) && !it->is_symlink() && it->is_directory()) {
      dirs.push_back(it->path().filename().string());
    }
  }
  if (ec) return Status::NotFound(root + ": cannot list: " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  for (const std::string& d : dirs) {
    ACS_ASSIGN_OR_RETURN(std::vector<fs::path> files, ImageFilesUnder(fs::path(root) / d, true));
    if (files.empty()) continue;  // a folder without images is no class (as a .git or notes folder)
    const auto label = static_cast<int64_t>(listing.classes.size());
    listing.classes.push_back(d);
    for (fs::path& f : files) listing.samples.emplace_back(std::move(f), label);
  }
  if (listing.classes.empty()) {
    ACS_ASSIGN_OR_RETURN(std::vector<fs::path> files, ImageFilesUnder(root, false));
    for (fs::path& f : files) listing.samples.emplace_back(std::move(f), -1);
  }
  if (listing.samples.empty()) {
    return Status::NotFound(root + ": no JPEG or PNG images (.jpg, .jpeg, .png) in it or in its class folders");
  }
  return listing;
}

}  // namespace

StatusOr<torch::Tensor> DecodeImage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  unsigned char head[8] = {0};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (in.gcount() >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return DecodeJpeg(path);
  if (in.gcount() == 8 && png_sig_cmp(head, 0, 8) == 0) return DecodePng(path);
  return Status::DataLoss(path + ": neither a JPEG nor a PNG file");
}

Status WriteImageGrid(const torch::Tensor& images, const std::string& path, int64_t columns) {
  if (!images.defined() || images.dim() != 4 || images.size(0) == 0 || columns < 1) {
    return Status::InvalidArgument("a grid needs images [N, C, H, W], N >= 1");
  }
  const int64_t n = std::min(images.size(0), columns * columns), c = images.size(1) == 3 ? 3 : 1;
  const int64_t h = images.size(2), w = images.size(3), cols = std::min(n, columns), rows = (n + columns - 1) / columns;
  if (cols * w > kMaxPreprocessSide || rows * h > kMaxPreprocessSide) {
    return Status::InvalidArgument("a grid of " + std::to_string(cols * w) + "x" + std::to_string(rows * h) +
                                   " pixels is too large");
  }
  torch::Tensor grid = torch::zeros({rows * h, cols * w, c}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor x = images[i].narrow(0, 0, c).to(torch::kFloat);
    const float lo = x.min().item<float>(), hi = x.max().item<float>();
    x = hi > lo ? (x - lo) / (hi - lo) : torch::zeros_like(x);
    grid.narrow(0, i / columns * h, h).narrow(1, i % columns * w, w).copy_((x * 255).round().permute({1, 2, 0}));
  }
  grid = grid.contiguous();
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(cols * w);
  image.height = static_cast<png_uint_32>(rows * h);
  image.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&image, path.c_str(), 0, grid.data_ptr<uint8_t>(), 0, nullptr)) {
    return Status::Unavailable(path + ": cannot write the PNG: " + image.message);
  }
  return Status::Ok();
}

StatusOr<Dataset> ReadImageFolder(const std::string& path, const DatasetOptions& options) {
  ACS_ASSIGN_OR_RETURN(Listing listing, ListFolder(path));
  const auto total = static_cast<int64_t>(listing.samples.size());
  ACS_ASSIGN_OR_RETURN(dataset_internal::Window window, dataset_internal::SelectWindow(path, total, options));
  const std::vector<int64_t> order = dataset_internal::ShuffledOrder(total, options.shuffle_seed);
  // Without a spec, a model of 1 channel gets the images' luminance (as PIL's L).
  PreprocessSpec to_grey;
  if (options.preprocess.empty() && options.channels == 1) {
    PreprocessStep grey;
    grey.op = PreprocessStep::Op::kGrayscale;
    grey.channels = 1;
    to_grey.steps.push_back(grey);
  }
  Dataset data;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < window.count; ++i) {
    const auto& [file, label] = listing.samples[static_cast<size_t>(order[static_cast<size_t>(window.first + i)])];
    ACS_ASSIGN_OR_RETURN(torch::Tensor image, DecodeImage(file.string()));
    image = image.unsqueeze(0);
    if (!to_grey.empty()) {
      ACS_ASSIGN_OR_RETURN(image, ApplyPreprocess(image, to_grey));
    }
    StatusOr<torch::Tensor> prepared = TransformImages(image, options);
    if (!prepared.ok()) return prepared.status().WithPrefix(file.string() + ": ");
    if (i == 0) {
      const std::vector<int64_t> chw = prepared->sizes().slice(1).vec();
      ACS_RETURN_IF_ERROR(CheckImagesSize(path, window.count, chw, options.max_decoded_bytes, "prepared come to"));
      data.images = torch::empty({window.count, chw[0], chw[1], chw[2]}, torch::kFloat);
    } else if (prepared->sizes().slice(1) != data.images.sizes().slice(1)) {
      auto shape = [](c10::IntArrayRef s) {
        return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
      };
      return Status::InvalidArgument(file.string() + ": prepared to " + shape(prepared->sizes().slice(1)) +
                                     ", the folder's first image to " + shape(data.images.sizes().slice(1)) +
                                     " (images of different sizes need a resize or center_crop to one size)");
    }
    data.images[i].copy_((*prepared)[0]);
    labels.push_back(label);
  }
  if (window.count == 0) data.images = torch::empty({0, 3, 1, 1});
  if (!listing.classes.empty()) data.labels = torch::tensor(labels, torch::kLong);
  data.total = total;
  data.source = path + " (image folder, " +
                (listing.classes.empty() ? std::string("unlabelled")
                                         : std::to_string(listing.classes.size()) + " classes") +
                ", " + dataset_internal::DescribeWindow(window, total) +
                (options.shuffle_seed > 0 ? " shuffled by seed " + std::to_string(options.shuffle_seed) : "") + ")";
  return data;
}

}  // namespace acs
