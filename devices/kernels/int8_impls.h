// Internal: the per-ISA low-precision kernels that int8_kernel_table.cc puts into tables.
// Not for callers; go through Int8Kernels() / Int8KernelsFor().
#pragma once

#include "devices/kernels/int8_kernel_table.h"

namespace acs::kernels::internal {

void QuantizeU8Scalar(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q);
void Int8GemmScalar(const Int8WeightsView& w, const Int8GemmSlice& s);
int64_t Int8ScratchScalar(int64_t k, int64_t p);
void Int4GemvScalar(const Int4WeightsView& w, const Int4Slice& s);
void DepthwiseU8Scalar(const DepthwiseU8Image& a);

#ifdef ACS_KERNELS_X86
void QuantizeU8Avx2(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q);
void Int8GemmAvx2(const Int8WeightsView& w, const Int8GemmSlice& s);
int64_t Int8ScratchAvx2(int64_t k, int64_t p);
void Int4GemvAvx2(const Int4WeightsView& w, const Int4Slice& s);
void DepthwiseU8Avx2(const DepthwiseU8Image& a);

// AVX-512 F/VL/BW/DQ + VNNI.
void QuantizeU8Avx512(const float* x, int64_t n, float inv_scale, int32_t zero_point, uint8_t* q);
void Int8GemmAvx512(const Int8WeightsView& w, const Int8GemmSlice& s);
int64_t Int8ScratchAvx512(int64_t k, int64_t p);
void Int4GemvAvx512(const Int4WeightsView& w, const Int4Slice& s);
void DepthwiseU8Avx512(const DepthwiseU8Image& a);
#endif

}  // namespace acs::kernels::internal
