// Fine-tuning of a compressed model (DESIGN §3): SGD over the weights and biases of its fp32
// and int8 conv / linear layers, in place, with every weight that is exactly zero kept at
// zero, so that sparsity patterns and removed channels survive. int8 layers train
// quantization-aware: their forward uses the weights rounded to the per-channel int8 grid
// (SimulatePrecision's), the gradient passes straight through the rounding, and they end on
// that grid. The loss is cross-entropy on the labels, or knowledge distillation from a
// teacher (the dense model) mixed with it, or distillation alone (no labels needed). bf16 /
// int4 layers keep their weights; batch norms and int8 activation ranges keep theirs.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/compressor.h"
#include "core/dataset.h"
#include "core/status.h"

namespace acs {

struct FineTuneOptions {
  int64_t epochs = 1;          // passes over the data, >= 1
  int64_t batch_size = 64;
  double learning_rate = 0.005;  // SGD with Nesterov momentum, cosine-annealed to 0
  double momentum = 0.9;
  double weight_decay = 1e-4;
  uint64_t seed = 1;           // data order
  // Distillation (Hinton et al. 2015): with a teacher, the loss is distill_weight x T^2 x
  // KL(softmax(teacher / T) || softmax(model / T)) + (1 - distill_weight) x cross-entropy,
  // T = temperature; labels are needed unless distill_weight is 1. The teacher maps a batch
  // [B, C, H, W] to logits [B, classes]; it is run once over the data, without gradients.
  std::function<torch::Tensor(const torch::Tensor&)> teacher;  // null: cross-entropy alone
  double distill_weight = 0.7;  // in [0, 1]
  double temperature = 4;       // > 0
  bool int8_aware = true;       // train int8 layers quantization-aware; false: keep them
  // The int8 layers train at this share of learning_rate (at 1, ResNet-20 with every layer
  // int8 diverges; docs/service.md).
  double int8_learning_rate_scale = 0.3;
};

struct FineTuneResult {
  int64_t steps = 0;
  int64_t layers_tuned = 0;    // fp32 and int8 layers whose weights were trained
  int64_t layers_int8 = 0;     // of them, int8 layers trained quantization-aware
  int64_t layers_kept = 0;     // layers in other precisions, unchanged
  double first_loss = 0;       // mean training loss of the first and the last epoch
  double last_loss = 0;
  double seconds = 0;
  // With a validator: its score before fine-tuning and after each epoch. The weights kept:
  // those of the best score with a validator, else of the last whole epoch; 0 = the
  // weights before fine-tuning.
  double score_before = -1;            // -1 without a validator
  std::vector<double> epoch_scores;
  int64_t kept_epoch = 0;              // 0..epochs
  int64_t diverged_at_step = -1;       // the step whose loss was not finite; -1: none
  double kept_score() const {
    return kept_epoch == 0 || epoch_scores.empty() ? score_before : epoch_scores[kept_epoch - 1];
  }
};

// Scores a model on held-out data, higher is better (e.g. validation top-1).
using FineTuneValidator = std::function<StatusOr<double>(CompressedModel&)>;

// `progress(step, steps, loss)` after every step, may be null. With `validate`, the model is
// scored before fine-tuning and after every epoch, and ends with the weights of the best
// score (ties keep the earlier): fine-tuning never leaves it scoring lower than it began.
// Without one, the last epoch's weights are kept. A loss that is not finite ends the
// training with the weights kept so far. Errors: InvalidArgument for unlabelled data without
// distillation alone, teacher logits of another shape than the model's, or bad options;
// FailedPrecondition when the model has no layer to tune; Internal when the model
// fails to run (e.g. data of another shape); the validator's. On an error the weights are
// restored.
StatusOr<FineTuneResult> FineTune(CompressedModel& model, const Dataset& train, const FineTuneOptions& options,
                                  const std::function<void(int64_t, int64_t, double)>& progress = nullptr,
                                  const FineTuneValidator& validate = nullptr);

}  // namespace acs
