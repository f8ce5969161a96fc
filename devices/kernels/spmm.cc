#include "devices/kernels/spmm.h"

#include <algorithm>
#include <vector>

namespace acs::kernels {
namespace {

// Column slices start on multiples of this, so every slice but the last runs full tiles.
constexpr int64_t kColumnAlign = 96;
// Below this many columns per thread the rows are split instead.
constexpr int64_t kMinColumnsPerThread = 64;

Status CheckArgs(const SpmmArgs& a) {
  if (a.x == nullptr || a.y == nullptr) return Status::InvalidArgument("spmm: x and y must be set");
  if (a.p < 1) return Status::InvalidArgument("spmm: p must be >= 1");
  if (a.ldx < a.p || a.ldy < a.p) return Status::InvalidArgument("spmm: ldx and ldy must be >= p");
  return Status::Ok();
}

// Splits [0, units) into `parts` contiguous ranges of about equal weight, where weight(i)
// is the cost of units [0, i) (non-decreasing, weight(0) = 0).
template <class Weight>
std::vector<int64_t> SplitByWeight(int64_t units, int parts, Weight weight) {
  std::vector<int64_t> bounds(parts + 1, units);
  bounds[0] = 0;
  const double total = static_cast<double>(weight(units));
  int64_t u = 0;
  for (int i = 1; i < parts; ++i) {
    const double target = total * i / parts;
    while (u < units && static_cast<double>(weight(u)) < target) ++u;
    bounds[i] = u;
  }
  return bounds;
}

template <class Matrix, class Kernel, class RowWeight>
void Run(const Matrix& m, Kernel kernel, int64_t row_units, RowWeight row_weight, const SpmmArgs& a,
         const SpmmOptions& options) {
  const auto w = ViewOf(m);
  SpmmSlice base{a.x, a.ldx, a.y, a.ldy, a.bias, 0, a.p, 0, row_units};
  int threads = ThreadsFor(static_cast<int64_t>(m.values.size()) * a.p, options);
  threads = static_cast<int>(std::min<int64_t>(threads, row_units * a.p));
  if (threads == 1) {
    kernel(w, base);
    return;
  }
  std::vector<SpmmSlice> slices(threads, base);
  if (a.p >= threads * kMinColumnsPerThread) {
    const int64_t per = (a.p + threads - 1) / threads;
    const int64_t step = (per + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
    for (int t = 0; t < threads; ++t) {
      slices[t].p_begin = std::min(a.p, t * step);
      slices[t].p_end = std::min(a.p, (t + 1) * step);
    }
  } else {
    const std::vector<int64_t> bounds = SplitByWeight(row_units, threads, row_weight);
    for (int t = 0; t < threads; ++t) {
      slices[t].row_begin = bounds[t];
      slices[t].row_end = bounds[t + 1];
    }
  }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const SpmmSlice& s = slices[t];
    if (s.p_begin < s.p_end && s.row_begin < s.row_end) kernel(w, s);
  }
}

const KernelTable& Table(const SpmmOptions& o) { return o.kernels != nullptr ? *o.kernels : Kernels(); }

}  // namespace

int ThreadsFor(int64_t macs, const SpmmOptions& options) {
  const int64_t per_thread = std::max<int64_t>(1, options.min_macs_per_thread);
  return static_cast<int>(std::clamp<int64_t>(macs / per_thread, 1, std::max(1, options.threads)));
}

Status Spmm(const BlockSparseMatrix& w, const SpmmArgs& args, const SpmmOptions& options) {
  ACS_RETURN_IF_ERROR(CheckArgs(args));
  Run(w, Table(options).block_sparse, w.num_row_blocks(), [&w](int64_t rb) { return w.row_ptr[rb] + rb; },
      args, options);
  return Status::Ok();
}

Status Spmm(const CsrMatrix& w, const SpmmArgs& args, const SpmmOptions& options) {
  ACS_RETURN_IF_ERROR(CheckArgs(args));
  Run(w, Table(options).csr, w.rows, [&w](int64_t r) { return w.row_ptr[r] + r; }, args, options);
  return Status::Ok();
}

Status Spmm(const NmMatrix& w, const SpmmArgs& args, const SpmmOptions& options) {
  ACS_RETURN_IF_ERROR(CheckArgs(args));
  Run(w, Table(options).nm, w.rows, [](int64_t r) { return r; }, args, options);
  return Status::Ok();
}

Status Spmm(const SparseWeights& w, const SpmmArgs& args, const SpmmOptions& options) {
  return std::visit([&](const auto& m) { return Spmm(m, args, options); }, w);
}

}  // namespace acs::kernels
