#include "devices/kernels/depthwise_conv.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

namespace acs::kernels {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The plane buffer of the calling thread, grow-only, laid out for the layer `layout`
// (DepthwiseConv2d::layout_id_): when the layout changes it is zeroed, after which copying
// a channel only writes the image's pixels, the padding staying zero.
float* ThreadPlane(int64_t floats, uint64_t layout) {
  thread_local std::vector<float> plane;
  thread_local uint64_t plane_layout = 0;
  if (plane_layout != layout || static_cast<int64_t>(plane.size()) < floats) {
    if (static_cast<int64_t>(plane.size()) < floats) plane.resize(floats);
    std::fill(plane.begin(), plane.begin() + floats, 0.0f);
    plane_layout = layout;
  }
  return plane.data();
}

std::atomic<uint64_t> next_layout_id{1};

}  // namespace

StatusOr<DepthwiseConv2d> DepthwiseConv2d::Create(std::vector<float> weights, const Conv2dGeometry& g,
                                                  std::vector<float> bias, const DepthwiseOptions& options) {
  ACS_RETURN_IF_ERROR(g.Validate());
  if (g.kernel_h != 3 || g.kernel_w != 3) return Status::InvalidArgument("depthwise conv: the kernel must be 3x3");
  if (g.dilation_h != 1 || g.dilation_w != 1) return Status::InvalidArgument("depthwise conv: dilation must be 1");
  if (g.stride_h != g.stride_w || g.stride_h < 1 || g.stride_h > 2) {
    return Status::InvalidArgument("depthwise conv: stride must be 1 or 2, the same along height and width");
  }
  if (static_cast<int64_t>(weights.size()) != g.channels * 9) {
    return Status::InvalidArgument("depthwise conv: " + std::to_string(weights.size()) + " weights for " +
                                   std::to_string(g.channels) + " channels of 3x3");
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != g.channels) {
    return Status::InvalidArgument("depthwise conv: bias has " + std::to_string(bias.size()) + " values for " +
                                   std::to_string(g.channels) + " channels");
  }
  if (!(options.min <= options.max)) return Status::InvalidArgument("depthwise conv: clamp min > max");
  DepthwiseConv2d conv;
  conv.geometry_ = g;
  conv.weights_ = std::move(weights);
  conv.bias_ = bias.empty() ? std::vector<float>(g.channels, 0.0f) : std::move(bias);
  conv.options_ = options;
  conv.padded_rows_ = g.height + 2 * g.pad_h;
  // Kernels read up to column out_w - 1 + 2 / stride of a phase row.
  conv.pitch_ = std::max(CeilDiv(g.width + 2 * g.pad_w, g.stride_w), g.out_w() + 2 / g.stride_w);
  for (int64_t b = 0; b < g.stride_w; ++b) {
    const int64_t shift = b - g.pad_w;  // image column = t * stride + shift
    const int64_t lo = std::min(conv.pitch_, CeilDiv(std::max<int64_t>(0, -shift), g.stride_w));
    const int64_t last = g.width - 1 - shift;  // the last column: t <= last / stride
    const int64_t hi = last < 0 ? lo : std::clamp<int64_t>(last / g.stride_w + 1, lo, conv.pitch_);
    conv.columns_.push_back({lo, hi});
  }
  conv.layout_id_ = next_layout_id.fetch_add(1);
  return conv;
}

Status DepthwiseConv2d::Run(const float* input, int64_t batch, float* output, const DepthwiseRunOptions& options) const {
  if (input == nullptr || output == nullptr) return Status::InvalidArgument("depthwise conv: null input or output");
  if (batch < 1) return Status::InvalidArgument("depthwise conv: batch must be >= 1");
  const Conv2dGeometry& g = geometry_;
  const KernelTable& table = options.kernels != nullptr ? *options.kernels : Kernels();
  const int s = static_cast<int>(g.stride_w);
  const int64_t out_plane = g.out_h() * g.out_w(), in_plane = g.height * g.width;
  const int64_t items = batch * g.channels;
  const int64_t per_thread = std::max<int64_t>(1, options.min_outputs_per_thread);
  const int threads = static_cast<int>(
      std::clamp<int64_t>(items * out_plane / per_thread, 1, std::min<int64_t>(items, std::max(1, options.threads))));
  const int64_t plane_floats = padded_rows_ * s * pitch_;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t c = item % g.channels;
    const float* image = input + item * in_plane;
    float* plane = ThreadPlane(plane_floats, layout_id_);
    // Phase row (r, b), column t = padded column t * s + b = image column t * s + b - pad_w;
    // of the rows inside the image, columns [lo[b], hi[b]) hold pixels, the rest stays zero.
    for (int64_t ih = 0; ih < g.height; ++ih) {
      for (int b = 0; b < s; ++b) {
        float* dst = plane + ((ih + g.pad_h) * s + b) * pitch_;
        const int64_t lo = columns_[b].first, hi = columns_[b].second;
        const float* src = image + ih * g.width + b - g.pad_w;  // column t at src[t * s]
        if (s == 1) {
          for (int64_t t = lo; t < hi; ++t) dst[t] = src[t];
        } else {
          for (int64_t t = lo; t < hi; ++t) dst[t] = src[2 * t];
        }
      }
    }
    DepthwisePlane a;
    a.plane = plane;
    a.pitch = pitch_;
    a.stride = s;
    a.w = weights_.data() + c * 9;
    a.bias = bias_[c];
    a.lo = options_.min;
    a.hi = options_.max;
    a.y = output + item * out_plane;
    a.out_h = g.out_h();
    a.out_w = g.out_w();
    table.depthwise3x3(a);
  }
  return Status::Ok();
}

}  // namespace acs::kernels
