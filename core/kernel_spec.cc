#include "core/kernel_spec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace acs {
namespace {

Status Bad(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument("spec field '" + field + "': " + problem);
}

Status CheckKeys(const nlohmann::json& j, const std::string& prefix, const std::set<std::string>& allowed) {
  for (const auto& item : j.items()) {
    if (!allowed.count(item.key())) return Bad(prefix + item.key(), "unknown field");
  }
  return Status::Ok();
}

// An integer field >= min; `required` false leaves *out unchanged when absent.
// Every size in a spec is at most this, so that no arithmetic on them overflows.
constexpr int64_t kMaxSpecValue = int64_t{1} << 24;
// Elements of the input, and of the weight, at most.
constexpr int64_t kMaxSpecElements = int64_t{1} << 31;
constexpr int64_t kMaxContextBytes = int64_t{1} << 28;  // the largest ContextBucket

Status Int(const nlohmann::json& j, const std::string& key, int64_t min, bool required, int64_t* out,
           const std::string& prefix = "", int64_t max = kMaxSpecValue) {
  if (!j.contains(key)) return required ? Bad(prefix + key, "missing") : Status::Ok();
  const nlohmann::json& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
    return Bad(prefix + key, "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  *out = v.get<int64_t>();
  return Status::Ok();
}

// One integer or a pair, each in [min, kMaxSpecValue].
Status Pair(const nlohmann::json& j, const std::string& key, int64_t min, bool required, std::array<int64_t, 2>* out) {
  if (!j.contains(key)) return required ? Bad(key, "missing") : Status::Ok();
  const nlohmann::json& v = j[key];
  const std::string problem =
      "must be an integer in [" + std::to_string(min) + ", " + std::to_string(kMaxSpecValue) + "] or a pair of them";
  auto in_range = [&](const nlohmann::json& x) {
    return x.is_number_integer() && x.get<int64_t>() >= min && x.get<int64_t>() <= kMaxSpecValue;
  };
  if (v.is_number_integer()) {
    if (!in_range(v)) return Bad(key, problem);
    *out = {v.get<int64_t>(), v.get<int64_t>()};
    return Status::Ok();
  }
  if (!v.is_array() || v.size() != 2) return Bad(key, problem);
  for (int i = 0; i < 2; ++i) {
    if (!in_range(v[i])) return Bad(key, problem);
    (*out)[i] = v[i].get<int64_t>();
  }
  return Status::Ok();
}

Status ParseConfig(const nlohmann::json& j, LayerConfig* c) {
  if (!j.is_object()) return Bad("config", "must be an object");
  ACS_RETURN_IF_ERROR(CheckKeys(j, "config.", {"pattern", "sparsity", "block", "n", "m", "precision"}));
  if (!j.contains("pattern") || !j["pattern"].is_string()) return Bad("config.pattern", "must be a pattern name");
  StatusOr<Pattern> pattern = ParsePattern(j["pattern"].get<std::string>());
  if (!pattern.ok()) return Bad("config.pattern", pattern.status().message());
  c->pattern = *pattern;
  if (j.contains("precision")) {
    if (!j["precision"].is_string()) return Bad("config.precision", "must be a precision name");
    StatusOr<Precision> precision = ParsePrecision(j["precision"].get<std::string>());
    if (!precision.ok()) return Bad("config.precision", precision.status().message());
    c->precision = *precision;
  }
  if (j.contains("sparsity")) {
    if (!j["sparsity"].is_number() || j["sparsity"].get<double>() < 0 || j["sparsity"].get<double>() >= 1) {
      return Bad("config.sparsity", "must be a number in [0, 1)");
    }
    c->sparsity = j["sparsity"].get<double>();
  }
  const bool uses_sparsity = c->pattern == Pattern::kUnstructured || c->pattern == Pattern::kBlock ||
                             c->pattern == Pattern::kChannel;
  if (c->pattern == Pattern::kDense && c->sparsity != 0) {
    return Bad("config.sparsity", "must be 0 for the dense pattern");
  }
  if (uses_sparsity && !j.contains("sparsity")) return Bad("config.sparsity", "missing");
  int64_t block = c->block, n = c->nm_n, m = c->nm_m;
  ACS_RETURN_IF_ERROR(Int(j, "block", 1, c->pattern == Pattern::kBlock, &block, "config."));
  ACS_RETURN_IF_ERROR(Int(j, "n", 1, c->pattern == Pattern::kNM, &n, "config."));
  ACS_RETURN_IF_ERROR(Int(j, "m", 1, c->pattern == Pattern::kNM, &m, "config."));
  if (n > m || m > 64) return Bad("config.m", "N:M needs 1 <= n <= m <= 64");
  c->block = static_cast<int>(block);
  c->nm_n = static_cast<int>(n);
  c->nm_m = static_cast<int>(m);
  return Status::Ok();
}

std::string Format(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", x);
  return buffer;
}

std::string Dims(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "x" : "") + std::to_string(v[i]);
  return s;
}

std::string Dims(const std::array<int64_t, 2>& v) { return std::to_string(v[0]) + "x" + std::to_string(v[1]); }

}  // namespace

int64_t KernelSpec::out_h() const {
  return (input[2] + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) / stride[0] + 1;
}

int64_t KernelSpec::out_w() const {
  return (input[3] + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) / stride[1] + 1;
}

std::string KernelSpec::Key() const {
  std::string key = op + " c" + std::to_string(in_channels) + " o" + std::to_string(out_channels);
  if (is_conv()) {
    key += " k" + Dims(kernel) + " s" + Dims(stride) + " p" + Dims(padding) + " d" + Dims(dilation) + " g" +
           std::to_string(groups);
  }
  key += " in" + Dims(input) + " " + PatternName(config.pattern);
  if (config.pattern == Pattern::kBlock) key += std::to_string(config.block);
  if (config.pattern == Pattern::kNM) key += std::to_string(config.nm_n) + ":" + std::to_string(config.nm_m);
  if (config.pattern != Pattern::kNM && config.pattern != Pattern::kDense) key += " sp" + Format(config.sparsity);
  key += std::string(" ") + PrecisionName(config.precision);
  if (context_bytes > 0) {
    key += context_bytes % (int64_t{1} << 20) == 0 ? " ctx" + std::to_string(context_bytes >> 20) + "M"
                                                     : " ctx" + std::to_string(context_bytes >> 10) + "K";
  }
  return key;
}

nlohmann::json KernelSpec::ToJson() const {
  nlohmann::json c = {{"pattern", PatternName(config.pattern)}, {"precision", PrecisionName(config.precision)}};
  if (config.pattern != Pattern::kNM && config.pattern != Pattern::kDense) c["sparsity"] = config.sparsity;
  if (config.pattern == Pattern::kBlock) c["block"] = config.block;
  if (config.pattern == Pattern::kNM) {
    c["n"] = config.nm_n;
    c["m"] = config.nm_m;
  }
  nlohmann::json j = {{"op", op},           {"in_channels", in_channels}, {"out_channels", out_channels},
                      {"input", input},     {"config", c},                {"threads", threads},
                      {"seed", seed}};
  if (context_bytes > 0) j["context_bytes"] = context_bytes;
  if (is_conv()) {
    j["kernel"] = kernel;
    j["stride"] = stride;
    j["padding"] = padding;
    j["dilation"] = dilation;
    j["groups"] = groups;
  }
  return j;
}

int64_t ContextBucket(int64_t bytes) {
  if (bytes < (int64_t{1} << 18)) return 0;
  const int exponent = static_cast<int>(std::lround(std::log2(static_cast<double>(bytes))));
  return int64_t{1} << std::min(exponent, 28);
}

KernelSpec SpecOfLayer(const Layer& layer, const LayerConfig& config, int threads) {
  KernelSpec s;
  s.op = layer.type == LayerType::kLinear ? "linear" : "conv2d";
  s.in_channels = layer.in_channels;
  s.out_channels = layer.out_channels;
  const int64_t batch = layer.input_shape.empty() ? 1 : std::max<int64_t>(1, layer.input_shape[0]);
  if (s.is_conv()) {
    s.kernel = layer.kernel;
    s.stride = layer.stride;
    s.padding = layer.padding;
    s.dilation = layer.dilation;
    s.groups = layer.groups;
    const bool spatial = layer.input_shape.size() == 4;
    s.input = {batch, layer.in_channels, spatial ? layer.input_shape[2] : 1, spatial ? layer.input_shape[3] : 1};
  } else {  // rows: every leading dimension of the input
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < layer.input_shape.size(); ++i) rows *= layer.input_shape[i];
    s.input = {std::max<int64_t>(1, rows), layer.in_channels};
  }
  s.config = config;
  s.threads = threads;
  return s;
}

namespace {

// Channel pruning applied to the shape; the config keeps its precision only.
KernelSpec ChannelPruned(const KernelSpec& spec) {
  if (spec.config.pattern != Pattern::kChannel) return spec;
  KernelSpec r = spec;
  const int64_t o = spec.out_channels, g = spec.groups;
  int64_t keep = ChannelsKept(o, spec.config.sparsity);
  const bool depthwise = spec.is_conv() && g > 1 && g == spec.in_channels && g == o;
  if (!depthwise && g > 1) keep = std::max(g, keep / g * g);
  r.out_channels = keep;
  if (depthwise) {
    r.in_channels = keep;
    r.groups = keep;
    r.input[1] = keep;
  }
  r.config = LayerConfig{};
  r.config.precision = spec.config.precision;
  return r;
}

}  // namespace

LayerTraits TraitsOf(const KernelSpec& spec) {
  LayerTraits t;
  t.linear = !spec.is_conv();
  t.groups = spec.is_conv() ? spec.groups : 1;
  const bool depthwise = spec.is_conv() && spec.groups > 1 && spec.groups == spec.in_channels &&
                         spec.groups == spec.out_channels && spec.dilation[0] == 1 && spec.dilation[1] == 1 &&
                         spec.stride[0] == spec.stride[1] && (spec.stride[0] == 1 || spec.stride[0] == 2);
  t.depthwise_3x3 = depthwise && spec.kernel[0] == 3 && spec.kernel[1] == 3;
  t.depthwise_int8 = depthwise && spec.kernel[0] <= 7 && spec.kernel[1] <= 7;
  return t;
}

KernelChoice KernelOf(const KernelSpec& spec) {
  const KernelSpec pruned = ChannelPruned(spec);
  return ChooseKernel(pruned.config, TraitsOf(pruned));
}

KernelSpec AsRun(const KernelSpec& spec) {
  KernelSpec r = ChannelPruned(spec);
  r.config = RunConfig(r.config, ChooseKernel(r.config, TraitsOf(r)));
  return r;
}

StatusOr<KernelSpec> ParseKernelSpec(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("a kernel spec must be a JSON object");
  KernelSpec s;
  if (!j.contains("op") || !j["op"].is_string()) return Bad("op", "must be \"conv2d\" or \"linear\"");
  s.op = j["op"].get<std::string>();
  if (s.op != "conv2d" && s.op != "linear") return Bad("op", "must be \"conv2d\" or \"linear\", got \"" + s.op + "\"");
  const std::set<std::string> common = {"op",      "in_channels", "out_channels", "input",
                                        "config",  "threads",     "seed",         "context_bytes"};
  std::set<std::string> allowed = common;
  if (s.is_conv()) allowed.insert({"kernel", "stride", "padding", "dilation", "groups"});
  ACS_RETURN_IF_ERROR(CheckKeys(j, "", allowed));
  ACS_RETURN_IF_ERROR(Int(j, "in_channels", 1, true, &s.in_channels));
  ACS_RETURN_IF_ERROR(Int(j, "out_channels", 1, true, &s.out_channels));
  if (!j.contains("input") || !j["input"].is_array()) return Bad("input", "missing or not an array");
  int64_t elements = 1;
  for (const auto& d : j["input"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxSpecValue) {
      return Bad("input", "dimensions must be integers in [1, " + std::to_string(kMaxSpecValue) + "]");
    }
    s.input.push_back(d.get<int64_t>());
    elements *= d.get<int64_t>();
    if (elements > kMaxSpecElements) return Bad("input", "has more than 2^31 elements");
  }
  const size_t rank = s.is_conv() ? 4 : 2;
  if (s.input.size() != rank) {
    return Bad("input", s.is_conv() ? "must be [N, C, H, W]" : "must be [N, in_channels]");
  }
  if (s.input[1] != s.in_channels) return Bad("input", "its dimension 1 must equal in_channels");
  if (s.is_conv()) {
    ACS_RETURN_IF_ERROR(Pair(j, "kernel", 1, true, &s.kernel));
    ACS_RETURN_IF_ERROR(Pair(j, "stride", 1, false, &s.stride));
    ACS_RETURN_IF_ERROR(Pair(j, "padding", 0, false, &s.padding));
    ACS_RETURN_IF_ERROR(Pair(j, "dilation", 1, false, &s.dilation));
    ACS_RETURN_IF_ERROR(Int(j, "groups", 1, false, &s.groups));
    if (s.in_channels % s.groups || s.out_channels % s.groups) {
      return Bad("groups", "must divide in_channels and out_channels");
    }
    for (int i = 0; i < 2; ++i) {
      if (s.input[2 + i] + 2 * s.padding[i] < s.dilation[i] * (s.kernel[i] - 1) + 1) {
        return Bad("kernel", "is larger than the padded input");
      }
    }
    if (s.out_channels * (s.in_channels / s.groups) > kMaxSpecElements / (s.kernel[0] * s.kernel[1])) {
      return Bad("kernel", "makes a weight of more than 2^31 elements");
    }
  }
  if (!s.is_conv() && s.out_channels > kMaxSpecElements / s.in_channels) {
    return Bad("out_channels", "makes a weight of more than 2^31 elements");
  }
  if (!j.contains("config")) return Bad("config", "missing");
  ACS_RETURN_IF_ERROR(ParseConfig(j["config"], &s.config));
  int64_t threads = 1, seed = 1;
  ACS_RETURN_IF_ERROR(Int(j, "threads", 1, false, &threads));
  ACS_RETURN_IF_ERROR(Int(j, "seed", 0, false, &seed, "", std::numeric_limits<int64_t>::max()));
  ACS_RETURN_IF_ERROR(Int(j, "context_bytes", 0, false, &s.context_bytes, "", kMaxContextBytes));
  s.threads = static_cast<int>(threads);
  s.seed = static_cast<uint64_t>(seed);
  return s;
}

StatusOr<KernelSpec> ReadKernelSpec(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound("spec file '" + path + "' does not exist");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("spec file '" + path + "' is not valid JSON");
  return ParseKernelSpec(j);
}

}  // namespace acs
