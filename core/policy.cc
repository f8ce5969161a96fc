#include "core/policy.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace acs {

using json = nlohmann::json;

namespace {

constexpr int kPolicyVersion = 1;
constexpr int kMaxNMGroup = 64;

const Pattern kAllPatterns[] = {Pattern::kDense, Pattern::kUnstructured, Pattern::kBlock,
                                Pattern::kNM, Pattern::kChannel};
const Precision kAllPrecisions[] = {Precision::kFp32, Precision::kBf16, Precision::kInt8,
                                    Precision::kInt4w};

bool IsDenseFp32(const LayerConfig& c) { return c == LayerConfig(); }

// Shortest round-trip text of a double, e.g. "0.5" or "0.33333333333333331".
std::string FormatNumber(double v) { return json(v).dump(); }

// The canonical JSON object of one config: only the fields its pattern uses.
json ConfigToJson(const LayerConfig& c) {
  json j = json::object();
  j["pattern"] = PatternName(c.pattern);
  j["precision"] = PrecisionName(c.precision);
  switch (c.pattern) {
    case Pattern::kDense:
      if (c.sparsity != 0.0) j["sparsity"] = c.sparsity;
      break;
    case Pattern::kUnstructured:
    case Pattern::kChannel:
      j["sparsity"] = c.sparsity == 0.0 ? 0.0 : c.sparsity;  // folds -0 into 0
      break;
    case Pattern::kBlock:
      j["sparsity"] = c.sparsity == 0.0 ? 0.0 : c.sparsity;
      j["block"] = c.block;
      break;
    case Pattern::kNM:
      j["n"] = c.nm_n;
      j["m"] = c.nm_m;
      break;
  }
  return j;
}

// Reads an int field of a config object into *out.
Status ReadInt(const json& v, const std::string& field, const std::string& where, int* out) {
  if (!v.is_number_integer()) {
    return Status::InvalidArgument("field '" + field + "' of " + where +
                                   " must be an integer, got " + v.type_name() + " " + v.dump());
  }
  if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t{std::numeric_limits<int>::max()}
                             : (v.get<int64_t>() < std::numeric_limits<int>::min() ||
                                v.get<int64_t>() > std::numeric_limits<int>::max())) {
    return Status::InvalidArgument("field '" + field + "' of " + where + " is too large: " +
                                   v.dump());
  }
  *out = v.is_number_unsigned() ? static_cast<int>(v.get<uint64_t>())
                                : static_cast<int>(v.get<int64_t>());
  return Status::Ok();
}

Status ReadString(const json& v, const std::string& field, const std::string& where,
                  std::string* out) {
  if (!v.is_string()) {
    return Status::InvalidArgument("field '" + field + "' of " + where +
                                   " must be a string, got " + v.type_name() + " " + v.dump());
  }
  *out = v.get<std::string>();
  return Status::Ok();
}

// Parses one config object; where is "layer 'x'" or "the default config".
StatusOr<LayerConfig> ConfigFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) {
    return Status::InvalidArgument(where + " must be a JSON object, got " + j.type_name());
  }
  LayerConfig c;
  for (const auto& [key, v] : j.items()) {
    if (key == "sparsity") {
      if (!v.is_number()) {
        return Status::InvalidArgument("field 'sparsity' of " + where +
                                       " must be a number, got " + v.type_name() + " " +
                                       v.dump());
      }
      c.sparsity = v.get<double>();
    } else if (key == "pattern") {
      std::string name;
      ACS_RETURN_IF_ERROR(ReadString(v, key, where, &name));
      StatusOr<Pattern> p = ParsePattern(name);
      if (!p.ok()) return Status::InvalidArgument(where + ": " + p.status().message());
      c.pattern = *p;
    } else if (key == "precision") {
      std::string name;
      ACS_RETURN_IF_ERROR(ReadString(v, key, where, &name));
      StatusOr<Precision> p = ParsePrecision(name);
      if (!p.ok()) return Status::InvalidArgument(where + ": " + p.status().message());
      c.precision = *p;
    } else if (key == "block") {
      ACS_RETURN_IF_ERROR(ReadInt(v, key, where, &c.block));
    } else if (key == "n") {
      ACS_RETURN_IF_ERROR(ReadInt(v, key, where, &c.nm_n));
    } else if (key == "m") {
      ACS_RETURN_IF_ERROR(ReadInt(v, key, where, &c.nm_m));
    } else {
      return Status::InvalidArgument("unknown key '" + key + "' in " + where +
                                     "; expected sparsity, pattern, block, n, m or precision");
    }
  }
  return c;
}

// The policy as a JSON value; with drop_defaults, entries that change nothing are left out
// (those equal to the default, dense fp32 when there is none, and a dense fp32 default).
json PolicyToJson(const Policy& policy, bool drop_defaults) {
  json j = json::object();
  j["version"] = kPolicyVersion;
  const LayerConfig fallback = policy.default_config.value_or(LayerConfig());
  if (policy.default_config && !(drop_defaults && IsDenseFp32(fallback))) {
    j["default"] = ConfigToJson(*policy.default_config);
  }
  json layers = json::object();
  for (const auto& [name, config] : policy.layers) {
    if (drop_defaults && config == fallback) continue;
    layers[name] = ConfigToJson(config);
  }
  j["layers"] = std::move(layers);
  return j;
}

std::string Dump(const json& j, int indent) {
  // Replace invalid UTF-8 rather than throw; layer names from TorchScript are ASCII.
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; did you mean 'a' or 'b'?" naming the closest layer names, or "" if none is close.
std::string SuggestLayers(const std::string& name, const Graph& graph) {
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  size_t best = limit + 1;
  std::vector<std::string> names;
  for (const Layer& l : graph.layers) {
    size_t d = EditDistance(name, l.name);
    if (d > limit || d > best) continue;
    if (d < best) names.clear();
    best = d;
    names.push_back(l.name);
  }
  if (names.empty()) return "";
  if (names.size() > 3) names.resize(3);
  std::string out = "; did you mean ";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += "'" + names[i] + "'";
  }
  return out + "?";
}

// Checks the parts of a config that do not depend on a layer; where names the entry.
Status CheckConfig(const LayerConfig& c, const std::string& where) {
  if (c.pattern != Pattern::kNM && !(c.sparsity >= 0.0 && c.sparsity < 1.0)) {
    return Status::OutOfRange("sparsity " + FormatNumber(c.sparsity) + " on " + where +
                              " is outside [0, 1)");
  }
  if (c.pattern == Pattern::kDense && c.sparsity != 0.0) {
    return Status::InvalidArgument(
        "sparsity " + FormatNumber(c.sparsity) + " on " + where +
        " needs a pattern other than dense (unstructured, block, nm or channel)");
  }
  if (c.pattern == Pattern::kBlock && c.block < 1) {
    return Status::InvalidArgument("block size " + std::to_string(c.block) + " on " + where +
                                   " must be at least 1");
  }
  if (c.pattern == Pattern::kNM &&
      !(c.nm_n >= 1 && c.nm_n <= c.nm_m && c.nm_m <= kMaxNMGroup)) {
    return Status::InvalidArgument("N:M needs 1 <= N <= M <= " + std::to_string(kMaxNMGroup) +
                                   ", got " + std::to_string(c.nm_n) + ":" +
                                   std::to_string(c.nm_m) + " on " + where);
  }
  return Status::Ok();
}

Status CheckLayer(const std::string& name, const LayerConfig& c, const Graph& graph) {
  const int index = graph.FindLayer(name);
  if (index < 0) {
    return Status::NotFound("policy names layer '" + name + "', which the model does not have" +
                            SuggestLayers(name, graph));
  }
  const Layer& layer = graph.layers[index];
  const std::string where = "layer '" + name + "'";
  if (!layer.compressible) {
    return Status::InvalidArgument(where + " is not compressible: " + layer.why_not);
  }
  ACS_RETURN_IF_ERROR(CheckConfig(c, where));
  if (c.pattern == Pattern::kBlock && layer.out_channels % c.block != 0) {
    return Status::InvalidArgument("block size " + std::to_string(c.block) +
                                   " does not divide " + std::to_string(layer.out_channels) +
                                   " output channels of " + where);
  }
  if (c.pattern == Pattern::kChannel) {
    if (layer.out_group < 0 || layer.out_group >= static_cast<int>(graph.groups.size())) {
      return Status::FailedPrecondition(
          where + " cannot use the channel pattern: its output channels are in no channel group");
    }
    const ChannelGroup& group = graph.groups[layer.out_group];
    if (!group.prunable) {
      return Status::FailedPrecondition(where + " cannot use the channel pattern: " +
                                        group.why_not);
    }
  }
  return Status::Ok();
}

}  // namespace

const char* PatternName(Pattern p) {
  switch (p) {
    case Pattern::kDense: return "dense";
    case Pattern::kUnstructured: return "unstructured";
    case Pattern::kBlock: return "block";
    case Pattern::kNM: return "nm";
    case Pattern::kChannel: return "channel";
  }
  return "unknown";
}

StatusOr<Pattern> ParsePattern(const std::string& name) {
  for (Pattern p : kAllPatterns) {
    if (name == PatternName(p)) return p;
  }
  return Status::InvalidArgument("unknown pattern '" + name +
                                 "'; expected dense, unstructured, block, nm or channel");
}

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kBf16: return "bf16";
    case Precision::kInt8: return "int8";
    case Precision::kInt4w: return "int4w";
  }
  return "unknown";
}

StatusOr<Precision> ParsePrecision(const std::string& name) {
  for (Precision p : kAllPrecisions) {
    if (name == PrecisionName(p)) return p;
  }
  return Status::InvalidArgument("unknown precision '" + name +
                                 "'; expected fp32, bf16, int8 or int4w");
}

std::vector<std::string> PatternNames() {
  std::vector<std::string> names;
  for (Pattern p : kAllPatterns) names.push_back(PatternName(p));
  return names;
}

std::vector<std::string> PrecisionNames() {
  std::vector<std::string> names;
  for (Precision p : kAllPrecisions) names.push_back(PrecisionName(p));
  return names;
}

double LayerConfig::EffectiveSparsity() const {
  switch (pattern) {
    case Pattern::kDense: return 0.0;
    case Pattern::kNM: return nm_m > 0 ? 1.0 - static_cast<double>(nm_n) / nm_m : 0.0;
    case Pattern::kUnstructured:
    case Pattern::kBlock:
    case Pattern::kChannel: return sparsity;
  }
  return sparsity;
}

bool LayerConfig::operator==(const LayerConfig& o) const {
  if (pattern != o.pattern || precision != o.precision) return false;
  if (pattern != Pattern::kNM && sparsity != o.sparsity) return false;
  if (pattern == Pattern::kBlock && block != o.block) return false;
  if (pattern == Pattern::kNM && (nm_n != o.nm_n || nm_m != o.nm_m)) return false;
  return true;
}

LayerConfig Policy::Get(const std::string& layer) const {
  auto it = layers.find(layer);
  return it == layers.end() ? LayerConfig() : it->second;
}

std::string Policy::ToJson(int indent) const {
  return Dump(PolicyToJson(*this, /*drop_defaults=*/false), indent);
}

StatusOr<Policy> Policy::FromJson(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("policy is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) {
    return Status::InvalidArgument(std::string("policy must be a JSON object, got ") +
                                   j.type_name());
  }
  Policy policy;
  for (const auto& [key, v] : j.items()) {
    if (key == "version") {
      if (!v.is_number_integer() || v.get<int64_t>() != kPolicyVersion) {
        return Status::InvalidArgument("unsupported policy version " + v.dump() +
                                       "; expected " + std::to_string(kPolicyVersion));
      }
    } else if (key == "default") {
      ACS_ASSIGN_OR_RETURN(policy.default_config, ConfigFromJson(v, "the default config"));
    } else if (key == "layers") {
      if (!v.is_object()) {
        return Status::InvalidArgument(std::string("field 'layers' must be a JSON object, got ") +
                                       v.type_name());
      }
      for (const auto& [name, entry] : v.items()) {
        ACS_ASSIGN_OR_RETURN(policy.layers[name], ConfigFromJson(entry, "layer '" + name + "'"));
      }
    } else {
      return Status::InvalidArgument("unknown key '" + key +
                                     "' in policy; expected version, default or layers");
    }
  }
  return policy;
}

StatusOr<Policy> Policy::FromFile(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("policy file '" + path + "' does not exist");
    return Status::FailedPrecondition("cannot read policy file '" + path + "': " +
                                      (err != 0 ? std::strerror(err) : "open failed"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::DataLoss("error reading policy file '" + path + "'");
  StatusOr<Policy> policy = FromJson(text.str());
  if (!policy.ok()) {
    return Status(policy.status().code(), "policy file '" + path + "': " +
                                              policy.status().message());
  }
  return policy;
}

Status Policy::ToFile(const std::string& path) const {
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    const int err = errno;
    return Status::FailedPrecondition("cannot write policy file '" + path + "': " +
                                      (err != 0 ? std::strerror(err) : "open failed"));
  }
  out << ToJson() << "\n";
  out.close();
  if (!out) return Status::Internal("error writing policy file '" + path + "'");
  return Status::Ok();
}

std::string Policy::Hash() const {
  const std::string text = Dump(PolicyToJson(*this, /*drop_defaults=*/true), -1);
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;  // FNV-1a 64 prime
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, h);
  return buf;
}

namespace {

// Whether a default or uniform config applies to a layer: compressible, and for the channel
// pattern, a layer whose output channel group can be pruned.
bool TakesConfig(const Layer& layer, const Graph& graph, const LayerConfig& config) {
  if (!layer.compressible) return false;
  if (config.pattern != Pattern::kChannel) return true;
  return layer.out_group >= 0 && layer.out_group < static_cast<int>(graph.groups.size()) &&
         graph.groups[layer.out_group].prunable;
}

}  // namespace

int64_t ChannelsKept(int64_t channels, double sparsity, int64_t block_multiple) {
  int64_t keep = std::max<int64_t>(1, std::llround(static_cast<double>(channels) * (1.0 - sparsity)));
  for (int64_t alignment : {16, 8}) {
    if (channels % alignment != 0 || channels < 2 * alignment) continue;
    if (keep >= alignment) keep = (keep + alignment / 2) / alignment * alignment;
    break;
  }
  if (block_multiple > 1 && channels % block_multiple == 0) {
    keep = std::min(channels, (keep + block_multiple - 1) / block_multiple * block_multiple);
  }
  return keep;
}

std::vector<int64_t> KeptChannels(const Graph& graph, const Policy& policy_in) {
  const Policy policy = ResolvePolicy(policy_in, graph);
  std::vector<int64_t> kept(graph.groups.size());
  for (size_t gi = 0; gi < graph.groups.size(); ++gi) {
    const ChannelGroup& group = graph.groups[gi];
    kept[gi] = group.channels;
    if (!group.prunable) continue;
    double sparsity = 0;
    int64_t multiple = 1;
    std::vector<int> members = group.producers;
    members.insert(members.end(), group.carriers.begin(), group.carriers.end());
    for (int li : members) {
      LayerConfig c = policy.Get(graph.layers[li].name);
      if (c.pattern == Pattern::kChannel) sparsity = std::max(sparsity, c.sparsity);
      if (c.pattern == Pattern::kBlock) multiple = std::lcm(multiple, static_cast<int64_t>(c.block));
    }
    const int64_t keep = ChannelsKept(group.channels, sparsity, multiple);
    if (sparsity <= 0 || keep >= group.channels) continue;
    kept[gi] = keep;
  }
  return kept;
}

Policy ResolvePolicy(const Policy& policy, const Graph& graph) {
  Policy out;
  out.layers = policy.layers;
  if (!policy.default_config) return out;
  for (const Layer& layer : graph.layers) {
    if (TakesConfig(layer, graph, *policy.default_config)) out.layers.emplace(layer.name, *policy.default_config);
  }
  return out;
}

Status ValidatePolicy(const Policy& policy, const Graph& graph) {
  // A default that no layer takes is still checked, so a bad one never sits unnoticed.
  if (policy.default_config) {
    ACS_RETURN_IF_ERROR(CheckConfig(*policy.default_config, "the default config"));
  }
  const Policy resolved = ResolvePolicy(policy, graph);
  for (const auto& [name, config] : resolved.layers) {
    ACS_RETURN_IF_ERROR(CheckLayer(name, config, graph));
  }
  return Status::Ok();
}

Policy UniformPolicy(const Graph& graph, const LayerConfig& config,
                     const std::vector<std::string>& skip) {
  const std::set<std::string> skipped(skip.begin(), skip.end());
  Policy policy;
  for (const Layer& layer : graph.layers) {
    if (skipped.count(layer.name) > 0 || !TakesConfig(layer, graph, config)) continue;
    policy.layers[layer.name] = config;
  }
  return policy;
}

}  // namespace acs
