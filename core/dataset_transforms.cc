// Transforms of decoded images: a preprocessing spec's steps (core/preprocess.h), and the
// fixed order the dataset options give, expressed as such steps.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/dataset.h"
#include "core/dataset_internal.h"

namespace acs {
namespace {

using Op = PreprocessStep::Op;
using dataset_internal::ShapeOf;

// Python's round(): to the nearest, ties to even.
int64_t RoundHalfEven(double x) {
  const double down = std::floor(x), rest = x - down;
  const auto r = static_cast<int64_t>(down);
  if (rest > 0.5) return r + 1;
  if (rest < 0.5) return r;
  return r % 2 == 0 ? r : r + 1;
}

torch::Tensor Resize(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(0) == 0) return torch::zeros({0, x.size(1), h, w});
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(false)
                               .antialias(true));
}

}  // namespace

StatusOr<torch::Tensor> ApplyPreprocess(const torch::Tensor& images, const PreprocessSpec& spec, int64_t max_bytes) {
  if (!images.defined() || images.dim() != 4) return Status::InvalidArgument("images must be [N, C, H, W]");
  const int64_t n = images.size(0);
  // Every shape and size first, then the work.
  ACS_ASSIGN_OR_RETURN(std::vector<std::vector<int64_t>> shapes,
                       PreprocessedShapes({images.size(1), images.size(2), images.size(3)}, spec, n, max_bytes));
  bool pixels = spec.has_to_tensor();  // values 0..255 until to_tensor
  torch::NoGradGuard no_grad;
  torch::Tensor x = images.to(torch::kFloat);
  if (pixels) x = (x * 255).round();
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const PreprocessStep& s = spec.steps[i];
    switch (s.op) {
      case Op::kResize: {
        const int64_t h = shapes[i][1], w = shapes[i][2];
        if (h == x.size(2) && w == x.size(3)) break;
        x = Resize(x, h, w);
        if (pixels) x = (x + 0.5).floor().clamp(0, 255);  // as PIL rounds: half up
        break;
      }
      case Op::kCenterCrop: {
        const int64_t ch = s.size[0], cw = s.size.size() == 2 ? s.size[1] : s.size[0];
        int64_t ih = x.size(2), iw = x.size(3);
        if (ch > ih || cw > iw) {  // padded with zeros first, as torchvision
          const int64_t l = cw > iw ? (cw - iw) / 2 : 0, t = ch > ih ? (ch - ih) / 2 : 0;
          const int64_t r = cw > iw ? (cw - iw + 1) / 2 : 0, b = ch > ih ? (ch - ih + 1) / 2 : 0;
          x = torch::constant_pad_nd(x, {l, r, t, b}, 0);
          ih = x.size(2);
          iw = x.size(3);
        }
        const int64_t top = RoundHalfEven(static_cast<double>(ih - ch) / 2.0);
        const int64_t left = RoundHalfEven(static_cast<double>(iw - cw) / 2.0);
        x = x.narrow(2, top, ch).narrow(3, left, cw);
        break;
      }
      case Op::kPad: {
        const std::array<int64_t, 4> p = s.PadSides();
        x = torch::constant_pad_nd(x, {p[0], p[2], p[1], p[3]}, s.fill);
        break;
      }
      case Op::kGrayscaleToRgb:
        if (x.size(1) == 1 && s.channels != 1) x = x.repeat({1, s.channels, 1, 1});
        break;
      case Op::kGrayscale: {
        if (x.size(1) == 3) {
          const torch::Tensor r = x.narrow(1, 0, 1), g = x.narrow(1, 1, 1), b = x.narrow(1, 2, 1);
          // PIL's L of 8-bit values in fixed point; torchvision's weights on tensors.
          x = pixels ? ((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536).floor()
                     : r * 0.2989 + g * 0.587 + b * 0.114;
        }
        if (s.channels != 1) x = x.repeat({1, s.channels, 1, 1});
        break;
      }
      case Op::kToTensor:
        x = x / 255;
        pixels = false;
        break;
      case Op::kNormalize: {
        auto per_channel = [](const std::vector<double>& v) {
          return torch::tensor(v, torch::kDouble).to(torch::kFloat).view({1, static_cast<int64_t>(v.size()), 1, 1});
        };
        const torch::Tensor mean = per_channel(s.mean), std = per_channel(s.std);
        x = (x - mean) / std;
        break;
      }
    }
  }
  return x.contiguous();
}

StatusOr<torch::Tensor> TransformImages(const torch::Tensor& images, const DatasetOptions& options) {
  if (!images.defined() || images.dim() != 4) {
    return Status::InvalidArgument("images must be [N, C, H, W], got " +
                                   (images.defined() ? ShapeOf(images) : std::string("nothing")));
  }
  const bool fixed = options.pad != 0 || !options.resize.empty() || options.channels != 0 || !options.mean.empty() ||
                     !options.std.empty();
  PreprocessSpec spec = options.preprocess;
  if (!spec.empty() && fixed) {
    return Status::InvalidArgument("give either a preprocessing spec or pad / resize / channels / mean / std, not both");
  }
  if (spec.empty()) {  // the fixed order, as steps
    if (options.pad < 0 || options.pad > kMaxPreprocessSide) {
      return Status::InvalidArgument("pad must be in [0, " + std::to_string(kMaxPreprocessSide) + "]");
    }
    if (!options.resize.empty() &&
        (options.resize.size() != 2 || options.resize[0] <= 0 || options.resize[1] <= 0)) {
      return Status::InvalidArgument("resize must be {H, W} with positive sizes");
    }
    if (options.channels < 0) return Status::InvalidArgument("channels must not be negative");
    if (options.mean.size() != options.std.size()) {
      return Status::InvalidArgument("mean and std need the same count, got " + std::to_string(options.mean.size()) +
                                     " and " + std::to_string(options.std.size()));
    }
    PreprocessStep step;
    if (options.pad > 0) {
      step.op = PreprocessStep::Op::kPad;
      step.padding = {options.pad};
      spec.steps.push_back(step);
    }
    if (!options.resize.empty()) {
      step.op = PreprocessStep::Op::kResize;
      step.size = options.resize;
      spec.steps.push_back(step);
    }
    if (options.channels > 0) {
      step.op = PreprocessStep::Op::kGrayscaleToRgb;
      step.channels = options.channels;
      spec.steps.push_back(step);
    }
    if (!options.mean.empty()) {
      for (double x : options.std) {
        if (!(x > 0)) return Status::InvalidArgument("std values must be positive");
      }
      step.op = PreprocessStep::Op::kNormalize;
      step.mean = options.mean;
      step.std = options.std;
      spec.steps.push_back(step);
    }
  }
  ACS_ASSIGN_OR_RETURN(torch::Tensor x, ApplyPreprocess(images, spec, options.max_decoded_bytes));
  if (!options.input_chw.empty() && x.sizes().slice(1).vec() != options.input_chw) {
    std::string want;
    for (int64_t d : options.input_chw) want += (want.empty() ? "" : "x") + std::to_string(d);
    std::string made;
    for (int64_t d : x.sizes().slice(1)) made += (made.empty() ? "" : "x") + std::to_string(d);
    return Status::InvalidArgument("the preprocessing spec makes images of " + made + ", but the model's input is " +
                                   want);
  }
  return x;
}

DatasetOptions FitToInput(const std::vector<int64_t>& input_shape, DatasetOptions base) {
  if (input_shape.size() != 4) return base;
  if (!base.preprocess.empty()) {
    base.input_chw = {input_shape[1], input_shape[2], input_shape[3]};
    return base;
  }
  if (input_shape[1] > 0) base.channels = input_shape[1];
  if (input_shape[2] > 0 && input_shape[3] > 0) base.resize = {input_shape[2], input_shape[3]};
  return base;
}

}  // namespace acs
