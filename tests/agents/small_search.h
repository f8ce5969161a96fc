// The search options agents tests share: a random search of the "plain" test model at half
// its FLOPs on Fashion-MNIST, with few samples.
#pragma once

#include "agents/search_session.h"
#include "tests/core/test_models.h"

namespace acs {

inline SearchSessionOptions SmallSearch() {
  SearchSessionOptions o;
  o.model_path = test_models::BuildTestModel("plain", 3);
  o.input_shape = test_models::TestInputShape();
  o.data_path = "/usr/share/datasets/fashion-mnist";
  o.budget_kind = "flops";
  o.budget_ratio = 0.5;
  o.agent = "random";
  o.calibration_samples = 16;
  o.validation_samples = 32;
  return o;
}

}  // namespace acs
