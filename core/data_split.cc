#include "core/data_split.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace acs {
namespace {

constexpr const char* kParts[] = {"calibration", "validation", "fine_tune"};

// The parts of a split in kParts' order.
std::vector<std::pair<const char*, SplitSize*>> Parts(DataSplit& s) {
  return {{kParts[0], &s.calibration}, {kParts[1], &s.validation}, {kParts[2], &s.fine_tune}};
}

std::vector<std::pair<const char*, const SplitSize*>> Parts(const DataSplit& s) {
  return {{kParts[0], &s.calibration}, {kParts[1], &s.validation}, {kParts[2], &s.fine_tune}};
}

// Digits only, as a positive int64.
bool ParseCount(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// left - n, or INT64_MIN where that is below it: counts from JSON reach 2^63 - 1, and two
// such parts must not wrap around to a split that seems to fit.
int64_t Less(int64_t left, int64_t n) {
  int64_t out = 0;
  return __builtin_sub_overflow(left, n, &out) ? INT64_MIN : out;
}

bool ParseNumber(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*out);
}

}  // namespace

StatusOr<SplitSize> SplitSize::Parse(const std::string& text) {
  SplitSize s;
  const auto bad = [&] {
    return Status::InvalidArgument("'" + text + "' is no split size: give a count of samples (256), a percentage "
                                   "(10%) or a fraction in (0, 1] (0.1)");
  };
  double v = 0;
  if (ParseCount(text, &s.samples)) {
    if (s.samples < 1) return bad();
  } else if (!text.empty() && text.back() == '%' && ParseNumber(text.substr(0, text.size() - 1), &v)) {
    s.fraction = v / 100;
  } else if (ParseNumber(text, &v) && text.find('.') != std::string::npos) {
    s.fraction = v;
  } else {
    return bad();
  }
  if (s.samples == 0 && !(s.fraction > 0 && s.fraction <= 1)) return bad();
  return s;
}

std::string SplitSize::ToString() const {
  if (samples > 0) return std::to_string(samples);
  if (fraction <= 0) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%g%%", fraction * 100);
  return text;
}

Status DataSplit::Validate() const {
  double fractions = 0;
  for (const auto& [name, part] : Parts(*this)) {
    if (part->samples < 0) return Status::InvalidArgument(std::string("split: ") + name + " must not be negative");
    if (part->fraction != 0 && !(part->fraction > 0 && part->fraction <= 1)) {
      return Status::InvalidArgument(std::string("split: ") + name + "'s fraction must be in (0, 1]");
    }
    if (part->samples > 0 && part->fraction > 0) {
      return Status::InvalidArgument(std::string("split: ") + name + " is given as a count and as a fraction");
    }
    fractions += part->fraction;
  }
  if (fractions > 1 + 1e-9) {
    return Status::InvalidArgument("split: the fractions add up to more than the data (" +
                                   std::to_string(fractions) + ")");
  }
  return Status::Ok();
}

nlohmann::json DataSplit::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, part] : Parts(*this)) {
    if (part->samples > 0) j[name] = {{"samples", part->samples}};
    if (part->fraction > 0) j[name] = {{"fraction", part->fraction}};
  }
  if (shuffle_seed > 0) j["shuffle_seed"] = shuffle_seed;
  return j;
}

StatusOr<DataSplit> DataSplit::FromJson(const nlohmann::json& j) {
  if (j.is_null()) return DataSplit{};
  if (!j.is_object()) return Status::InvalidArgument("split: expected a JSON object, got " + j.dump());
  DataSplit s;
  for (const auto& [key, value] : j.items()) {
    if (key == "shuffle_seed") {
      if (!value.is_number_unsigned()) return Status::InvalidArgument("split: shuffle_seed must be an integer >= 0");
      s.shuffle_seed = value.get<uint64_t>();
      continue;
    }
    SplitSize* part = nullptr;
    for (const auto& [name, p] : Parts(s)) {
      if (key == name) part = p;
    }
    if (!part) {
      return Status::InvalidArgument("split: unknown key '" + key + "' (calibration, validation, fine_tune, " +
                                     "shuffle_seed)");
    }
    if (!value.is_object()) return Status::InvalidArgument("split: " + key + " must be {\"samples\": N} or " +
                                                           "{\"fraction\": F}");
    for (const auto& [field, v] : value.items()) {
      if (field == "samples" && v.is_number_integer()) {
        part->samples = v.get<int64_t>();
      } else if (field == "fraction" && v.is_number()) {
        part->fraction = v.get<double>();
      } else {
        return Status::InvalidArgument("split: " + key + "." + field + " is not a count (samples) or a fraction");
      }
    }
  }
  ACS_RETURN_IF_ERROR(s.Validate());
  return s;
}

StatusOr<DataSplit> DataSplit::Parse(const std::string& text) {
  DataSplit s;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, std::min(eq, item.size()));
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "shuffle_seed") {
      int64_t seed = 0;
      if (!ParseCount(value, &seed)) return Status::InvalidArgument("split: shuffle_seed must be an integer >= 0");
      s.shuffle_seed = static_cast<uint64_t>(seed);
      continue;
    }
    SplitSize* part = nullptr;
    for (const auto& [name, p] : Parts(s)) {
      if (key == name) part = p;
    }
    if (!part) {
      return Status::InvalidArgument("split: unknown part '" + key +
                                     "' (calibration=N, validation=N, fine_tune=N, shuffle_seed=S)");
    }
    StatusOr<SplitSize> size = SplitSize::Parse(value);
    if (!size.ok()) return Status::InvalidArgument("split: " + key + ": " + size.status().message());
    *part = *size;
  }
  ACS_RETURN_IF_ERROR(s.Validate());
  return s;
}

std::string DataSplit::ToString() const {
  std::string s;
  for (const auto& [name, part] : Parts(*this)) {
    if (part->is_set()) s += (s.empty() ? "" : ",") + std::string(name) + "=" + part->ToString();
  }
  if (shuffle_seed > 0) s += (s.empty() ? "" : ",") + std::string("shuffle_seed=") + std::to_string(shuffle_seed);
  return s;
}

std::string SplitCounts::ToString() const {
  std::string s = "calibration " + std::to_string(calibration) + ", validation " + std::to_string(validation);
  if (fine_tune > 0) s += ", fine-tuning " + std::to_string(fine_tune);
  return s;
}

StatusOr<SplitCounts> ResolveSplit(const DataSplit& split, const SplitCounts& defaults, int64_t total,
                                   bool fine_tune) {
  ACS_RETURN_IF_ERROR(split.Validate());
  const auto count = [total](const SplitSize& s) {
    return s.samples > 0 ? s.samples
                         : std::max<int64_t>(1, static_cast<int64_t>(std::floor(s.fraction * static_cast<double>(total))));
  };
  SplitCounts c;
  int64_t left = total;
  c.calibration = split.calibration.is_set() ? count(split.calibration) : std::min(defaults.calibration, left - 1);
  c.calibration = std::max<int64_t>(c.calibration, 0);
  left = Less(left, c.calibration);
  c.validation = split.validation.is_set() ? count(split.validation) : std::min(defaults.validation, left);
  left = Less(left, c.validation);
  c.fine_tune = 0;
  if (fine_tune) {
    c.fine_tune = split.fine_tune.is_set() ? count(split.fine_tune) : std::min(defaults.fine_tune, left);
    left = Less(left, c.fine_tune);
  }
  if (left < 0 || c.validation < 1 || (fine_tune && c.fine_tune < 1)) {
    return Status::InvalidArgument("the data holds " + std::to_string(total) + " samples, too few for the split (" +
                                   c.ToString() + (fine_tune && c.fine_tune < 1 ? ", fine-tuning none left" : "") +
                                   (c.validation < 1 ? ", validation none left" : "") + ")");
  }
  return c;
}

}  // namespace acs
