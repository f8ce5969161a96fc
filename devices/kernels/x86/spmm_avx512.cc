// AVX-512 kernels (32 ZMM registers). Built with -mavx512f -mavx512vl -mavx512bw
// -mavx512dq; called only when KernelsFor(Isa::kAvx512) says this CPU and OS can run them.
#include "devices/kernels/x86/vec_avx2.h"
#include "devices/kernels/x86/vec_avx512.h"
#include "devices/kernels/x86/spmm_simd.h"

namespace acs::kernels::internal {

// Wide tiles keep 24 accumulators: 4 rows x 6 vectors for N=4, else 8 rows x 3 vectors.
void BlockSparseAvx512(const BlockSparseView& w, const SpmmSlice& s) {
  switch (w.block) {
    case 4: BlockSparseDispatch<16>(w, s, BlockSparseWide<Vec512, 4, 4, 6>, BlockSparseNarrow<Vec128, 1>); break;
    case 8: BlockSparseDispatch<16>(w, s, BlockSparseWide<Vec512, 8, 8, 3>, BlockSparseNarrow<Vec256, 1>); break;
    case 16: BlockSparseDispatch<16>(w, s, BlockSparseWide<Vec512, 16, 8, 3>, BlockSparseNarrow<Vec512, 1>); break;
    case 32: BlockSparseDispatch<16>(w, s, BlockSparseWide<Vec512, 32, 8, 3>, BlockSparseNarrow<Vec512, 2>); break;
    default: break;  // PackBlockSparse admits no other size
  }
}

// 4 vectors (64 columns) per row tile.
void CsrAvx512(const CsrView& w, const SpmmSlice& s) { Csr<Vec512, 4, Vec256>(w, s); }
void NmAvx512(const NmView& w, const SpmmSlice& s) { NmRows<Vec512, 4, Vec256>(w, s); }

}  // namespace acs::kernels::internal
