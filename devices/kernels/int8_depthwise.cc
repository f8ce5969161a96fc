#include "devices/kernels/int8_depthwise.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

#include "devices/kernels/int8_kernel_table.h"

namespace acs::kernels {
namespace {

constexpr int64_t kChannelBlock = 16;  // DepthwiseU8Image's channel alignment

// The calling thread's padded channels-last copy, grow-only, laid out for the layer
// `layout`: when the layout changes it is filled with `zero_point`, after which quantizing
// an image only writes its pixels, the padding keeping the zero point.
uint8_t* ThreadImage(int64_t bytes, uint64_t layout, uint8_t zero_point) {
  thread_local std::vector<uint8_t> image;
  thread_local uint64_t image_layout = 0;
  if (image_layout != layout || static_cast<int64_t>(image.size()) < bytes) {
    if (static_cast<int64_t>(image.size()) < bytes) image.resize(bytes);
    std::fill(image.begin(), image.begin() + bytes, zero_point);
    image_layout = layout;
  }
  return image.data();
}

template <class T>
T* ThreadBuffer(int64_t n) {
  thread_local std::vector<T> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(n);
  return buffer.data();
}

std::atomic<uint64_t> next_layout_id{1};

}  // namespace

StatusOr<Int8DepthwiseConv2d> Int8DepthwiseConv2d::Create(const Int8Weights& weights, const Conv2dGeometry& g,
                                                          std::vector<float> bias,
                                                          const Int8DepthwiseOptions& options) {
  ACS_RETURN_IF_ERROR(g.Validate());
  ACS_RETURN_IF_ERROR(Validate(options.input_quant));
  if (g.kernel_h > 7 || g.kernel_w > 7) return Status::InvalidArgument("int8 depthwise conv: kernel above 7x7");
  if (g.dilation_h != 1 || g.dilation_w != 1) return Status::InvalidArgument("int8 depthwise conv: dilation must be 1");
  if (g.stride_h != g.stride_w || g.stride_h < 1 || g.stride_h > 2) {
    return Status::InvalidArgument("int8 depthwise conv: stride must be 1 or 2, the same along height and width");
  }
  const int64_t taps = g.kernel_h * g.kernel_w;
  if (weights.rows != g.channels || weights.cols != taps) {
    return Status::InvalidArgument("int8 depthwise conv: weights " + std::to_string(weights.rows) + " x " +
                                   std::to_string(weights.cols) + " for " + std::to_string(g.channels) +
                                   " channels of " + std::to_string(taps) + " taps");
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != g.channels) {
    return Status::InvalidArgument("int8 depthwise conv: bias has " + std::to_string(bias.size()) + " values for " +
                                   std::to_string(g.channels) + " channels");
  }
  if (!(options.min <= options.max)) return Status::InvalidArgument("int8 depthwise conv: clamp min > max");
  Int8DepthwiseConv2d conv;
  conv.geometry_ = g;
  conv.options_ = options;
  const int64_t ldc = (g.channels + kChannelBlock - 1) / kChannelBlock * kChannelBlock;
  conv.ldc_ = ldc;
  conv.w_.assign(taps * ldc, 0);
  conv.correction_.assign(ldc, 0);
  conv.scale_.assign(ldc, 0.0f);
  conv.bias_.assign(ldc, 0.0f);
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t t = 0; t < taps; ++t) conv.w_[t * ldc + c] = weights.at(c, t);
    conv.correction_[c] = options.input_quant.zero_point * weights.row_sums[c];
    conv.scale_[c] = weights.scales[c] * options.input_quant.scale;
    if (!bias.empty()) conv.bias_[c] = bias[c];
  }
  conv.layout_id_ = next_layout_id.fetch_add(1);
  return conv;
}

int64_t Int8DepthwiseConv2d::packed_bytes() const {
  return static_cast<int64_t>((w_.size() + correction_.size()) * sizeof(int32_t) +
                              (scale_.size() + bias_.size()) * sizeof(float));
}

Status Int8DepthwiseConv2d::Run(const float* input, int64_t batch, float* output, const Int8Options& options) const {
  if (input == nullptr || output == nullptr)
    return Status::InvalidArgument("int8 depthwise conv: null input or output");
  if (batch < 1) return Status::InvalidArgument("int8 depthwise conv: batch must be >= 1");
  const Conv2dGeometry& g = geometry_;
  const Int8KernelTable& table = options.kernels != nullptr ? *options.kernels : Int8Kernels();
  const int64_t channels = g.channels, in_plane = g.height * g.width, out_plane = g.out_h() * g.out_w();
  const int64_t padded_w = g.width + 2 * g.pad_w, padded_h = g.height + 2 * g.pad_h;
  const int64_t blocks = ldc_ / kChannelBlock;
  const int64_t macs = channels * out_plane * g.kernel_h * g.kernel_w;
  const int threads = static_cast<int>(std::clamp<int64_t>(macs / std::max<int64_t>(1, options.min_macs_per_thread), 1,
                                                           std::min<int64_t>(blocks, std::max(1, options.threads))));
  const float inv_scale = 1.0f / options_.input_quant.scale;
  const int32_t zp = options_.input_quant.zero_point;
  uint8_t* x = ThreadImage(padded_h * padded_w * ldc_, layout_id_, static_cast<uint8_t>(zp));
  float* yt = ThreadBuffer<float>(out_plane * ldc_);
  for (int64_t b = 0; b < batch; ++b) {
    const float* image = input + b * channels * in_plane;
    float* out = output + b * channels * out_plane;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; ++t) {
      const int64_t c_begin = blocks * t / threads * kChannelBlock;
      const int64_t c_end = blocks * (t + 1) / threads * kChannelBlock;
      const int64_t last = std::min(c_end, channels);
      uint8_t* q = ThreadBuffer<uint8_t>(in_plane);
      for (int64_t c = c_begin; c < last; ++c) {  // quantize, then into the padded copy
        table.quantize_u8(image + c * in_plane, in_plane, inv_scale, zp, q);
        for (int64_t ih = 0; ih < g.height; ++ih) {
          uint8_t* dst = x + ((ih + g.pad_h) * padded_w + g.pad_w) * ldc_ + c;
          for (int64_t iw = 0; iw < g.width; ++iw) dst[iw * ldc_] = q[ih * g.width + iw];
        }
      }
      DepthwiseU8Image a;
      a.x = x;
      a.padded_w = padded_w;
      a.ldc = ldc_;
      a.stride = static_cast<int>(g.stride_w);
      a.kh = static_cast<int>(g.kernel_h);
      a.kw = static_cast<int>(g.kernel_w);
      a.w = w_.data();
      a.correction = correction_.data();
      a.scale = scale_.data();
      a.bias = bias_.data();
      a.lo = options_.min;
      a.hi = options_.max;
      a.y = yt;
      a.out_h = g.out_h();
      a.out_w = g.out_w();
      a.c_begin = c_begin;
      a.c_end = c_end;
      table.depthwise_u8(a);
      for (int64_t c = c_begin; c < last; ++c) {  // back to NCHW
        for (int64_t p = 0; p < out_plane; ++p) out[c * out_plane + p] = yt[p * ldc_ + c];
      }
    }
  }
  return Status::Ok();
}

}  // namespace acs::kernels
