// A preprocessing spec: the ordered image transforms a model was trained with, in
// torchvision's vocabulary, as JSON (DESIGN §3, the user's data). It travels with a job
// and is applied to decoded images [N, C, H, W] by ApplyPreprocess (core/dataset.h).
// Torch-free: clients check a spec without LibTorch.
//
//   [{"op": "resize", "size": 36}, {"op": "center_crop", "size": [32, 32]},
//    {"op": "grayscale", "channels": 3}, {"op": "to_tensor"},
//    {"op": "normalize", "mean": [0.286], "std": [0.353]}]
//
// With a to_tensor step, the steps before it see pixel values 0..255 (images as PIL holds
// them; a resampled image is rounded back to whole values, as PIL's 8-bit images are) and
// to_tensor scales them to [0, 1]. Without one, every step acts on the values as read
// ([0, 1] for byte images), as torchvision's transforms on tensors do.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace acs {

// The largest image side a step may make or pad by.
inline constexpr int64_t kMaxPreprocessSide = 65536;

struct PreprocessStep {
  enum class Op { kResize, kCenterCrop, kPad, kToTensor, kGrayscaleToRgb, kGrayscale, kNormalize };
  Op op = Op::kToTensor;
  // resize: {S} resizes the shorter side to S, the longer to S x long / short (truncated),
  // as torchvision's Resize(int); {H, W} to that size. Bilinear, antialiased when shrinking
  // (as PIL). center_crop: {S} or {H, W}; an image smaller than the crop is padded with 0.
  std::vector<int64_t> size;
  // pad: {all}, {left and right, top and bottom} or {left, top, right, bottom}, as
  // torchvision's Pad; fill is the padded value (0..255 before to_tensor).
  std::vector<int64_t> padding;
  double fill = 0;
  // grayscale_to_rgb: a 1-channel image repeated to this many (default 3). grayscale: an
  // RGB image's luminance (PIL's L: 0.299 R + 0.587 G + 0.114 B, rounded before to_tensor)
  // as 1 or 3 channels (default 1), as torchvision's Grayscale; a grey image repeated.
  int64_t channels = 3;
  std::vector<double> mean, std;   // normalize: one value, or one per channel; std > 0
  std::array<int64_t, 4> PadSides() const;  // pad: left, top, right, bottom
};

struct PreprocessSpec {
  std::vector<PreprocessStep> steps;
  bool empty() const { return steps.empty(); }
  bool has_to_tensor() const;
  // A JSON array of steps as in the file comment (defaults left out).
  nlohmann::json ToJson() const;
  // InvalidArgument naming the step ("step 2 (resize): size must be ...") for an unknown
  // op or key, a missing or malformed value, sizes outside [1, 65536], padding outside
  // [0, 65536], std <= 0, mean and std of different lengths, more than one to_tensor,
  // normalize before to_tensor.
  static StatusOr<PreprocessSpec> FromJson(const nlohmann::json& steps);
  // Text is JSON, or the path of a file holding it.
  static StatusOr<PreprocessSpec> Parse(const std::string& text_or_path);
};

// OK when n images of [C, H, W] take at most max_bytes as float32 (or max_bytes is 0);
// otherwise ResourceExhausted "[PATH: ]N images of CxHxW HOW X of float32, past the limit
// of Y (read fewer with a limit/offset)", its reason StatusReason::kDecodedSizeLimit.
// Computed in double: exact below 2^53 bytes.
Status CheckImagesSize(const std::string& path, int64_t n, const std::vector<int64_t>& chw, int64_t max_bytes,
                       const std::string& how);

// The [C, H, W] after each step (one entry per step) of images of `chw`, without touching
// pixels. InvalidArgument naming the step where it does not fit the images (grayscale_to_rgb
// of 2 channels, normalize with 3 values on 1 channel); with max_bytes > 0,
// ResourceExhausted (CheckImagesSize) where n such images would pass it.
StatusOr<std::vector<std::vector<int64_t>>> PreprocessedShapes(std::vector<int64_t> chw, const PreprocessSpec& spec,
                                                               int64_t n = 0, int64_t max_bytes = 0);

}  // namespace acs
