#include "core/fine_tune.h"

#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "core/calibration.h"
#include "core/torchscript_model.h"
#include "core/weight_transforms.h"

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

// An int8 layer's weight input while it trains: the weight constant rounded to its
// per-channel int8 grid in the graph (scale max|w| / 127, as SimulatePrecision rounds), the
// gradient passing straight through.
struct WeightFakeQuant {
  torch::jit::Node* layer = nullptr;
  torch::jit::Value* weight = nullptr;  // the constant
};

// Nothing for a layer whose weight is not a constant tensor (it does not train either).
std::optional<WeightFakeQuant> InsertWeightFakeQuant(torch::jit::Graph& graph, torch::jit::Node* layer) {
  WeightFakeQuant f{layer, layer->input(1)};
  const c10::optional<c10::IValue> constant = torch::jit::toIValue(f.weight);
  if (!constant || !constant->isTensor()) return std::nullopt;
  const torch::Tensor w = constant->toTensor();
  std::vector<int64_t> reduce;
  for (int64_t d = 1; d < w.dim(); ++d) reduce.push_back(d);
  torch::jit::WithInsertPoint guard(layer);
  auto op = [&graph](const char* kind, std::vector<torch::jit::NamedValue> args) {
    return graph.insert(c10::Symbol::fromQualString(kind), args);
  };
  torch::jit::Value* scale = op("aten::amax", {op("aten::abs", {f.weight}), reduce, false});
  scale = op("aten::detach", {op("aten::clamp_min", {op("aten::div", {scale, 127.0}), 1e-12})});
  torch::jit::Value* zero_point = graph.insertConstant(torch::zeros({w.size(0)}, torch::kInt));
  layer->replaceInput(1, op("aten::fake_quantize_per_channel_affine", {f.weight, scale, zero_point, 0, -127, 127}));
  return f;
}

// Gives the layer its weight constant back, rounded to the int8 grid when `round` (trained
// weights; restored ones are on it already); the nodes inserted are left to dead-code
// elimination.
void RemoveWeightFakeQuant(const WeightFakeQuant& f, bool round) {
  f.layer->replaceInput(1, f.weight);
  if (!round) return;
  torch::Tensor w = torch::jit::toIValue(f.weight)->toTensor();
  w.copy_(SimulatePrecision(w, Precision::kInt8));
}

// Re-estimates the statistics of `model`'s forward `graph` for its kept weights (see
// FineTuneOptions::reestimate) and records it in `result`. With a validator they stay only
// when they score no lower than result->kept_score(). On an error the statistics are as
// they were.
Status ReestimateKept(CompressedModel& model, torch::jit::Graph& graph, const FineTuneOptions& options,
                      const FineTuneValidator& validate, FineTuneResult* result) {
  torch::NoGradGuard no_grad;
  ACS_ASSIGN_OR_RETURN(Reestimation r,
                       ReestimateStatistics(graph, model.module, options.calibration, options.calibration_batch));
  model.module = ModuleFromGraph(graph);
  if (validate) {
    StatusOr<double> score = validate(model);
    if (score.ok()) result->reestimated_score = *score;
    if (!score.ok() || *score < result->kept_score()) {
      UndoReestimation(r);
      torch::jit::EliminateDeadCode(graph.block());
      model.module = ModuleFromGraph(graph);
      return score.status();
    }
  }
  torch::jit::EliminateDeadCode(graph.block());
  model.module = ModuleFromGraph(graph);
  result->reestimation_kept = true;
  result->batch_norms_reestimated = r.batch_norms;
  result->int8_ranges_reestimated = r.int8_ranges;
  return Status::Ok();
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
  if (!(options.momentum >= 0) || !(options.weight_decay >= 0) || !(options.int8_learning_rate_scale >= 0) ||
      !(options.max_gradient_norm >= 0)) {
    return Status::InvalidArgument(
        "fine-tuning needs momentum, weight decay, the int8 rate scale and the gradient norm bound >= 0");
  }
  const bool reestimate = options.reestimate && options.calibration.defined() && options.calibration.size(0) > 0;
  if (reestimate && options.calibration.sizes().slice(1) != train.images.sizes().slice(1)) {
    return Status::InvalidArgument("fine-tuning: calibration samples are " +
                                   ShapeText(options.calibration.sizes().slice(1)) + ", the data's " +
                                   ShapeText(train.images.sizes().slice(1)));
  }
  std::shared_ptr<torch::jit::Graph> graph = model.module.get_method("forward").graph();
  const std::vector<torch::jit::Node*> nodes = WeightedNodes(*graph);
  if (nodes.size() != model.weighted_configs.size()) {
    return Status::Internal("the compressed model's layers do not match its configs (" + std::to_string(nodes.size()) +
                            " vs " + std::to_string(model.weighted_configs.size()) + ")");
  }
  FineTuneResult result;
  std::vector<torch::Tensor> params, masks, saved;
  std::vector<WeightFakeQuant> fake_quants;
  std::vector<bool> int8_param;  // per entry of params
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Precision precision = model.weighted_configs[i].precision;
    const bool int8 = precision == Precision::kInt8 && options.int8_aware;
    if (precision != Precision::kFp32 && !int8) {
      ++result.layers_kept;
      continue;
    }
    ++result.layers_tuned;
    result.layers_int8 += int8;
    for (torch::Tensor& t : OwnFloatTensors(nodes[i])) {
      int8_param.push_back(int8);
      // Zeros are pruned weights, except in a dense int8 layer, where rounding made them.
      const bool dense_int8 = int8 && model.weighted_configs[i].pattern == Pattern::kDense;
      masks.push_back(dense_int8 ? torch::ones_like(t, torch::kBool) : t != 0);
      saved.push_back(t.clone());
      params.push_back(t);
    }
  }
  if (params.empty()) return Status::FailedPrecondition("the compressed model has no fp32 or int8 layer to fine-tune");
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

  // From here every exit passes the end, which takes the int8 layers' rounding out again.
  Status status = Status::Ok();
  const auto start = std::chrono::steady_clock::now();
  try {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (model.weighted_configs[i].precision == Precision::kInt8 && options.int8_aware) {
        if (auto f = InsertWeightFakeQuant(*graph, nodes[i])) fake_quants.push_back(*f);
      }
    }
    // Training runs a fresh module of the same graph (its constants are the same tensors)
    // without the executor's optimizations, which would fold the trained constants away;
    // the model gets a fresh module afterwards, so that no plan made before survives.
    torch::jit::Module trainer = ModuleFromGraph(*graph);
    torch::jit::GraphOptimizerEnabledGuard no_optimizations(false);
    const int64_t n = train.size();
    const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
    const int64_t steps = batches * options.epochs;
    for (torch::Tensor& p : params) p.set_requires_grad(true);
    // Two groups: fp32 parameters, and int8 layers' at int8_learning_rate_scale of the rate.
    const double int8_scale = options.int8_learning_rate_scale;
    std::vector<torch::Tensor> fp32_params, int8_params;
    for (size_t k = 0; k < params.size(); ++k) (int8_param[k] ? int8_params : fp32_params).push_back(params[k]);
    auto group_options = [&](double scale) {
      return std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(options.learning_rate * scale)
                                                            .momentum(options.momentum)
                                                            .nesterov(true)
                                                            .weight_decay(options.weight_decay));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    std::vector<double> group_scale;  // of the scheduled rate
    for (auto [group, scale] : {std::make_pair(&fp32_params, 1.0), std::make_pair(&int8_params, int8_scale)}) {
      if (group->empty()) continue;
      groups.emplace_back(*group, group_options(scale));
      group_scale.push_back(scale);
    }
    torch::optim::SGD sgd(groups, torch::optim::SGDOptions(options.learning_rate));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
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
    for (int64_t epoch = 0; epoch < options.epochs && status.ok(); ++epoch) {
      const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
      double loss_sum = 0;
      for (int64_t b = 0; b < batches; ++b) {
        const int64_t step = epoch * batches + b;
        const double lr = options.learning_rate * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / steps));
        for (size_t g = 0; g < group_scale.size(); ++g) {
          static_cast<torch::optim::SGDOptions&>(sgd.param_groups()[g].options()).lr(lr * group_scale[g]);
        }
        const torch::Tensor idx =
            order.narrow(0, b * options.batch_size, std::min(options.batch_size, n - b * options.batch_size));
        sgd.zero_grad();
        torch::Tensor logits = trainer.forward({train.images.index_select(0, idx)}).toTensor();
        torch::Tensor loss = torch::zeros({}, logits.options());
        if (distill_weight < 1) {
          loss = loss +
                 (1 - distill_weight) * torch::nn::functional::cross_entropy(logits, train.labels.index_select(0, idx));
        }
        if (distill_weight > 0) {
          if (logits.sizes() != soft_targets.index_select(0, idx).sizes()) {
            throw std::invalid_argument("the teacher's logits are " + ShapeText(soft_targets.sizes()) +
                                        " for the data, the model's " + ShapeText(logits.sizes()) + " for a batch");
          }
          const double t = options.temperature;
          const torch::Tensor log_p = torch::log_softmax(logits / t, 1);
          const torch::Tensor kl =
              torch::nn::functional::kl_div(log_p, soft_targets.index_select(0, idx),
                                            torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean));
          loss = loss + distill_weight * t * t * kl;
        }
        loss.backward();
        if (options.max_gradient_norm > 0) torch::nn::utils::clip_grad_norm_(params, options.max_gradient_norm);
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
  for (const WeightFakeQuant& f : fake_quants) RemoveWeightFakeQuant(f, status.ok());
  torch::jit::EliminateDeadCode(graph);
  model.module = ModuleFromGraph(*graph);
  ACS_RETURN_IF_ERROR(status);
  if (reestimate && result.kept_epoch > 0) {
    if (Status s = ReestimateKept(model, *graph, options, validate, &result); !s.ok()) {
      for (size_t k = 0; k < params.size(); ++k) params[k].copy_(saved[k]);
      model.module = ModuleFromGraph(*graph);
      return s;
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace acs
