// Scalar reference of the 3x3 depthwise kernel (kernel_table.h, DepthwisePlane): the
// definition the SIMD kernels are tested against.
#include <algorithm>

#include "devices/kernels/kernel_impls.h"

namespace acs::kernels::internal {

void Depthwise3x3Scalar(const DepthwisePlane& a) {
  const int s = a.stride;
  for (int64_t oh = 0; oh < a.out_h; ++oh) {
    for (int64_t ow = 0; ow < a.out_w; ++ow) {
      float acc = a.bias;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const float* row = a.plane + ((oh * s + i) * s + j % s) * a.pitch + j / s;
          acc += a.w[3 * i + j] * row[ow];
        }
      }
      a.y[oh * a.out_w + ow] = std::min(std::max(acc, a.lo), a.hi);
    }
  }
}

}  // namespace acs::kernels::internal
