#include "devices/kernels/kernel_table.h"

#include <algorithm>
#include <cstdlib>

#include "devices/kernels/cpu_features.h"
#include "devices/kernels/kernel_impls.h"

namespace acs::kernels {
namespace {

const KernelTable kScalarTable{Isa::kScalar, internal::BlockSparseScalar, internal::CsrScalar,
                               internal::NmScalar, internal::Depthwise3x3Scalar};
#ifdef ACS_KERNELS_X86
const KernelTable kAvx2Table{Isa::kAvx2, internal::BlockSparseAvx2, internal::CsrAvx2,
                             internal::NmAvx2, internal::Depthwise3x3Avx2};
const KernelTable kAvx512Table{Isa::kAvx512, internal::BlockSparseAvx512, internal::CsrAvx512,
                               internal::NmAvx512, internal::Depthwise3x3Avx512};
#endif

bool Runnable(Isa isa) {
  const CpuFeatures& f = GetCpuFeatures();
  switch (isa) {
    case Isa::kScalar: return true;
#ifdef ACS_KERNELS_X86
    case Isa::kAvx2: return f.avx2 && f.fma;
    case Isa::kAvx512: return f.avx2 && f.fma && f.avx512f && f.avx512vl && f.avx512bw && f.avx512dq;
#endif
    default: return false;
  }
}

}  // namespace

BlockSparseView ViewOf(const BlockSparseMatrix& w) {
  return {w.block, w.rows, w.row_ptr.data(), w.col_idx.data(), w.values.data()};
}

CsrView ViewOf(const CsrMatrix& w) {
  return {w.rows, w.cols, w.row_ptr.data(), w.col_idx.data(), w.values.data()};
}

NmView ViewOf(const NmMatrix& w) {
  return {w.n, w.m, w.cols, w.runs_per_row(), w.values.data(), w.offsets.data()};
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

std::optional<Isa> ParseIsa(const std::string& name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (name == IsaName(isa)) return isa;
  }
  return std::nullopt;
}

Isa DetectIsa() {
  if (Runnable(Isa::kAvx512)) return Isa::kAvx512;
  if (Runnable(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa ActiveIsa() {
  static const Isa active = [] {
    Isa isa = DetectIsa();
    if (const char* cap = std::getenv("ACS_ISA")) {
      if (std::optional<Isa> c = ParseIsa(cap)) isa = std::min(isa, *c);
    }
    return isa;
  }();
  return active;
}

const KernelTable& Kernels() {
  static const KernelTable* table = KernelsFor(ActiveIsa());
  return *table;
}

const KernelTable* KernelsFor(Isa isa) {
  if (!Runnable(isa)) return nullptr;
  switch (isa) {
    case Isa::kScalar: return &kScalarTable;
#ifdef ACS_KERNELS_X86
    case Isa::kAvx2: return &kAvx2Table;
    case Isa::kAvx512: return &kAvx512Table;
#endif
    default: return nullptr;
  }
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (KernelsFor(isa) != nullptr) out.push_back(isa);
  }
  return out;
}

}  // namespace acs::kernels
