// Accuracy with labels (top-1 / top-5) and fidelity against a reference model without labels.
#pragma once

#include <torch/types.h>

#include <functional>

#include "core/dataset.h"
#include "core/status.h"

namespace acs {

// Maps a batch of inputs [B, C, H, W] to logits [B, classes]. May throw c10::Error;
// the evaluator converts that to a Status.
using ModelFn = std::function<torch::Tensor(const torch::Tensor& batch)>;

struct EvalOptions {
  int64_t batch_size = 128;  // samples per forward pass
  int64_t limit = 0;         // evaluate at most this many samples; 0 = all
};

struct Accuracy {
  double top1 = 0;  // in [0, 1]
  double top5 = 0;  // in [0, 1]; equals top1 bookkeeping when classes < 5 (top-k clamps to classes)
  int64_t samples = 0;
};

struct Fidelity {
  double top1_agreement = 0;  // share of samples where argmax matches the reference
  double mean_kl = 0;         // mean KL(reference || model) of the softmax outputs, nats
  int64_t samples = 0;
};

// Requires labels. Error if the model output is not [B, classes] or labels exceed classes.
StatusOr<Accuracy> EvaluateAccuracy(const ModelFn& model, const Dataset& data,
                                    const EvalOptions& options = {});
StatusOr<Fidelity> EvaluateFidelity(const ModelFn& reference, const ModelFn& model,
                                    const Dataset& data, const EvalOptions& options = {});

}  // namespace acs
