// Per-layer compression configuration (DESIGN §3): LayerConfig, Policy, JSON, hash, validation.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/status.h"

namespace acs {

enum class Pattern { kDense, kUnstructured, kBlock, kNM, kChannel };
enum class Precision { kFp32, kBf16, kInt8, kInt4w };

// JSON names: "dense", "unstructured", "block", "nm", "channel".
const char* PatternName(Pattern p);
StatusOr<Pattern> ParsePattern(const std::string& name);
// JSON names: "fp32", "bf16", "int8", "int4w".
const char* PrecisionName(Precision p);
StatusOr<Precision> ParsePrecision(const std::string& name);
// Every name ParsePattern / ParsePrecision accepts, in declaration order.
std::vector<std::string> PatternNames();
std::vector<std::string> PrecisionNames();

struct LayerConfig {
  double sparsity = 0.0;             // share of weights removed, in [0, 1); ignored for kNM
  Pattern pattern = Pattern::kDense;
  int block = 1;                     // kBlock: N of a 1xN block (N output channels share an input index)
  int nm_n = 2;                      // kNM: keep N of every M consecutive weights along the reduction
  int nm_m = 4;
  Precision precision = Precision::kFp32;

  // Share of weights that are zero after applying this config alone.
  double EffectiveSparsity() const;
  // Compares the fields the pattern uses (sparsity is ignored for kNM, block outside
  // kBlock, nm_n/nm_m outside kNM).
  bool operator==(const LayerConfig& o) const;
  bool operator!=(const LayerConfig& o) const { return !(*this == o); }
};

// One LayerConfig per compressible layer, keyed by layer name. A layer not listed is dense fp32.
struct Policy {
  std::map<std::string, LayerConfig> layers;
  // When set, applies to every compressible layer not listed in layers. Get() does not
  // see it; ResolvePolicy() expands it onto the layers of a graph.
  std::optional<LayerConfig> default_config;

  // The config of a layer as listed (dense fp32 if not listed).
  LayerConfig Get(const std::string& layer) const;

  // {"version": 1, "layers": {"<name>": {"sparsity": .5, "pattern": "block", "block": 8,
  //  "n": 2, "m": 4, "precision": "int8"}, ...}}; optional "default" applies to every
  //  compressible layer not listed. ToJson writes only the fields the pattern uses
  //  ("block" for block, "n"/"m" for nm, "sparsity" neither for nm nor for
  //  dense unless it is non-zero, which ValidatePolicy rejects); indent < 0 writes
  //  one line. FromJson rejects unknown keys, wrong types and unknown pattern or
  //  precision names with InvalidArgument; FromFile returns NotFound if path is missing.
  std::string ToJson(int indent = 2) const;
  static StatusOr<Policy> FromJson(const std::string& text);
  static StatusOr<Policy> FromFile(const std::string& path);
  Status ToFile(const std::string& path) const;

  // Stable 16-hex-digit hash (FNV-1a 64) of the canonical form (entries equal to the
  // default, dense fp32 when there is none, dropped; fields the pattern ignores left out),
  // so equal policies hash equal across runs and machines.
  std::string Hash() const;
};

// The policy with its default_config expanded onto every compressible layer of graph that it
// does not list (a channel-pattern default only onto layers whose channel group is
// prunable); the result has no default_config.
Policy ResolvePolicy(const Policy& policy, const Graph& graph);

// How many of `channels` output channels channel pruning at `sparsity` keeps, the one rule
// of the compressor, the cost models, the kernel specs and the predictor's sampling:
// round(channels x (1 - sparsity)), at least 1; where `channels` is a multiple of 16 (else
// of 8) and at least twice it, a count of at least that alignment goes to the nearest
// multiple of it: oneDNN's blocked layouts (nChw16c with AVX-512, nChw8c with AVX2) pad a count up to
// it, so a count between two multiples runs as slowly as the one above (measured here: a
// 3x3 conv of 64 channels at 8x8 pruned to 54 outputs as slow as unpruned, to 48 outputs
// 12% faster). Then, where `channels` is a multiple of `block_multiple` (1xN blocks in
// the group), rounded up to a multiple of it, at most `channels`.
int64_t ChannelsKept(int64_t channels, double sparsity, int64_t block_multiple = 1);

// Kept output channels of every channel group of `graph` under `policy` (what the
// compressor removes, and what the cost models price): ChannelsKept of the group's channels
// at the largest channel-pattern sparsity among its producers and carriers, with the
// lcm of the 1xN block sizes among them; all channels of a group that is not prunable.
std::vector<int64_t> KeptChannels(const Graph& graph, const Policy& policy);

// Checks every entry of ResolvePolicy(policy, graph) against the graph: unknown or
// non-compressible layer, sparsity out of [0,1) (or not 0 when dense), block size < 1 or
// not dividing the layer's output channels, N:M with N<1, N>M or M>64, channel pattern on
// a layer whose channel group is not prunable. The message names the layer and the
// problem. Codes: NotFound for an unknown layer, OutOfRange for
// sparsity, FailedPrecondition for an unprunable channel group, else InvalidArgument.
Status ValidatePolicy(const Policy& policy, const Graph& graph);

// The same config on every compressible layer, except those listed in skip (names the
// graph lacks are ignored). With the channel pattern, layers whose output channel group
// is missing or not prunable are left dense too.
Policy UniformPolicy(const Graph& graph, const LayerConfig& config,
                     const std::vector<std::string>& skip = {});

}  // namespace acs
