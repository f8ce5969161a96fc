#include "devices/worker/roofline_probe.h"

#include <torch/torch.h>

#include "devices/runtime/runtime.h"

namespace acs::worker {

StatusOr<RooflineProbe> ProbeRoofline(int threads, const measure::MeasureOptions& options) {
  if (threads < 1) return Status::InvalidArgument("threads must be >= 1");
  runtime::SetCpuThreads(threads);
  torch::NoGradGuard no_grad;
  const int64_t n = 1024;
  torch::Tensor a = torch::rand({n, n}), b = torch::rand({n, n}), c = torch::empty({n, n});
  measure::MeasureOptions o = options;
  o.threads = threads;
  const measure::Measurement gemm = measure::Measure([&] { torch::mm_out(c, a, b); }, o);
  const int64_t elems = 16 << 20;  // 64 MiB of floats
  torch::Tensor src = torch::rand({elems}), dst = torch::empty({elems});
  const measure::Measurement copy = measure::Measure([&] { dst.copy_(src); }, o);
  RooflineProbe p;
  p.peak_gflops = 2.0 * n * n * n / (gemm.median_us * 1e3);
  p.bandwidth_gbs = 2.0 * 4.0 * elems / (copy.median_us * 1e3);
  return p;
}

}  // namespace acs::worker
