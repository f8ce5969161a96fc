// Fine-tuning of a compressed model (DESIGN §3): SGD over the weights and biases of its fp32
// and int8 conv / linear layers, in place, with every weight that is exactly zero kept at
// zero, so that sparsity patterns and removed channels survive. int8 layers train
// quantization-aware: their forward uses the weights rounded to the per-channel int8 grid
// (SimulatePrecision's), the gradient passes straight through the rounding, and they end on
// that grid. The loss is cross-entropy on the labels, or knowledge distillation from a
// teacher (the dense model) mixed with it, or distillation alone (no labels needed). bf16 /
// int4 layers keep their weights. Batch norms and int8 activation ranges keep theirs while
// training; afterwards, with calibration data, they are re-estimated for the weights kept.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/compressor.h"
#include "core/dataset.h"
#include "core/status.h"

namespace acs {

struct FineTuneOptions {
  int64_t epochs = 1;  // passes over the data, >= 1
  int64_t batch_size = 64;
  double learning_rate = 0.005;  // SGD with Nesterov momentum, cosine-annealed to 0
  double momentum = 0.9;
  double weight_decay = 1e-4;
  uint64_t seed = 1;  // data order
  // Distillation (Hinton et al. 2015): with a teacher, the loss is distill_weight x T^2 x
  // KL(softmax(teacher / T) || softmax(model / T)) + (1 - distill_weight) x cross-entropy,
  // T = temperature; labels are needed unless distill_weight is 1. The teacher maps a batch
  // [B, C, H, W] to logits [B, classes]; it is run once over the data, without gradients.
  std::function<torch::Tensor(const torch::Tensor&)> teacher;  // null: cross-entropy alone
  double distill_weight = 0.7;                                 // in [0, 1]
  double temperature = 4;                                      // > 0
  bool int8_aware = true;                                      // train int8 layers quantization-aware; false: keep them
  // The int8 layers train at this share of learning_rate (at 1, ResNet-20 with every layer
  // int8 diverges; docs/service.md).
  double int8_learning_rate_scale = 0.3;
  // The gradient of all parameters together is scaled down to at most this norm before a
  // step; 0: never. Channel-pruned ResNet-20 at lr 0.005 diverged within 10 steps without
  // (its gradient norm grew 16 -> 10^10); with 4 it trained to +4.8 points (docs/service.md).
  double max_gradient_norm = 4.0;
  // After training, when the weights kept are trained ones and calibration data is given:
  // re-estimate every batch norm's running statistics and every int8 layer's activation
  // range on it, the compressor's way (ReestimateStatistics, core/calibration.h). With a
  // validator they are kept only when they score no lower than the weights did without.
  bool reestimate = true;
  torch::Tensor calibration;       // inputs [N, C, H, W] like the data's; undefined: none
  int64_t calibration_batch = 64;  // samples per forward pass while re-estimating
};

struct FineTuneResult {
  int64_t steps = 0;
  int64_t layers_tuned = 0;  // fp32 and int8 layers whose weights were trained
  int64_t layers_int8 = 0;   // of them, int8 layers trained quantization-aware
  int64_t layers_kept = 0;   // layers in other precisions, unchanged
  double first_loss = 0;     // mean training loss of the first and the last epoch
  double last_loss = 0;
  double seconds = 0;
  // With a validator: its score before fine-tuning and after each epoch. The weights kept:
  // those of the best score with a validator, else of the last whole epoch; 0 = the
  // weights before fine-tuning.
  double score_before = -1;  // -1 without a validator
  std::vector<double> epoch_scores;
  int64_t kept_epoch = 0;         // 0..epochs
  int64_t diverged_at_step = -1;  // the step whose loss was not finite; -1: none
  // Re-estimation (FineTuneOptions::reestimate): whether the model ends with re-estimated
  // statistics, how many of each it re-estimated (0 unless kept), and with a validator
  // the score with them (-1: not run, or no validator).
  bool reestimation_kept = false;
  int64_t batch_norms_reestimated = 0;
  int64_t int8_ranges_reestimated = 0;
  double reestimated_score = -1;
  // The validator's score of the model as it ends (with one).
  double kept_score() const {
    if (reestimation_kept && !epoch_scores.empty()) return reestimated_score;
    return kept_epoch == 0 || epoch_scores.empty() ? score_before : epoch_scores[kept_epoch - 1];
  }
};

// Scores a model on held-out data, higher is better (e.g. validation top-1).
using FineTuneValidator = std::function<StatusOr<double>(CompressedModel&)>;

// `progress(step, steps, loss)` after every step, may be null. With `validate`, the model is
// scored before fine-tuning and after every epoch, and ends with the weights of the best
// score (ties keep the earlier): fine-tuning never leaves it scoring lower than it began.
// Without one, the last epoch's weights are kept. Then the statistics are re-estimated as
// FineTuneOptions::reestimate says (with a validator, scored once more). A loss that is not finite ends the
// training with the weights kept so far. Errors: InvalidArgument for unlabelled data without
// distillation alone, teacher logits of another shape than the model's, calibration data
// of another sample shape than the training data's, or bad options;
// FailedPrecondition when the model has no layer to tune; Internal when the model
// fails to run (e.g. data of another shape); InvalidArgument when re-estimation fails; the
// validator's. On an error the weights and statistics are restored.
StatusOr<FineTuneResult> FineTune(CompressedModel& model, const Dataset& train, const FineTuneOptions& options,
                                  const std::function<void(int64_t, int64_t, double)>& progress = nullptr,
                                  const FineTuneValidator& validate = nullptr);

}  // namespace acs
