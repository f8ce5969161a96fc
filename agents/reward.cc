#include "agents/reward.h"

#include <cmath>

#include "core/evaluator.h"

namespace acs {

double RewardOf(RewardKind kind, double accuracy, double cost) {
  if (kind == RewardKind::kErrorLogCost) return -(1.0 - accuracy) * std::log(std::max(cost, 1.0 + 1e-9));
  return accuracy;
}

AccuracyReward::AccuracyReward(const ImportedModel* model, Dataset calibration, Dataset validation,
                               AccuracyRewardOptions options)
    : model_(model), calibration_(std::move(calibration)), validation_(std::move(validation)), options_(options) {}

StatusOr<double> AccuracyReward::Measure(CompressedModel& compressed) {
  ModelFn fn = [&compressed](const torch::Tensor& batch) {
    torch::NoGradGuard no_grad;
    return compressed.module.forward({batch}).toTensor();
  };
  EvalOptions eval;
  eval.batch_size = options_.batch_size;
  if (validation_.has_labels()) {
    ACS_ASSIGN_OR_RETURN(Accuracy acc, EvaluateAccuracy(fn, validation_, eval));
    return acc.top1;
  }
  if (!reference_) {
    ACS_ASSIGN_OR_RETURN(CompressedModel dense, Compress(*model_, Policy()));
    reference_ = std::make_shared<CompressedModel>(std::move(dense));
  }
  CompressedModel* reference = reference_.get();
  ModelFn ref = [reference](const torch::Tensor& batch) {
    torch::NoGradGuard no_grad;
    return reference->module.forward({batch}).toTensor();
  };
  ACS_ASSIGN_OR_RETURN(Fidelity f, EvaluateFidelity(ref, fn, validation_, eval));
  return f.top1_agreement;
}

CompressorOptions SearchCompressorOptions() {
  CompressorOptions options;
  // Half the sampled output positions: the Gram matrices cost half, and on ResNet-20 the
  // mean accuracy of random policies moves by less than the sampling noise. (Fewer
  // calibration images cost more accuracy: 32 instead of 64 lose ~7 points on average.)
  options.reconstruction_columns = 2048;
  return options;
}

StatusOr<Score> AccuracyReward::Evaluate(const Policy& policy, double cost) {
  Score score;
  score.cost = cost;
  const std::string hash = policy.Hash();
  auto hit = options_.cache ? cache_.find(hash) : cache_.end();
  if (hit != cache_.end()) {
    ++hits_;
    score.accuracy = hit->second;
  } else {
    CompressorOptions copts = options_.compressor;
    copts.calibration = calibration_.size() > 0 ? calibration_.images : torch::Tensor();
    ACS_ASSIGN_OR_RETURN(CompressedModel compressed, Compress(*model_, policy, copts));
    ACS_ASSIGN_OR_RETURN(score.accuracy, Measure(compressed));
    if (options_.cache) cache_[hash] = score.accuracy;
  }
  score.reward = RewardOf(options_.kind, score.accuracy, cost);
  return score;
}

StatusOr<double> AccuracyReward::DenseAccuracy() {
  Policy dense;
  ACS_ASSIGN_OR_RETURN(CompressedModel compressed, Compress(*model_, dense));
  return Measure(compressed);
}

}  // namespace acs
