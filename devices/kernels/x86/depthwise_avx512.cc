// AVX-512 3x3 depthwise kernel. Built with the AVX-512 flags; called only when
// KernelsFor(Isa::kAvx512) says this CPU and OS can run it.
#include "devices/kernels/x86/vec_avx512.h"
#include "devices/kernels/x86/depthwise_simd.h"

namespace acs::kernels::internal {

void Depthwise3x3Avx512(const DepthwisePlane& a) { Depthwise3x3<Vec512>(a); }

}  // namespace acs::kernels::internal
