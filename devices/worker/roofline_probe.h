// Peak dense fp32 GEMM throughput and memory-copy bandwidth of this machine at a thread
// count, through the harness: the two figures of a roofline model, measured once per
// device class.
#pragma once

#include "core/status.h"
#include "devices/measure/harness.h"

namespace acs::worker {

struct RooflineProbe {
  double peak_gflops = 0;     // 1024 x 1024 x 1024 fp32 matmul in LibTorch
  double bandwidth_gbs = 0;   // bytes read + written per second copying 64 MiB
};

// Errors: InvalidArgument for threads < 1.
StatusOr<RooflineProbe> ProbeRoofline(int threads, const measure::MeasureOptions& options = {});

}  // namespace acs::worker
