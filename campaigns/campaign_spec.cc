#include "campaigns/campaign_spec.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agents/agent_names.h"
#include "core/policy.h"
#include "core/sha256.h"

namespace acs {
namespace {

using nlohmann::json;

constexpr int64_t kMaxInputElements = int64_t{1} << 26;
constexpr size_t kMaxCells = 10000;

// "line L, column C" (both from 1) of the `byte`-th byte of `text` (1-based, as a JSON
// parse error counts them; past the end: where the text ends).
std::string TextPosition(const std::string& text, size_t byte) {
  const size_t at = std::min(byte == 0 ? 0 : byte - 1, text.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(at - line_start + 1);
}

// Reads one JSON object's fields, each error naming the field's path.
class Fields {
 public:
  Fields(const json& j, std::string path, const std::string& source) : j_(j), path_(std::move(path)), source_(source) {}

  Status Error(const std::string& field, const std::string& what) const {
    return Status::InvalidArgument(source_ + ": " + Name(field) + ": " + what);
  }
  std::string Name(const std::string& field) const { return path_.empty() ? field : path_ + "." + field; }
  bool Has(const std::string& field) const { return j_.contains(field); }
  const json& At(const std::string& field) const { return j_.at(field); }

  // Errors for fields not in `known`.
  Status OnlyKnown(const std::set<std::string>& known) const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!known.count(it.key())) {
        std::string list;
        for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
        return Error(it.key(), "unknown field (known: " + list + ")");
      }
    }
    return Status::Ok();
  }
  StatusOr<std::string> String(const std::string& field, bool required, const std::string& fallback = "") const {
    if (!Has(field)) {
      if (required) return Error(field, "missing (a string)");
      return fallback;
    }
    if (!At(field).is_string()) return Error(field, "expected a string");
    return At(field).get<std::string>();
  }
  StatusOr<double> Number(const std::string& field, double fallback, double lo, double hi) const {
    if (!Has(field)) return fallback;
    if (!At(field).is_number()) return Error(field, "expected a number");
    const double v = At(field).get<double>();
    if (!(v >= lo && v <= hi)) {
      std::ostringstream s;
      s << "must be between " << lo << " and " << hi << ", not " << v;
      return Error(field, s.str());
    }
    return v;
  }
  StatusOr<int64_t> Integer(const std::string& field, int64_t fallback, int64_t lo, int64_t hi) const {
    if (!Has(field)) return fallback;
    if (!At(field).is_number_integer()) return Error(field, "expected an integer");
    const int64_t v = At(field).get<int64_t>();
    if (v < lo || v > hi) {
      return Error(
          field, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " + std::to_string(v));
    }
    return v;
  }
  StatusOr<bool> Bool(const std::string& field, bool fallback) const {
    if (!Has(field)) return fallback;
    if (!At(field).is_boolean()) return Error(field, "expected true or false");
    return At(field).get<bool>();
  }
  // A list of strings, each checked by `check` (an error message, or empty when good);
  // non-empty when `required`; no repeats.
  StatusOr<std::vector<std::string>> Strings(const std::string& field, bool required,
                                             const std::function<std::string(const std::string&)>& check) const {
    std::vector<std::string> out;
    if (!Has(field)) {
      if (required) return Error(field, "missing (a non-empty list of strings)");
      return out;
    }
    if (!At(field).is_array() || (required && At(field).empty())) {
      return Error(field, required ? "expected a non-empty list of strings" : "expected a list of strings");
    }
    std::set<std::string> seen;  // not a scan of `out` per item: lists may be long
    for (size_t i = 0; i < At(field).size(); ++i) {
      const json& v = At(field)[i];
      const std::string item = field + "[" + std::to_string(i) + "]";
      if (!v.is_string()) return Error(item, "expected a string");
      const std::string s = v.get<std::string>();
      if (const std::string why = check(s); !why.empty()) return Error(item, why);
      if (!seen.insert(s).second) return Error(item, "'" + s + "' is listed twice");
      out.push_back(s);
    }
    return out;
  }

 private:
  const json& j_;
  std::string path_;
  const std::string& source_;
};

// "latency=0.5x": a budget as cell keys name it (the ratio to 6 significant digits).
std::string BudgetKey(const BudgetSpec& budget) {
  std::ostringstream ratio;
  ratio << budget.ratio;
  return budget.kind + "=" + ratio.str() + "x";
}

bool IsPlainName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

bool IsSha256(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

StatusOr<CampaignModel> ParseModel(const json& j, const std::string& path, const std::string& source) {
  Fields f(j, path, source);
  if (!j.is_object()) return Status::InvalidArgument(source + ": " + path + ": expected an object");
  ACS_RETURN_IF_ERROR(f.OnlyKnown({"name", "path", "sha256", "input", "data", "test_data"}));
  CampaignModel m;
  ACS_ASSIGN_OR_RETURN(m.name, f.String("name", true));
  if (!IsPlainName(m.name)) return f.Error("name", "'" + m.name + "' is not 1-64 of [A-Za-z0-9._-]");
  ACS_ASSIGN_OR_RETURN(m.path, f.String("path", false));
  ACS_ASSIGN_OR_RETURN(m.sha256, f.String("sha256", false));
  if (m.path.empty() == m.sha256.empty()) return f.Error("path", "give exactly one of path and sha256");
  if (!m.sha256.empty() && !IsSha256(m.sha256)) return f.Error("sha256", "expected 64 lowercase hex digits");
  if (!f.Has("input") || !f.At("input").is_array() || f.At("input").empty() || f.At("input").size() > 8) {
    return f.Error("input", "expected a list of 1 to 8 positive integers, e.g. [1, 3, 32, 32]");
  }
  int64_t elements = 1;
  for (const json& d : f.At("input")) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxInputElements) {
      return f.Error("input", "expected a list of 1 to 8 positive integers, e.g. [1, 3, 32, 32]");
    }
    m.input.push_back(d.get<int64_t>());
    elements *= d.get<int64_t>();
    if (elements > kMaxInputElements) {
      return f.Error("input", "more than " + std::to_string(kMaxInputElements) + " elements");
    }
  }
  ACS_ASSIGN_OR_RETURN(m.data, f.String("data", true));
  if (m.data.empty()) return f.Error("data", "empty (\"name:NAME\" or a path)");
  ACS_ASSIGN_OR_RETURN(m.test_data, f.String("test_data", false));
  return m;
}

// One of `names`, or the error naming them.
std::function<std::string(const std::string&)> OneOf(const std::vector<std::string>& names, const std::string& what) {
  return [names, what](const std::string& s) -> std::string {
    if (std::find(names.begin(), names.end(), s) != names.end()) return "";
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    return "unknown " + what + " '" + s + "' (known: " + list + ")";
  };
}

Status ParseCompare(const json& j, const std::string& source, CampaignCompare* c) {
  Fields f(j, "compare", source);
  if (!j.is_object()) return Status::InvalidArgument(source + ": compare: expected an object");
  ACS_RETURN_IF_ERROR(f.OnlyKnown({"relative_floor", "noise_multiplier", "gate"}));
  ACS_ASSIGN_OR_RETURN(c->relative_floor, f.Number("relative_floor", c->relative_floor, 0, 1));
  ACS_ASSIGN_OR_RETURN(c->noise_multiplier, f.Number("noise_multiplier", c->noise_multiplier, 0, 100));
  if (f.Has("gate")) {
    const std::vector<std::string>& metrics = CampaignMetrics();
    ACS_ASSIGN_OR_RETURN(c->gate, f.Strings("gate", false, OneOf(metrics, "metric")));
  }
  return Status::Ok();
}

Status ParseSpace(const json& j, const std::string& source, CampaignSpace* space) {
  Fields f(j, "space", source);
  if (!j.is_object()) return Status::InvalidArgument(source + ": space: expected an object");
  ACS_RETURN_IF_ERROR(f.OnlyKnown({"patterns", "block_sizes", "precisions", "max_sparsity", "skip_layers"}));
  ACS_ASSIGN_OR_RETURN(space->patterns, f.Strings("patterns", false, OneOf(PatternNames(), "pattern")));
  ACS_ASSIGN_OR_RETURN(space->precisions, f.Strings("precisions", false, OneOf(PrecisionNames(), "precision")));
  ACS_ASSIGN_OR_RETURN(space->skip_layers, f.Strings("skip_layers", false, [](const std::string& s) -> std::string {
    return s.empty() || s.size() > 200 ? "expected a layer name" : "";
  }));
  ACS_ASSIGN_OR_RETURN(space->max_sparsity, f.Number("max_sparsity", space->max_sparsity, 0, 0.99));
  if (f.Has("block_sizes")) {
    const json& sizes = f.At("block_sizes");
    if (!sizes.is_array()) return f.Error("block_sizes", "expected a list of integers from 2 to 64");
    for (size_t i = 0; i < sizes.size(); ++i) {
      const std::string item = "block_sizes[" + std::to_string(i) + "]";
      if (!sizes[i].is_number_integer() || sizes[i].get<int64_t>() < 2 || sizes[i].get<int64_t>() > 64) {
        return f.Error(item, "expected an integer from 2 to 64");
      }
      space->block_sizes.push_back(sizes[i].get<int64_t>());
    }
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& CampaignMetrics() {
  static const std::vector<std::string> metrics = {"measured_speedup", "test_accuracy", "validation_accuracy",
                                                   "predicted_speedup"};
  return metrics;
}

std::string CampaignCell::Key(const CampaignSpec& spec) const {
  std::string key = spec.models[model].name + " " + BudgetKey(budget) + " " + agent + " seed=" + std::to_string(seed);
  if (!device_class.empty()) key += " on " + device_class;
  return key;
}

StatusOr<CampaignSpec> ParseCampaignSpec(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument(source + ": not JSON at " + TextPosition(text, e.byte) + " (byte " +
                                   std::to_string(e.byte) + ")");
  } catch (const json::exception& e) {  // out_of_range: a number past double's range, e.g. 1e400
    const std::string what = e.what();  // "[json.exception.out_of_range.406] number overflow ..."
    const size_t tag_end = what.find("] ");
    const std::string why = tag_end == std::string::npos ? what : what.substr(tag_end + 2);
    return Status::InvalidArgument(source + ": not JSON: " + why);
  }
  if (!j.is_object()) return Status::InvalidArgument(source + ": expected a JSON object");
  Fields f(j, "", source);
  ACS_RETURN_IF_ERROR(f.OnlyKnown({"name", "models", "device_classes", "budgets", "agents", "seeds", "episodes",
                                   "top_k", "fine_tune", "threads", "space", "time_limit_minutes", "compare"}));
  CampaignSpec spec;
  ACS_ASSIGN_OR_RETURN(spec.name, f.String("name", true));
  if (!IsPlainName(spec.name)) return f.Error("name", "'" + spec.name + "' is not 1-64 of [A-Za-z0-9._-]");

  if (!f.Has("models") || !f.At("models").is_array() || f.At("models").empty()) {
    return f.Error("models", "expected a non-empty list of models");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < f.At("models").size(); ++i) {
    const std::string path = "models[" + std::to_string(i) + "]";
    ACS_ASSIGN_OR_RETURN(CampaignModel m, ParseModel(f.At("models")[i], path, source));
    if (!names.insert(m.name).second) return f.Error(path + ".name", "'" + m.name + "' names two models");
    spec.models.push_back(std::move(m));
  }
  ACS_ASSIGN_OR_RETURN(spec.device_classes, f.Strings("device_classes", false, [](const std::string& s) -> std::string {
    return s.empty() || s.size() > 200 ? "expected a device class id" : "";
  }));
  std::vector<std::string> budgets;
  ACS_ASSIGN_OR_RETURN(budgets, f.Strings("budgets", true, [](const std::string& s) -> std::string {
    StatusOr<BudgetSpec> b = ParseBudget(s);
    return b.ok() ? "" : b.status().message();
  }));
  // Budgets written apart ("latency=0.5x", "latency=0.50x") may still be one: their cells
  // would share a key.
  std::map<std::string, size_t> budget_keys;  // a key -> the budget's index
  for (size_t i = 0; i < budgets.size(); ++i) {
    const BudgetSpec b = *ParseBudget(budgets[i]);
    const auto [at, added] = budget_keys.emplace(BudgetKey(b), i);
    if (!added) {
      const std::string earlier = "budgets[" + std::to_string(at->second) + "] ('" + budgets[at->second] + "')";
      return f.Error("budgets[" + std::to_string(i) + "]",
                     "'" + budgets[i] + "' is " + earlier + " again, as " + at->first);
    }
    spec.budgets.push_back(b);
  }
  ACS_ASSIGN_OR_RETURN(spec.agents, f.Strings("agents", true, OneOf(AgentNames(), "agent")));
  if (f.Has("seeds")) {
    const json& seeds = f.At("seeds");
    if (!seeds.is_array() || seeds.empty()) return f.Error("seeds", "expected a non-empty list of integers >= 0");
    spec.seeds.clear();
    std::set<int64_t> seen;
    for (size_t i = 0; i < seeds.size(); ++i) {
      const std::string item = "seeds[" + std::to_string(i) + "]";
      if (!seeds[i].is_number_integer() || seeds[i].get<int64_t>() < 0)
        return f.Error(item, "expected an integer >= 0");
      const int64_t seed = seeds[i].get<int64_t>();
      if (!seen.insert(seed).second) return f.Error(item, std::to_string(seed) + " is listed twice");
      spec.seeds.push_back(seed);
    }
  }
  ACS_ASSIGN_OR_RETURN(int64_t episodes, f.Integer("episodes", spec.episodes, 1, 100000));
  spec.episodes = static_cast<int>(episodes);
  ACS_ASSIGN_OR_RETURN(int64_t top_k, f.Integer("top_k", spec.top_k, 1, 20));
  spec.top_k = static_cast<int>(top_k);
  ACS_ASSIGN_OR_RETURN(spec.fine_tune, f.Bool("fine_tune", spec.fine_tune));
  ACS_ASSIGN_OR_RETURN(int64_t threads, f.Integer("threads", spec.threads, 1, 64));
  spec.threads = static_cast<int>(threads);
  if (f.Has("space")) ACS_RETURN_IF_ERROR(ParseSpace(f.At("space"), source, &spec.space));
  ACS_ASSIGN_OR_RETURN(spec.time_limit_minutes,
                       f.Number("time_limit_minutes", spec.time_limit_minutes, 1, 7 * 24 * 60));
  if (f.Has("compare")) ACS_RETURN_IF_ERROR(ParseCompare(f.At("compare"), source, &spec.compare));

  // Multiplied with an overflow check: the product of long lists could wrap around below the cap.
  uint64_t cells = 1;
  bool overflow = false;
  for (uint64_t n : {spec.models.size(), std::max<size_t>(1, spec.device_classes.size()), spec.budgets.size(),
                     spec.agents.size(), spec.seeds.size()}) {
    overflow = overflow || __builtin_mul_overflow(cells, n, &cells);
  }
  if (overflow || cells > kMaxCells) {
    return Status::InvalidArgument(source + ": " + (overflow ? std::string("over 2^64") : std::to_string(cells)) +
                                   " cells (models x device classes x budgets "
                                   "x agents x seeds), more than " +
                                   std::to_string(kMaxCells));
  }
  return spec;
}

StatusOr<CampaignSpec> ReadCampaignSpec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read the campaign spec '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return ParseCampaignSpec(text.str(), path);
}

std::vector<CampaignCell> CampaignCells(const CampaignSpec& spec) {
  std::vector<CampaignCell> out;
  const std::vector<std::string> classes =
      spec.device_classes.empty() ? std::vector<std::string>{""} : spec.device_classes;
  for (size_t m = 0; m < spec.models.size(); ++m) {
    for (const std::string& device_class : classes) {
      for (const BudgetSpec& budget : spec.budgets) {
        for (const std::string& agent : spec.agents) {
          for (int64_t seed : spec.seeds) out.push_back({static_cast<int>(m), device_class, budget, agent, seed});
        }
      }
    }
  }
  return out;
}

std::string CampaignSpecHash(const CampaignSpec& spec) {
  json j = {{"name", spec.name},
            {"device_classes", spec.device_classes},
            {"agents", spec.agents},
            {"seeds", spec.seeds},
            {"episodes", spec.episodes},
            {"top_k", spec.top_k},
            {"fine_tune", spec.fine_tune},
            {"time_limit_minutes", spec.time_limit_minutes},
            {"compare",
             {{"relative_floor", spec.compare.relative_floor},
              {"noise_multiplier", spec.compare.noise_multiplier},
              {"gate", spec.compare.gate}}}};
  j["models"] = json::array();
  for (const CampaignModel& m : spec.models) {
    j["models"].push_back({{"name", m.name},
                           {"path", m.path},
                           {"sha256", m.sha256},
                           {"input", m.input},
                           {"data", m.data},
                           {"test_data", m.test_data}});
  }
  j["budgets"] = json::array();
  for (const BudgetSpec& b : spec.budgets) j["budgets"].push_back({{"kind", b.kind}, {"ratio", b.ratio}});
  // Added later: left out at their defaults, so that older specs keep their hash.
  if (spec.threads != 1) j["threads"] = spec.threads;
  const CampaignSpace& space = spec.space;
  if (!space.patterns.empty() || !space.block_sizes.empty() || !space.precisions.empty() || space.max_sparsity != 0 ||
      !space.skip_layers.empty()) {
    j["space"] = {{"patterns", space.patterns},
                  {"block_sizes", space.block_sizes},
                  {"precisions", space.precisions},
                  {"max_sparsity", space.max_sparsity},
                  {"skip_layers", space.skip_layers}};
  }
  return Sha256Hex(j.dump());
}

}  // namespace acs
