// A learned state encoder for the DDPG agent: maps the step index of each state to an
// embedding that is concatenated to the state features, trained end to end with the
// network it belongs to (AGMC's graph encoder is one). Not thread-safe.
#pragma once

#include <torch/torch.h>

namespace acs {

class Rng;

class StateEncoder : public torch::nn::Module {
 public:
  virtual int64_t dim() const = 0;
  // Embeddings [B, dim()] of the episode steps `steps` (int64 [B], each in [0, steps)).
  virtual torch::Tensor forward(const torch::Tensor& steps) = 0;
};

// Fills `t` with values uniform in [-bound, bound) drawn from `rng` (portable, unlike
// torch's generator across versions).
void FillUniform(torch::Tensor t, double bound, Rng& rng);

}  // namespace acs
