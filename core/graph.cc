#include "core/graph.h"

namespace acs {

const char* LayerTypeName(LayerType type) {
  switch (type) {
    case LayerType::kConv2d: return "conv2d";
    case LayerType::kLinear: return "linear";
  }
  return "unknown";
}

int Graph::FindLayer(const std::string& name) const {
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int64_t Graph::TotalFlops() const {
  int64_t total = 0;
  for (const Layer& l : layers) total += l.flops;
  return total;
}

int64_t Graph::TotalParams() const {
  int64_t total = 0;
  for (const Layer& l : layers) total += l.params;
  return total;
}

}  // namespace acs
