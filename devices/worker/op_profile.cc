#include "devices/worker/op_profile.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <memory>

namespace acs::worker {
namespace {

// What the callbacks of the profiling thread write to; null on other threads.
struct Recording {
  std::vector<OpTime> ops;  // outermost ops in start order; us filled at their end
  int depth = 0;            // ops open on this thread
};
thread_local Recording* tl_recording = nullptr;

struct OpStart : at::ObserverContext {
  size_t index = 0;         // into Recording::ops; only for an outermost op
  bool outermost = false;
  std::chrono::steady_clock::time_point start;
};

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  Recording* r = tl_recording;
  if (!r) return nullptr;
  auto ctx = std::make_unique<OpStart>();
  ctx->outermost = r->depth++ == 0;
  if (ctx->outermost) {
    OpTime op;
    op.name = fn.name();
    for (const c10::IValue& v : fn.inputs()) {
      if (v.isTensor()) {
        op.input_shape = v.toTensor().sizes().vec();
        break;
      }
    }
    ctx->index = r->ops.size();
    r->ops.push_back(std::move(op));
  }
  ctx->start = std::chrono::steady_clock::now();
  return ctx;
}

void OnEnd(const at::RecordFunction&, at::ObserverContext* context) {
  const auto end = std::chrono::steady_clock::now();
  Recording* r = tl_recording;
  auto* ctx = static_cast<OpStart*>(context);
  if (!r || !ctx) return;
  --r->depth;
  if (ctx->outermost) r->ops[ctx->index].us = std::chrono::duration<double, std::micro>(end - ctx->start).count();
}

// The outermost ops of one run of `run` on this thread. Ops an op calls run its callbacks
// too (a few tens of nanoseconds each), which stays inside the outer op's time.
StatusOr<std::vector<OpTime>> RecordOnce(const std::function<Status()>& run) {
  Recording recording;
  tl_recording = &recording;
  const at::CallbackHandle handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(OnStart, OnEnd).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  Status status;
  try {
    status = run();
  } catch (const std::exception& e) {
    status = Status::Internal(std::string("profiled run: ") + e.what());
  }
  at::removeCallback(handle);
  tl_recording = nullptr;
  ACS_RETURN_IF_ERROR(status);
  return std::move(recording.ops);
}

}  // namespace

StatusOr<OpProfile> ProfileOps(const std::function<Status()>& run, int runs) {
  if (runs < 1) return Status::InvalidArgument("profile at least one run");
  ACS_RETURN_IF_ERROR(run());
  std::vector<OpTime> mean;
  double run_us = 0;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    ACS_ASSIGN_OR_RETURN(std::vector<OpTime> ops, RecordOnce(run));
    run_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    if (r == 0) {
      mean = std::move(ops);
      continue;
    }
    bool same = ops.size() == mean.size();
    for (size_t i = 0; same && i < ops.size(); ++i) same = ops[i].name == mean[i].name;
    if (!same) return Status::FailedPrecondition("the profiled runs executed different ops");
    for (size_t i = 0; i < ops.size(); ++i) mean[i].us += ops[i].us;
  }
  for (OpTime& op : mean) op.us /= runs;
  return OpProfile{std::move(mean), run_us / runs};
}

double OutsideLayersShare(const OpProfile& profile) {
  double other = 0;
  for (const OpTime& op : profile.ops) other += IsLayerOp(op.name) || FoldsIntoLayer(op.name) ? 0 : op.us;
  return profile.run_us > 0 ? std::min(1.0, other / profile.run_us) : 0.0;
}

bool FoldsIntoLayer(const std::string& name) { return name == "aten::batch_norm"; }

bool IsLayerOp(const std::string& name) {
  static const char* const kLayerOps[] = {"aten::conv2d",       "aten::_convolution",        "aten::convolution",
                                          "aten::linear",       "aten::addmm",               "aten::matmul",
                                          "aten::mkldnn_convolution", "aten::mkldnn_linear"};
  if (name.rfind("acs_rt::", 0) == 0) return true;
  if (name.rfind("prepacked::", 0) == 0 || name.rfind("mkldnn_prepacked::", 0) == 0) return true;
  return std::find(std::begin(kLayerOps), std::end(kLayerOps), name) != std::end(kLayerOps);
}

}  // namespace acs::worker
