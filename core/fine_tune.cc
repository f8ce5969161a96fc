#include "core/fine_tune.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "core/torchscript_model.h"

namespace acs {
namespace {

std::string ShapeText(c10::IntArrayRef sizes) {
  std::string s;
  for (int64_t d : sizes) s += (s.empty() ? "" : "x") + std::to_string(d);
  return "[" + s + "]";
}

// The fp32 weight and bias constants of a weighted node (bias may be absent), each made a
// copy of its own first: the compressed model may share tensors with the model it was
// made from (layers it left as they were), which training must not change.
std::vector<torch::Tensor> OwnFloatTensors(torch::jit::Node* node) {
  std::vector<torch::Tensor> out;
  for (size_t input : {size_t{1}, size_t{2}}) {
    if (node->inputs().size() <= input) continue;
    torch::jit::Node* c = node->inputs()[input]->node();
    if (c->kind() != c10::prim::Constant || !c->hasAttribute(c10::attr::value) ||
        c->kindOf(c10::attr::value) != torch::jit::AttributeKind::t) {
      continue;
    }
    const torch::Tensor& t = c->t(c10::attr::value);
    if (!t.is_floating_point() || t.scalar_type() != torch::kFloat) continue;
    torch::Tensor own = t.clone();
    c->t_(c10::attr::value, own);
    out.push_back(own);
  }
  return out;
}

}  // namespace

StatusOr<FineTuneResult> FineTune(CompressedModel& model, const Dataset& train, const FineTuneOptions& options,
                                  const std::function<void(int64_t, int64_t, double)>& progress,
                                  const FineTuneValidator& validate) {
  const bool distill = static_cast<bool>(options.teacher);
  const double distill_weight = distill ? options.distill_weight : 0.0;
  if (!(distill_weight >= 0 && distill_weight <= 1) || !(options.temperature > 0)) {
    return Status::InvalidArgument("fine-tuning needs a distillation weight in [0, 1] and a temperature > 0");
  }
  if (!train.has_labels() && distill_weight < 1) {
    return Status::InvalidArgument(distill ? "fine-tuning unlabelled data needs distillation alone (weight 1)"
                                           : "fine-tuning needs labelled data, or a teacher to distill from");
  }
  if (train.size() < 1) return Status::InvalidArgument("fine-tuning needs at least one sample");
  if (options.epochs < 1 || options.batch_size < 1 || !(options.learning_rate > 0)) {
    return Status::InvalidArgument("fine-tuning needs epochs, batch size and learning rate > 0");
  }
  std::shared_ptr<torch::jit::Graph> graph = model.module.get_method("forward").graph();
  const std::vector<torch::jit::Node*> nodes = WeightedNodes(*graph);
  if (nodes.size() != model.weighted_configs.size()) {
    return Status::Internal("the compressed model's layers do not match its configs (" + std::to_string(nodes.size()) +
                            " vs " + std::to_string(model.weighted_configs.size()) + ")");
  }
  FineTuneResult result;
  std::vector<torch::Tensor> params, masks, saved;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (model.weighted_configs[i].precision != Precision::kFp32) {
      ++result.layers_kept;
      continue;
    }
    ++result.layers_tuned;
    for (torch::Tensor& t : OwnFloatTensors(nodes[i])) {
      masks.push_back(t != 0);
      saved.push_back(t.clone());
      params.push_back(t);
    }
  }
  if (params.empty()) return Status::FailedPrecondition("the compressed model has no fp32 layer to fine-tune");
  if (validate) {
    torch::NoGradGuard no_grad;
    ACS_ASSIGN_OR_RETURN(result.score_before, validate(model));
  }
  std::vector<torch::Tensor> best = saved;  // the weights of result.kept_epoch
  // The teacher's softened probabilities of every sample, once.
  torch::Tensor soft_targets;
  if (distill) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    try {
      for (int64_t at = 0; at < train.size(); at += 256) {
        const torch::Tensor batch = train.images.narrow(0, at, std::min<int64_t>(256, train.size() - at));
        parts.push_back(torch::softmax(options.teacher(batch) / options.temperature, 1));
      }
    } catch (const std::exception& e) {
      return Status::Internal("fine-tuning: running the teacher failed: " + ShortError(e));
    }
    soft_targets = torch::cat(parts);
    if (soft_targets.dim() != 2 || soft_targets.size(0) != train.size()) {
      return Status::InvalidArgument("fine-tuning: the teacher's logits are not [samples, classes]");
    }
  }

  // Training runs a fresh module of the same graph (its constants are the same tensors)
  // without the executor's optimizations, which would fold the trained constants away;
  // the model gets a fresh module afterwards, so that no plan made before survives.
  torch::jit::Module trainer = ModuleFromGraph(*graph);
  torch::jit::GraphOptimizerEnabledGuard no_optimizations(false);
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = train.size();
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  const int64_t steps = batches * options.epochs;
  for (torch::Tensor& p : params) p.set_requires_grad(true);
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(options.learning_rate)
                                    .momentum(options.momentum)
                                    .nesterov(true)
                                    .weight_decay(options.weight_decay));
  auto& sgd_options = static_cast<torch::optim::SGDOptions&>(sgd.param_groups()[0].options());
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  Status status = Status::Ok();
  // After an epoch: keeps its weights, with a validator only when they score best (a
  // fresh module of the trained graph, run without the executor's optimizations, so that
  // the live constants are read).
  auto end_epoch = [&](int64_t epoch) -> Status {
    torch::NoGradGuard no_grad;
    bool keep = true;
    if (validate) {
      model.module = ModuleFromGraph(*graph);
      ACS_ASSIGN_OR_RETURN(double score, validate(model));
      result.epoch_scores.push_back(score);
      keep = score > result.kept_score();
    }
    if (keep) {
      result.kept_epoch = epoch + 1;
      for (size_t k = 0; k < params.size(); ++k) best[k] = params[k].detach().clone();
    }
    return Status::Ok();
  };
  try {
    for (int64_t epoch = 0; epoch < options.epochs && status.ok(); ++epoch) {
      const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
      double loss_sum = 0;
      for (int64_t b = 0; b < batches; ++b) {
        const int64_t step = epoch * batches + b;
        sgd_options.lr(options.learning_rate * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / steps)));
        const torch::Tensor idx = order.narrow(0, b * options.batch_size, std::min(options.batch_size, n - b * options.batch_size));
        sgd.zero_grad();
        torch::Tensor logits = trainer.forward({train.images.index_select(0, idx)}).toTensor();
        torch::Tensor loss = torch::zeros({}, logits.options());
        if (distill_weight < 1) {
          loss = loss + (1 - distill_weight) *
                            torch::nn::functional::cross_entropy(logits, train.labels.index_select(0, idx));
        }
        if (distill_weight > 0) {
          if (logits.sizes() != soft_targets.index_select(0, idx).sizes()) {
            throw std::invalid_argument("the teacher's logits are " + ShapeText(soft_targets.sizes()) +
                                        " for the data, the model's " + ShapeText(logits.sizes()) + " for a batch");
          }
          const double t = options.temperature;
          const torch::Tensor log_p = torch::log_softmax(logits / t, 1);
          const torch::Tensor kl = torch::nn::functional::kl_div(
              log_p, soft_targets.index_select(0, idx),
              torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean));
          loss = loss + distill_weight * t * t * kl;
        }
        loss.backward();
        sgd.step();
        {
          torch::NoGradGuard no_grad;
          for (size_t k = 0; k < params.size(); ++k) params[k].mul_(masks[k]);
        }
        const double l = loss.item<double>();
        if (!std::isfinite(l)) {
          result.diverged_at_step = step + 1;
          break;
        }
        loss_sum += l;
        ++result.steps;
        if (progress) progress(step + 1, steps, l);
      }
      if (result.diverged_at_step >= 0) break;
      (epoch == 0 ? result.first_loss : result.last_loss) = loss_sum / static_cast<double>(batches);
      if (epoch == 0) result.last_loss = result.first_loss;
      status = end_epoch(epoch);
    }
  } catch (const std::invalid_argument& e) {
    status = Status::InvalidArgument(std::string("fine-tuning: ") + e.what());
  } catch (const std::exception& e) {
    status = Status::Internal("fine-tuning: running the model failed: " + ShortError(e));
  }
  torch::NoGradGuard no_grad;
  const bool keep_last = status.ok() && result.diverged_at_step < 0 && result.kept_epoch == options.epochs;
  for (size_t k = 0; k < params.size(); ++k) {
    params[k].set_requires_grad(false);
    params[k].mutable_grad() = torch::Tensor();
    if (!status.ok()) {
      params[k].copy_(saved[k]);
    } else if (!keep_last) {
      params[k].copy_(best[k]);
    }
  }
  model.module = ModuleFromGraph(*graph);
  ACS_RETURN_IF_ERROR(status);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace acs
