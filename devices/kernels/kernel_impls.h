// Internal: the per-ISA kernels that kernel_table.cc puts into tables. Not for callers;
// go through Kernels() / KernelsFor().
#pragma once

#include "devices/kernels/kernel_table.h"

namespace acs::kernels::internal {

void BlockSparseScalar(const BlockSparseView& w, const SpmmSlice& s);
void CsrScalar(const CsrView& w, const SpmmSlice& s);
void NmScalar(const NmView& w, const SpmmSlice& s);
void Depthwise3x3Scalar(const DepthwisePlane& a);

#ifdef ACS_KERNELS_X86
void BlockSparseAvx2(const BlockSparseView& w, const SpmmSlice& s);
void CsrAvx2(const CsrView& w, const SpmmSlice& s);
void NmAvx2(const NmView& w, const SpmmSlice& s);
void Depthwise3x3Avx2(const DepthwisePlane& a);

void BlockSparseAvx512(const BlockSparseView& w, const SpmmSlice& s);
void CsrAvx512(const CsrView& w, const SpmmSlice& s);
void NmAvx512(const NmView& w, const SpmmSlice& s);
void Depthwise3x3Avx512(const DepthwisePlane& a);
#endif

}  // namespace acs::kernels::internal
