// Helpers shared by the search tests: importing a test model and a reward that needs no
// model.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "agents/reward.h"
#include "core/importer.h"
#include "tests/core/test_models.h"

namespace acs::test_util {

// The named model of tests/core/test_models.h, imported; a failure is a test failure.
inline std::shared_ptr<ImportedModel> Import(const std::string& name) {
  auto m = ImportTorchScript(test_models::BuildTestModel(name), {test_models::TestInputShape()});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

// Highest (1) when every configured sparsity equals `target`: 1 / (1 + sum |s - target|).
class ToyReward final : public RewardFn {
 public:
  explicit ToyReward(double target) : target_(target) {}
  StatusOr<Score> Evaluate(const Policy& policy, double cost) override {
    Score s;
    s.cost = cost;
    double err = 0;
    for (const auto& [name, c] : policy.layers) err += std::abs(c.sparsity - target_);
    s.accuracy = s.reward = 1.0 / (1.0 + err);
    return s;
  }

 private:
  double target_;
};

}  // namespace acs::test_util
