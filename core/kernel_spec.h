// A kernel measurement request: one conv2d or linear layer shape with a compression config,
// as JSON (what acs-worker measure-kernel reads and what the farm sends):
//
//   {"op": "conv2d", "in_channels": 64, "out_channels": 128, "kernel": [3, 3],
//    "stride": 1, "padding": 1, "dilation": 1, "groups": 1, "input": [1, 64, 56, 56],
//    "config": {"pattern": "block", "sparsity": 0.8, "block": 8, "precision": "fp32"},
//    "threads": 1, "seed": 1, "context_bytes": 16777216}
//
// stride / padding / dilation / kernel take one integer or a pair; groups, dilation,
// padding, stride, threads, seed and context_bytes are optional (1, 0, 1, 1, 1, 1, 0). A linear layer has
// "input": [N, in_channels] and no convolution fields. Config fields as in a policy
// ("n" / "m" for nm).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/graph.h"
#include "core/kernel_plan.h"
#include "core/policy.h"
#include "core/status.h"

namespace acs {

struct KernelSpec {
  std::string op = "conv2d";     // "conv2d" or "linear"
  int64_t in_channels = 0;       // linear: in_features
  int64_t out_channels = 0;      // linear: out_features
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  std::vector<int64_t> input;    // [N, C, H, W] for conv2d, [N, F] for linear
  LayerConfig config;
  int threads = 1;
  uint64_t seed = 1;             // random weights and input
  int64_t context_bytes = 0;     // what the rest of the model touches between two runs of
                                 // this layer (its other weights): a buffer this large is
                                 // touched before each timed run, so that the weights come
                                 // from where they come in the model; 0 = warm caches

  bool is_conv() const { return op == "conv2d"; }
  int64_t out_h() const;  // conv2d only
  int64_t out_w() const;
  // A stable string of op, shape, config and context (not threads or seed), e.g.
  // "conv2d c64 o128 k3x3 s1x1 p1x1 d1x1 g1 in1x64x56x56 block8 sp0.8 fp32 ctx16M".
  std::string Key() const;
  nlohmann::json ToJson() const;
};

// The spec as it runs: a channel-pattern spec keeps ChannelsKept(O, sparsity) output
// channels (core/policy.h; a multiple of the groups of a grouped conv; a depthwise conv loses the
// same input channels) with a dense config of the same precision; then the config becomes
// RunConfig of the kernel the plan chooses (core/kernel_plan.h), so that a block config
// too dense for its kernel is a dense fp32 spec, as the runtime executes it.
KernelSpec AsRun(const KernelSpec& spec);

// The layer traits of a spec's shape, and the kernel the runtime runs it with (the plan's
// rule on the channel-pruned shape, default KernelSelection).
LayerTraits TraitsOf(const KernelSpec& spec);
KernelChoice KernelOf(const KernelSpec& spec);

// The spec of a layer as imported (its recorded input shape, batch included) under
// `config`, measured with `threads`.
KernelSpec SpecOfLayer(const Layer& layer, const LayerConfig& config, int threads = 1);

// `bytes` on a coarse grid (so that a few measured contexts cover all models): 0 below
// 256 KiB, else the nearest power of two (geometrically), at most 256 MiB.
int64_t ContextBucket(int64_t bytes);

// Parses and validates a spec. Errors (InvalidArgument) name the field, e.g.
// "spec field 'config.block': must be an integer in [1, 16777216]"; unknown fields are
// errors too, and so are sizes past 2^24 and inputs or weights past 2^31 elements.
StatusOr<KernelSpec> ParseKernelSpec(const nlohmann::json& j);
// Reads a JSON file; NotFound for a missing file, InvalidArgument for bad JSON or fields.
StatusOr<KernelSpec> ReadKernelSpec(const std::string& path);

}  // namespace acs
