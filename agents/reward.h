// Scores a policy (DESIGN §4 reward): compress the model (batch-norm recalibration on
// calibration data), then accuracy on a held-out validation subset, or top-1 agreement
// with the dense model when the data has no labels. Scores are cached by policy hash.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/compressor.h"
#include "core/dataset.h"
#include "core/status.h"
#include "core/torchscript_model.h"

namespace acs {

struct Score {
  double accuracy = 0;  // top-1 accuracy, or top-1 agreement with the dense model without labels
  double cost = 0;      // the policy's cost (CostModel units)
  double reward = 0;    // what the agent maximizes
};

// One role: the score of a policy. Not thread-safe.
class RewardFn {
 public:
  virtual ~RewardFn() = default;
  virtual StatusOr<Score> Evaluate(const Policy& policy, double cost) = 0;
};

enum class RewardKind {
  kAccuracy,       // reward = accuracy (budget enforced by the action wall)
  kErrorLogCost,   // reward = -(1 - accuracy) x log(cost), for unconstrained search
};

// How the search compresses a policy before scoring it: the export's compression
// (CompressorOptions defaults) with a cheaper least-squares reconstruction, so that an
// episode of a ResNet-20-sized model takes about a second (see the README's Search
// section for the accuracy this costs). `calibration` is left undefined; the reward sets it.
CompressorOptions SearchCompressorOptions();

struct AccuracyRewardOptions {
  RewardKind kind = RewardKind::kAccuracy;
  int64_t batch_size = 256;  // samples per forward pass while evaluating
  bool cache = true;         // reuse the score of a policy seen before (by hash)
  CompressorOptions compressor = SearchCompressorOptions();  // its calibration is ignored
};

// `model` must outlive the reward. calibration.images feeds batch-norm recalibration and
// reconstruction (may be empty); validation is scored. Errors of Compress or evaluation pass through.
class AccuracyReward final : public RewardFn {
 public:
  AccuracyReward(const ImportedModel* model, Dataset calibration, Dataset validation,
                 AccuracyRewardOptions options = {});
  StatusOr<Score> Evaluate(const Policy& policy, double cost) override;
  // Accuracy of the uncompressed model on the validation data.
  StatusOr<double> DenseAccuracy();
  // Accuracy (or agreement) of an already compressed model on the validation data.
  StatusOr<double> Measure(CompressedModel& compressed);
  int64_t cache_hits() const { return hits_; }

 private:

  const ImportedModel* model_;
  Dataset calibration_, validation_;
  AccuracyRewardOptions options_;
  std::shared_ptr<CompressedModel> reference_;  // the dense model, for fidelity; made on first use
  std::map<std::string, double> cache_;  // policy hash -> accuracy
  int64_t hits_ = 0;
};

// The reward of an accuracy at a cost under `kind`.
double RewardOf(RewardKind kind, double accuracy, double cost);

}  // namespace acs
