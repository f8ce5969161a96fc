// AVX2 + FMA kernels (16 YMM registers). Built with -mavx2 -mfma; called only when
// KernelsFor(Isa::kAvx2) says this CPU and OS can run them.
#include "devices/kernels/x86/vec_avx2.h"
#include "devices/kernels/x86/spmm_simd.h"

namespace acs::kernels::internal {

// Wide tiles: 4 rows x 3 vectors (12 accumulators + 3 activations + 1 broadcast).
void BlockSparseAvx2(const BlockSparseView& w, const SpmmSlice& s) {
  switch (w.block) {
    case 4: BlockSparseDispatch<8>(w, s, BlockSparseWide<Vec256, 4, 4, 3>, BlockSparseNarrow<Vec128, 1>); break;
    case 8: BlockSparseDispatch<8>(w, s, BlockSparseWide<Vec256, 8, 4, 3>, BlockSparseNarrow<Vec256, 1>); break;
    case 16: BlockSparseDispatch<8>(w, s, BlockSparseWide<Vec256, 16, 4, 3>, BlockSparseNarrow<Vec256, 2>); break;
    case 32: BlockSparseDispatch<8>(w, s, BlockSparseWide<Vec256, 32, 4, 3>, BlockSparseNarrow<Vec256, 4>); break;
    default: break;  // PackBlockSparse admits no other size
  }
}

// 8 vectors (64 columns) per row tile: enough independent FMAs for two FMA ports.
void CsrAvx2(const CsrView& w, const SpmmSlice& s) { Csr<Vec256, 8, Vec256>(w, s); }
void NmAvx2(const NmView& w, const SpmmSlice& s) { NmRows<Vec256, 8, Vec256>(w, s); }

}  // namespace acs::kernels::internal
