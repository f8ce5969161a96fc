// The fine-tuning tests' model, data and measures (fine_tune_test.cc, fine_tune_statistics_test.cc).
#pragma once

#include <torch/script.h>

#include <memory>
#include <vector>

#include "core/compressor.h"
#include "core/dataset.h"
#include "core/importer.h"
#include "core/torchscript_model.h"
#include "tests/core/test_models.h"

namespace acs::fine_tune_test {

struct Fixture {
  std::shared_ptr<ImportedModel> model;
  Dataset data;  // labels: the dense model's own predictions, so that they can be learned
};

inline Fixture Make() {
  Fixture f;
  const std::string path = test_models::BuildTestModel("plain", 5);
  auto m = ImportTorchScript(path, {test_models::TestInputShape()});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  f.model = *m;
  torch::manual_seed(3);
  f.data.images = torch::rand({256, 3, 16, 16});
  torch::NoGradGuard no_grad;
  f.data.labels = f.model->module.forward({f.data.images}).toTensor().argmax(1);
  f.data.source = "dense predictions";
  return f;
}

// The weight tensors of the compressed model's weighted ops, copied.
inline std::vector<torch::Tensor> Weights(CompressedModel& c) {
  std::vector<torch::Tensor> out;
  auto graph = c.module.get_method("forward").graph();
  for (torch::jit::Node* n : WeightedNodes(*graph)) out.push_back(n->inputs()[1]->node()->t(c10::attr::value).clone());
  return out;
}

// Top-1 of the model on `data` against its labels.
inline double Top1(CompressedModel& c, const Dataset& data) {
  torch::NoGradGuard no_grad;
  const torch::Tensor predicted = c.module.forward({data.images}).toTensor().argmax(1);
  return predicted.eq(data.labels).to(torch::kDouble).mean().item<double>();
}

// Every layer but the 10-way classifier in 1x4 blocks at `sparsity`.
inline StatusOr<CompressedModel> CompressedInBlocks(const Fixture& f, double sparsity) {
  Policy policy;
  LayerConfig block;
  block.pattern = Pattern::kBlock;
  block.block = 4;
  block.sparsity = sparsity;
  for (const char* name : {"features.conv1", "features.conv2", "classifier.fc1"}) policy.layers[name] = block;
  return Compress(*f.model, policy);
}

}  // namespace acs::fine_tune_test
