// AVX2 + FMA 3x3 depthwise kernel. Built with -mavx2 -mfma; called only when
// KernelsFor(Isa::kAvx2) says this CPU and OS can run it.
#include "devices/kernels/x86/vec_avx2.h"
#include "devices/kernels/x86/depthwise_simd.h"

namespace acs::kernels::internal {

void Depthwise3x3Avx2(const DepthwisePlane& a) { Depthwise3x3<Vec256>(a); }

}  // namespace acs::kernels::internal
