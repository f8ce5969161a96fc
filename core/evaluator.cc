#include "core/evaluator.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>

namespace acs {
namespace {

std::string ShapeOf(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

std::string SourceOf(const Dataset& data) { return data.source.empty() ? "the dataset" : data.source; }

// How many samples of `data` to evaluate, or an error for unusable data or options.
StatusOr<int64_t> SampleCount(const Dataset& data, const EvalOptions& options) {
  if (options.batch_size <= 0) return Status::InvalidArgument("batch_size must be positive");
  if (options.limit < 0) return Status::InvalidArgument("limit must not be negative");
  if (!data.images.defined() || data.images.dim() < 1) {
    return Status::InvalidArgument(SourceOf(data) + " holds no images");
  }
  int64_t n = data.size();
  if (options.limit > 0) n = std::min(n, options.limit);
  return n;
}

// Runs `model` on samples [start, start + count) and checks that it returns [count, classes]
// logits; a thrown error becomes a Status. `role` names the model in messages. The result is
// float64 on the CPU.
StatusOr<torch::Tensor> RunBatch(const char* role, const ModelFn& model, const Dataset& data, int64_t start,
                                 int64_t count) {
  const torch::Tensor batch = data.images.narrow(0, start, count);
  const std::string where = "on samples [" + std::to_string(start) + ", " + std::to_string(start + count) +
                            ") of " + SourceOf(data);
  torch::Tensor out;
  try {
    out = model(batch);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(std::string(role) + " failed " + where + " (input " + ShapeOf(batch) +
                                   "): " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(std::string(role) + " failed " + where + ": " + e.what());
  }
  if (!out.defined() || out.dim() != 2 || out.size(0) != count || out.size(1) == 0) {
    const std::string shape = out.defined() ? ShapeOf(out) : std::string("undefined");
    return Status::InvalidArgument(std::string(role) + " output " + shape + " " + where + " is not [" +
                                   std::to_string(count) + ", classes]");
  }
  return out.to(torch::kCPU, torch::kDouble);
}

}  // namespace

StatusOr<Accuracy> EvaluateAccuracy(const ModelFn& model, const Dataset& data, const EvalOptions& options) {
  ACS_ASSIGN_OR_RETURN(int64_t n, SampleCount(data, options));
  if (!data.has_labels()) {
    return Status::FailedPrecondition("accuracy needs labels, and " + SourceOf(data) + " has none");
  }
  if (data.labels.dim() != 1 || data.labels.size(0) < n) {
    return Status::InvalidArgument("labels " + ShapeOf(data.labels) + " of " + SourceOf(data) +
                                   " do not match the " + std::to_string(data.size()) + " images");
  }
  torch::NoGradGuard no_grad;
  int64_t top1 = 0, top5 = 0;
  for (int64_t start = 0; start < n; start += options.batch_size) {
    const int64_t count = std::min(options.batch_size, n - start);
    ACS_ASSIGN_OR_RETURN(torch::Tensor logits, RunBatch("model", model, data, start, count));
    const torch::Tensor labels = data.labels.narrow(0, start, count).to(torch::kLong);
    const int64_t classes = logits.size(1);
    if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= classes) {
      return Status::InvalidArgument("labels of " + SourceOf(data) + " lie outside the model's " +
                                     std::to_string(classes) + " classes");
    }
    const torch::Tensor target = labels.unsqueeze(1);
    const torch::Tensor topk = std::get<1>(logits.topk(std::min<int64_t>(5, classes), 1));
    top1 += logits.argmax(1).eq(labels).sum().item<int64_t>();
    top5 += topk.eq(target).any(1).sum().item<int64_t>();
  }
  Accuracy result;
  result.samples = n;
  if (n > 0) {
    result.top1 = static_cast<double>(top1) / n;
    result.top5 = static_cast<double>(top5) / n;
  }
  return result;
}

StatusOr<Fidelity> EvaluateFidelity(const ModelFn& reference, const ModelFn& model, const Dataset& data,
                                    const EvalOptions& options) {
  ACS_ASSIGN_OR_RETURN(int64_t n, SampleCount(data, options));
  torch::NoGradGuard no_grad;
  int64_t agree = 0;
  double kl_sum = 0;
  for (int64_t start = 0; start < n; start += options.batch_size) {
    const int64_t count = std::min(options.batch_size, n - start);
    ACS_ASSIGN_OR_RETURN(torch::Tensor ref, RunBatch("reference model", reference, data, start, count));
    ACS_ASSIGN_OR_RETURN(torch::Tensor out, RunBatch("model", model, data, start, count));
    if (ref.size(1) != out.size(1)) {
      return Status::InvalidArgument("model gives " + std::to_string(out.size(1)) + " classes, reference " +
                                     std::to_string(ref.size(1)));
    }
    agree += ref.argmax(1).eq(out.argmax(1)).sum().item<int64_t>();
    const torch::Tensor log_p = torch::log_softmax(ref, 1);
    const torch::Tensor log_q = torch::log_softmax(out, 1);
    // Terms with p = 0 contribute nothing (and must not turn into 0 * inf).
    const torch::Tensor p = log_p.exp();
    kl_sum += torch::where(p > 0, p * (log_p - log_q), torch::zeros_like(p)).sum().item<double>();
  }
  Fidelity result;
  result.samples = n;
  if (n > 0) {
    result.top1_agreement = static_cast<double>(agree) / n;
    result.mean_kl = kl_sum / n;
  }
  return result;
}

}  // namespace acs
