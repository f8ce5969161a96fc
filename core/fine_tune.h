// Fine-tuning of a compressed model (DESIGN §3): SGD on labelled data over the weights and
// biases of its fp32 conv / linear layers, in place, with every weight that is exactly zero
// kept at zero, so that sparsity patterns and removed channels survive. Layers in other
// precisions keep their weights (they hold quantization-grid values); batch norms keep
// their inference statistics.
#pragma once

#include <cstdint>
#include <functional>

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
};

struct FineTuneResult {
  int64_t steps = 0;
  int64_t layers_tuned = 0;    // fp32 layers whose weights were trained
  int64_t layers_kept = 0;     // layers in other precisions, unchanged
  double first_loss = 0;       // mean training loss of the first and the last epoch
  double last_loss = 0;
  double seconds = 0;
};

// `progress(step, steps, loss)` after every step, may be null. Errors: InvalidArgument for
// unlabelled data or bad options; FailedPrecondition when the model has no fp32 layer to
// tune; Internal when the model fails to run (e.g. data of another shape) or the loss
// diverges. On an error the weights are restored.
StatusOr<FineTuneResult> FineTune(CompressedModel& model, const Dataset& train, const FineTuneOptions& options,
                                  const std::function<void(int64_t, int64_t, double)>& progress = nullptr);

}  // namespace acs
