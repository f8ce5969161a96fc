// The dense forms of the runtime (devices/runtime/runtime.h): a frozen graph optimized for
// inference as LibTorch does it, the faster of that and the graph as imported, and the
// dense baselines every speedup is taken against.
#include <torch/csrc/jit/passes/frozen_conv_add_relu_fusion.h>
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>
#include <torch/csrc/jit/passes/frozen_linear_transpose.h>
#include <torch/csrc/jit/passes/frozen_ops_to_mkldnn.h>

#include <algorithm>
#include <cstdio>

#include "devices/measure/harness.h"
#include "devices/runtime/packed_int8.h"
#include "devices/runtime/runtime.h"

namespace acs::runtime {

Status OptimizeDenseOps(std::shared_ptr<torch::jit::Graph>& graph) {
  std::shared_ptr<torch::jit::Graph> g = graph->copy();
  try {
    // The passes of torch::jit::optimize_for_inference (LibTorch 1.13), in its order.
    torch::jit::OptimizeFrozenGraph(g, /*optimize_numerics=*/true);
    torch::jit::FuseFrozenConvAddRelu(g);
    torch::jit::ConvertFrozenOpsToMKLDNN(g);
    torch::jit::FrozenLinearTranspose(g);
  } catch (const std::exception& e) {
    return Status::Internal("optimizing for inference failed: " + ShortError(e));
  }
  graph = std::move(g);
  return Status::Ok();
}

bool HasInt8Activations(const torch::jit::Graph& graph) {
  for (const torch::jit::Node* node : graph.nodes()) {
    const std::string kind = node->kind().toQualString();
    if (kind == kInt8Conv2dOp || kind == kInt8LinearOp) return true;
  }
  return false;
}

std::string OptimizedDiffers(const torch::Tensor& got, const torch::Tensor& expect, bool int8_activations) {
  if (got.sizes() != expect.sizes()) return "another output shape";
  const torch::Tensor error = got - expect;
  const double max_error = error.abs().max().item<double>();
  const double relative_l2 = (error.norm() / expect.norm().clamp_min(1e-12)).item<double>();
  const bool same =
      int8_activations ? relative_l2 <= 1e-2 : max_error <= 1e-4 * std::max(1.0, expect.abs().max().item<double>());
  if (same) return "";
  char why[120];
  std::snprintf(why, sizeof why, "max error %.3g, relative L2 error %.3g", max_error, relative_l2);
  return why;
}

InferenceModule FasterForInference(const torch::jit::Graph& graph, const Shape& input_shape, int threads) {
  InferenceModule out;
  torch::jit::Module plain = ModuleFromGraph(graph);
  out.module = plain;
  std::shared_ptr<torch::jit::Graph> g = const_cast<torch::jit::Graph&>(graph).copy();
  if (Status s = OptimizeDenseOps(g); !s.ok()) {
    out.why_not = s.message();
    return out;
  }
  torch::jit::Module optimized = ModuleFromGraph(*g);
  if (input_shape.empty()) {
    out.why_not = "no input shape to check the optimized graph on";
    return out;
  }
  torch::NoGradGuard no_grad;
  SetCpuThreads(threads);
  torch::Tensor x;
  for (int64_t batch : {2, 1}) {
    Shape shape = input_shape;
    shape[0] = batch;
    x = torch::randn(shape);
    StatusOr<torch::Tensor> expect = RunModule(plain, x), got = RunModule(optimized, x);
    if (!expect.ok()) {
      out.why_not = "the graph does not run on its input shape: " + expect.status().message();
      return out;
    }
    const std::string differs = got.ok() ? OptimizedDiffers(*got, *expect, HasInt8Activations(graph))
                                         : "it fails to run: " + got.status().message();
    if (!differs.empty()) {
      out.why_not = "the optimized graph computes another function (LibTorch's oneDNN rewrite; " + differs + ")";
      return out;
    }
  }
  const std::vector<measure::Measurement> t =
      measure::MeasureChoice({[&] { (void)RunModule(plain, x); }, [&] { (void)RunModule(optimized, x); }}, threads);
  if (t[1].median_us >= t[0].median_us) {
    char why[160];
    std::snprintf(why, sizeof why, "slower optimized for inference (%.1f us vs %.1f us as imported)", t[1].median_us,
                  t[0].median_us);
    out.why_not = why;
    return out;
  }
  out.module = optimized;
  out.optimized = true;
  return out;
}

const char* DenseFormName(DenseForm form) {
  return form == DenseForm::kPlain ? "frozen" : "frozen + optimize_for_inference";
}

StatusOr<DenseModel> DenseModel::Create(const ImportedModel& model, int threads, DenseForm form) {
  DenseModel d;
  d.threads_ = threads;
  d.form_ = DenseForm::kPlain;
  d.module_ = model.module;
  if (form == DenseForm::kPlain) return d;
  InferenceModule m = FasterForInference(*model.frozen, model.input_shape, threads);
  d.why_not_optimized_ = m.why_not;
  if (m.optimized) {
    d.module_ = m.module;
    d.form_ = DenseForm::kOptimized;
  }
  return d;
}

StatusOr<torch::Tensor> DenseModel::Forward(const torch::Tensor& x) {
  SetCpuThreads(threads_);
  return RunModule(module_, x);
}

}  // namespace acs::runtime
