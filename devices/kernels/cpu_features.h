// What the CPU and the operating system let this process execute.
#pragma once

#include <string>

namespace acs::kernels {

struct CpuFeatures {
  bool avx = false;         // CPUID and the OS saves YMM state (XCR0 bits 1-2)
  bool avx2 = false;        // includes the `avx` condition
  bool fma = false;
  bool avx512f = false;     // CPUID and the OS saves ZMM and opmask state (XCR0 bits 5-7)
  bool avx512vl = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vnni = false;

  // Space-separated names of the features present, e.g. "avx avx2 fma avx512f".
  std::string ToString() const;
};

// Features of the CPU this process runs on, read once (CPUID + XGETBV). Thread-safe.
const CpuFeatures& GetCpuFeatures();

}  // namespace acs::kernels
