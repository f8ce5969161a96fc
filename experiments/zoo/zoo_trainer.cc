#include "experiments/zoo/zoo_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <string>

namespace acs {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Learning rate at `step` of `total`: linear warm-up from peak / 10, then cosine to 0.
double OneCycleLr(const TrainOptions& o, int64_t step, int64_t total) {
  double warmup = std::max(1.0, o.warmup_fraction * static_cast<double>(total));
  double t = static_cast<double>(step);
  if (t < warmup) return o.peak_lr * (0.1 + 0.9 * t / warmup);
  double progress = (t - warmup) / std::max(1.0, static_cast<double>(total) - warmup);
  return o.peak_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// A random crop of `images` [B, C, H, W] zero-padded by 2 on every side, per sample.
torch::Tensor RandomCrop(const torch::Tensor& images, at::Generator& gen) {
  constexpr int64_t kPad = 2;
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  torch::Tensor padded = torch::constant_pad_nd(images, {kPad, kPad, kPad, kPad}, 0.0);
  torch::Tensor shifts = torch::randint(0, 2 * kPad + 1, {n, 2}, gen, torch::kLong);
  const int64_t* s = shifts.data_ptr<int64_t>();
  torch::Tensor out = torch::empty_like(images);
  for (int64_t i = 0; i < n; ++i) {
    out[i].copy_(padded[i].narrow(1, s[2 * i], h).narrow(2, s[2 * i + 1], w));
  }
  return out;
}

// Mirrors each sample of `images` [B, C, H, W] left-right with probability 1/2.
torch::Tensor RandomFlip(const torch::Tensor& images, at::Generator& gen) {
  torch::Tensor flip = torch::rand({images.size(0), 1, 1, 1}, gen) < 0.5;
  return torch::where(flip, images.flip({3}), images);
}

Status CheckLabelled(const Dataset& data, const char* role) {
  if (data.size() == 0) return Status::InvalidArgument(std::string(role) + " data is empty");
  if (!data.has_labels()) {
    return Status::InvalidArgument(std::string(role) + " data has no labels: " + data.source);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<double> TestTop1(torch::jit::Module model, const Dataset& data, int64_t batch_size) {
  ACS_RETURN_IF_ERROR(CheckLabelled(data, "test"));
  if (batch_size <= 0) return Status::InvalidArgument("batch size must be positive");
  try {
    torch::NoGradGuard no_grad;
    model.eval();
    int64_t correct = 0;
    for (int64_t start = 0; start < data.size(); start += batch_size) {
      int64_t len = std::min(batch_size, data.size() - start);
      torch::Tensor logits = model.forward({data.images.narrow(0, start, len)}).toTensor();
      correct += logits.argmax(1).eq(data.labels.narrow(0, start, len)).sum().item<int64_t>();
    }
    return static_cast<double>(correct) / static_cast<double>(data.size());
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("running the model: ") + e.what_without_backtrace());
  }
}

StatusOr<TrainResult> TrainClassifier(torch::jit::Module model, const Dataset& train,
                                      const Dataset& test, const TrainOptions& options,
                                      TrainObserver* observer) {
  ACS_RETURN_IF_ERROR(CheckLabelled(train, "training"));
  ACS_RETURN_IF_ERROR(CheckLabelled(test, "test"));
  if (options.epochs <= 0 || options.batch_size <= 0 || options.peak_lr <= 0) {
    return Status::InvalidArgument("epochs, batch size and peak learning rate must be positive");
  }
  std::vector<torch::Tensor> params;
  for (const torch::Tensor& p : model.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  if (params.empty()) return Status::InvalidArgument("the model has no trainable parameters");

  const int64_t n = train.size();
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = batches * options.epochs;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(options.peak_lr)
                                    .momentum(options.momentum)
                                    .nesterov(true)
                                    .weight_decay(options.weight_decay));
  auto& sgd_options = static_cast<torch::optim::SGDOptions&>(sgd.param_groups()[0].options());

  TrainResult result;
  const Clock::time_point start = Clock::now();
  try {
    for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
      const Clock::time_point epoch_start = Clock::now();
      model.train();
      torch::Tensor order = torch::randperm(n, gen, torch::kLong);
      double loss_sum = 0;
      int64_t correct = 0, seen = 0;
      for (int64_t b = 0; b < batches; ++b) {
        int64_t step = (epoch - 1) * batches + b;
        sgd_options.lr(OneCycleLr(options, step, total_steps));
        torch::Tensor idx = order.narrow(0, b * options.batch_size,
                                         std::min(options.batch_size, n - b * options.batch_size));
        torch::Tensor x = train.images.index_select(0, idx);
        torch::Tensor y = train.labels.index_select(0, idx);
        if (options.random_crop) x = RandomCrop(x, gen);
        if (options.horizontal_flip) x = RandomFlip(x, gen);

        sgd.zero_grad();
        torch::Tensor logits = model.forward({x}).toTensor();
        torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
        loss.backward();
        sgd.step();

        const int64_t len = idx.size(0);
        loss_sum += loss.item<double>() * static_cast<double>(len);
        correct += logits.argmax(1).eq(y).sum().item<int64_t>();
        seen += len;
        if (observer != nullptr) {
          TrainProgress p;
          p.epoch = epoch;
          p.epochs = options.epochs;
          p.batch = b + 1;
          p.batches = batches;
          p.loss = loss_sum / static_cast<double>(seen);
          p.top1 = static_cast<double>(correct) / static_cast<double>(seen);
          p.elapsed_seconds = SecondsSince(start);
          p.eta_seconds = p.elapsed_seconds / static_cast<double>(step + 1) *
                          static_cast<double>(total_steps - step - 1);
          observer->OnStep(p);
        }
      }
      EpochStats stats;
      stats.epoch = epoch;
      stats.train_loss = loss_sum / static_cast<double>(seen);
      stats.train_top1 = static_cast<double>(correct) / static_cast<double>(seen);
      ACS_ASSIGN_OR_RETURN(stats.test_top1, TestTop1(model, test, options.eval_batch_size));
      stats.seconds = SecondsSince(epoch_start);
      if (!std::isfinite(stats.train_loss)) {
        return Status::Internal("training diverged (loss is " + std::to_string(stats.train_loss) +
                                "); try a lower learning rate");
      }
      result.epochs.push_back(stats);
      if (observer != nullptr) observer->OnEpoch(stats);
    }
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("training the model: ") + e.what_without_backtrace());
  }
  model.eval();
  result.test_top1 = result.epochs.back().test_top1;
  result.train_seconds = SecondsSince(start);
  return result;
}

}  // namespace acs
