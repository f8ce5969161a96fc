// Trains a TorchScript image classifier (a zoo model, or any module mapping [B, C, H, W]
// to logits [B, classes] whose parameters require grad) with SGD and a one-cycle schedule.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <vector>

#include "core/dataset.h"
#include "core/status.h"

namespace acs {

struct TrainOptions {
  int64_t epochs = 3;            // passes over the training set
  int64_t batch_size = 128;      // samples per SGD step
  double peak_lr = 0.1;          // learning rate at the top of the one-cycle schedule
  double warmup_fraction = 0.2;  // share of steps rising linearly from peak_lr / 10 to
                                 // peak_lr; the rest anneal to 0 along a cosine
  double momentum = 0.9;         // Nesterov momentum
  double weight_decay = 5e-4;    // L2 penalty on every parameter
  bool random_crop = false;      // shift by up to 2 pixels (zero padding), per sample
  bool horizontal_flip = true;   // mirror half of the samples
  uint64_t seed = 1;             // data order and augmentation draws
  int64_t eval_batch_size = 500; // samples per forward pass when testing
};

// The state of training after one step; handed to TrainObserver::OnStep.
struct TrainProgress {
  int64_t epoch = 0;           // 1-based
  int64_t epochs = 0;
  int64_t batch = 0;           // 1-based, within the epoch
  int64_t batches = 0;         // per epoch
  double loss = 0;             // mean training loss so far in this epoch
  double top1 = 0;             // training accuracy so far in this epoch, in [0, 1]
  double elapsed_seconds = 0;  // since training started, testing included
  double eta_seconds = 0;      // estimate of the time left
};

struct EpochStats {
  int64_t epoch = 0;     // 1-based
  double train_loss = 0; // mean over the epoch
  double train_top1 = 0; // in [0, 1], on augmented data in training mode
  double test_top1 = 0;  // in [0, 1], in eval mode
  double seconds = 0;    // wall time of the epoch, testing included
};

struct TrainResult {
  std::vector<EpochStats> epochs;
  double test_top1 = 0;      // after the last epoch
  double train_seconds = 0;  // wall time, testing included
};

// Receives training events. Called on the training thread; calls should be cheap.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void OnStep(const TrainProgress& progress) {}
  virtual void OnEpoch(const EpochStats& stats) {}
};

// Trains `model` (a handle: the caller's module changes) on `train`, testing on `test`
// after every epoch, and leaves it in eval mode. Both datasets need labels and the model's input layout. `observer` may be
// null and is not owned. Errors: InvalidArgument for bad options or data, Internal when
// the model fails to run.
StatusOr<TrainResult> TrainClassifier(torch::jit::Module model, const Dataset& train,
                                      const Dataset& test, const TrainOptions& options,
                                      TrainObserver* observer);

// Top-1 accuracy in [0, 1] of `model` on `data` (needs labels). Switches the model to eval
// mode. Errors: InvalidArgument without labels, Internal when the model fails to run.
StatusOr<double> TestTop1(torch::jit::Module model, const Dataset& data, int64_t batch_size);

}  // namespace acs
