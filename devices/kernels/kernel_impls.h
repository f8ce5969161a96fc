// Internal: the per-ISA kernels that kernel_table.cc puts into tables. Not for callers;
// go through Kernels() / KernelsFor().
#pragma once

#include "devices/kernels/kernel_table.h"

namespace acs::kernels::internal {

void BlockSparseScalar(const BlockSparseView& w, const SpmmSlice& s);
void CsrScalar(const CsrView& w, const SpmmSlice& s);
void NmScalar(const NmView& w, const SpmmSlice& s);

#ifdef ACS_KERNELS_X86
void BlockSparseAvx2(const BlockSparseView& w, const SpmmSlice& s);
void CsrAvx2(const CsrView& w, const SpmmSlice& s);
void NmAvx2(const NmView& w, const SpmmSlice& s);

void BlockSparseAvx512(const BlockSparseView& w, const SpmmSlice& s);
void CsrAvx512(const CsrView& w, const SpmmSlice& s);
void NmAvx512(const NmView& w, const SpmmSlice& s);
#endif

}  // namespace acs::kernels::internal
