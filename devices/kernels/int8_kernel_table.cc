#include "devices/kernels/int8_kernel_table.h"

#include "devices/kernels/cpu_features.h"
#include "devices/kernels/int8_impls.h"

namespace acs::kernels {
namespace {

const Int8KernelTable kScalarTable{Isa::kScalar, internal::QuantizeU8Scalar, internal::Int8GemmScalar,
                                   internal::Int8ScratchScalar, internal::Int4GemvScalar,
                                   internal::DepthwiseU8Scalar};
#ifdef ACS_KERNELS_X86
const Int8KernelTable kAvx2Table{Isa::kAvx2, internal::QuantizeU8Avx2, internal::Int8GemmAvx2,
                                 internal::Int8ScratchAvx2, internal::Int4GemvAvx2, internal::DepthwiseU8Avx2};
const Int8KernelTable kAvx512Table{Isa::kAvx512, internal::QuantizeU8Avx512, internal::Int8GemmAvx512,
                                   internal::Int8ScratchAvx512, internal::Int4GemvAvx512,
                                   internal::DepthwiseU8Avx512};
#endif

constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

}  // namespace

const Int8KernelTable* Int8KernelsFor(Isa isa) {
  if (KernelsFor(isa) == nullptr) return nullptr;  // the float table's CPU conditions
  switch (isa) {
    case Isa::kScalar: return &kScalarTable;
#ifdef ACS_KERNELS_X86
    case Isa::kAvx2: return &kAvx2Table;
    case Isa::kAvx512: return GetCpuFeatures().avx512vnni ? &kAvx512Table : nullptr;
#endif
    default: return nullptr;
  }
}

const Int8KernelTable& Int8Kernels() {
  static const Int8KernelTable* table = [] {
    const Int8KernelTable* best = &kScalarTable;
    for (Isa isa : kAllIsas) {
      if (isa > ActiveIsa()) break;
      if (const Int8KernelTable* t = Int8KernelsFor(isa)) best = t;
    }
    return best;
  }();
  return *table;
}

std::vector<Isa> Int8SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas) {
    if (Int8KernelsFor(isa) != nullptr) out.push_back(isa);
  }
  return out;
}

}  // namespace acs::kernels
