// Fuzz target: the TorchScript importer (ImportTorchScript), which loads a user's model file
// with LibTorch, freezes it, runs it once and builds the graph IR. Input: one shape byte,
// then the model file's bytes. Every input must give a model or an error; a model's IR
// must refer only to its own values, nodes and layers.
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/importer.h"

namespace {

// The one input file of this process, removed when it exits.
struct InputFile {
  std::string path =
      (std::filesystem::temp_directory_path() / ("acs-fuzz-" + std::to_string(getpid()) + "-model.pt")).string();
  ~InputFile() { std::remove(path.c_str()); }
};

// The input shape a byte selects; 0 gives 1x1x28x28. Bits 0-3: the side, 4-5: channels,
// 6: batch 1 or 2, 7: width one more than the height.
acs::Shape ShapeOf(uint8_t b) {
  static const int64_t kSides[16] = {28, 16, 32, 1, 2, 3, 4, 5, 7, 8, 11, 14, 15, 24, 31, 64};
  static const int64_t kChannels[4] = {1, 3, 2, 4};
  const int64_t side = kSides[b & 15];
  return {1 + ((b >> 6) & 1), kChannels[(b >> 4) & 3], side, side + ((b >> 7) & 1)};
}

void Require(bool ok) {
  if (!ok) std::abort();
}

bool InRange(int i, size_t n) { return i >= 0 && static_cast<size_t>(i) < n; }

// The IR's indices point inside it.
void CheckGraph(const acs::Graph& g) {
  const size_t values = g.values.size(), nodes = g.nodes.size(), layers = g.layers.size();
  for (const acs::ValueInfo& v : g.values) Require(v.producer == -1 || InRange(v.producer, nodes));
  for (const acs::Node& n : g.nodes) {
    for (int v : n.inputs) Require(InRange(v, values));
    for (int v : n.outputs) Require(InRange(v, values));
  }
  for (int v : g.inputs) Require(InRange(v, values));
  for (int v : g.outputs) Require(InRange(v, values));
  for (const acs::Layer& l : g.layers) {
    Require(InRange(l.node, nodes));
    Require(l.out_group == -1 || InRange(l.out_group, g.groups.size()));
    Require(l.in_group == -1 || InRange(l.in_group, g.groups.size()));
    Require(l.compressible == l.why_not.empty());
  }
  for (const acs::ChannelGroup& group : g.groups) {
    for (int l : group.producers) Require(InRange(l, layers));
    for (int l : group.consumers) Require(InRange(l, layers));
    for (int l : group.carriers) Require(InRange(l, layers));
  }
  for (const acs::ChannelTensor& t : g.channel_tensors) Require(InRange(t.node, nodes));
  g.TotalFlops();
  g.TotalParams();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const InputFile input = [] {
    at::set_num_threads(1);
    return InputFile{};
  }();
  if (size == 0) return 0;
  {
    std::ofstream out(input.path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  acs::StatusOr<std::shared_ptr<acs::ImportedModel>> model = acs::ImportTorchScript(input.path, {ShapeOf(data[0])});
  if (model.ok()) CheckGraph((*model)->graph);
  return 0;
}
