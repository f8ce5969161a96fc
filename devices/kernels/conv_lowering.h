// Helpers shared by the fp32 and int8 conv lowerings (im2col and the stride-phased padded
// planes of the direct lowering). Internal to acs_kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "devices/kernels/conv2d.h"

namespace acs::kernels::lowering {

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Offset of X row k = (c, i, j) in a plane buffer of `layout` (which has rows and pitch):
// plane (c, row phase, column phase), shifted down and right by the tap.
template <typename Layout>
int64_t TapOffset(const Conv2dGeometry& g, const Layout& l, int64_t k) {
  const int64_t c = k / (g.kernel_h * g.kernel_w);
  const int64_t dy = (k / g.kernel_w) % g.kernel_h * g.dilation_h;
  const int64_t dx = k % g.kernel_w * g.dilation_w;
  const int64_t plane = (c * g.stride_h + dy % g.stride_h) * g.stride_w + dx % g.stride_w;
  return plane * l.rows * l.pitch + dy / g.stride_h * l.pitch + dx / g.stride_w;
}

// True when some tap i < kernel lands on phase `phase` of `stride`.
inline bool PhaseUsed(int64_t phase, int64_t kernel, int64_t dilation, int64_t stride) {
  for (int64_t i = 0; i < kernel; ++i) {
    if (i * dilation % stride == phase) return true;
  }
  return false;
}

// im2col of one image [C, H, W] for output positions [p_begin, p_end): row k = (c, i, j)
// of out (leading dimension ld) holds the tap's input for each position, `pad` outside
// the image.
template <typename T>
void Im2colOf(const Conv2dGeometry& g, const T* image, int64_t p_begin, int64_t p_end, T pad, T* out,
              int64_t ld) {
  const int64_t ow_count = g.out_w();
  for (int64_t c = 0; c < g.channels; ++c) {
    const T* plane = image + c * g.height * g.width;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        T* row = out + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
        const int64_t shift_w = j * g.dilation_w - g.pad_w;  // iw = ow * stride_w + shift_w
        // Output columns whose input column lies inside the image: [lo, hi).
        const int64_t lo = CeilDiv(std::max<int64_t>(0, -shift_w), g.stride_w);
        const int64_t hi = std::min(ow_count, FloorDiv(g.width - 1 - shift_w, g.stride_w) + 1);
        for (int64_t p = p_begin; p < p_end;) {
          const int64_t oh = p / ow_count;
          const int64_t ow0 = p - oh * ow_count;
          const int64_t ow1 = std::min(ow_count, ow0 + (p_end - p));
          const int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;
          T* d = row + (p - p_begin);  // output column ow lands at d[ow - ow0]
          if (ih < 0 || ih >= g.height) {
            std::fill(d, d + (ow1 - ow0), pad);
          } else {
            const T* src = plane + ih * g.width;
            const int64_t a = std::clamp(lo, ow0, ow1);
            const int64_t b = std::clamp(hi, a, ow1);
            std::fill(d, d + (a - ow0), pad);
            if (g.stride_w == 1) {
              std::copy(src + (a + shift_w), src + (b + shift_w), d + (a - ow0));
            } else {
              for (int64_t ow = a; ow < b; ++ow) d[ow - ow0] = src[ow * g.stride_w + shift_w];
            }
            std::fill(d + (b - ow0), d + (ow1 - ow0), pad);
          }
          p += ow1 - ow0;
        }
      }
    }
  }
}

}  // namespace acs::kernels::lowering
