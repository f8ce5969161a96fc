#include "proto/request_json.h"

#include <vector>

namespace acs {

nlohmann::json PreprocessStepsJson(const PreprocessStepsProto& steps) {
  nlohmann::json out = nlohmann::json::array();
  for (const acs::v1::PreprocessStep& s : steps) {
    nlohmann::json j = {{"op", s.op()}};
    if (s.size_size() > 0) j["size"] = std::vector<int64_t>(s.size().begin(), s.size().end());
    if (s.padding_size() > 0) j["padding"] = std::vector<int64_t>(s.padding().begin(), s.padding().end());
    if (s.fill() != 0) j["fill"] = s.fill();
    if (s.channels() != 0) j["channels"] = s.channels();
    if (s.mean_size() > 0) j["mean"] = std::vector<double>(s.mean().begin(), s.mean().end());
    if (s.std_size() > 0) j["std"] = std::vector<double>(s.std().begin(), s.std().end());
    out.push_back(std::move(j));
  }
  return out;
}

void AddPreprocessSteps(const nlohmann::json& steps, PreprocessStepsProto* out) {
  if (!steps.is_array()) return;
  for (const nlohmann::json& j : steps) {
    if (!j.is_object()) continue;
    acs::v1::PreprocessStep* s = out->Add();
    if (j.contains("op") && j["op"].is_string()) s->set_op(j["op"].get<std::string>());
    auto each = [&](const char* key, auto add) {
      if (!j.contains(key)) return;
      const nlohmann::json& v = j[key];
      if (v.is_number()) add(v);
      if (!v.is_array()) return;
      for (const nlohmann::json& x : v) {
        if (x.is_number()) add(x);
      }
    };
    each("size", [&](const nlohmann::json& x) { if (x.is_number_integer()) s->add_size(x.get<int64_t>()); });
    each("padding", [&](const nlohmann::json& x) { if (x.is_number_integer()) s->add_padding(x.get<int64_t>()); });
    each("mean", [&](const nlohmann::json& x) { s->add_mean(x.get<double>()); });
    each("std", [&](const nlohmann::json& x) { s->add_std(x.get<double>()); });
    if (j.contains("fill") && j["fill"].is_number()) s->set_fill(j["fill"].get<double>());
    if (j.contains("channels") && j["channels"].is_number_integer()) s->set_channels(j["channels"].get<int64_t>());
  }
}

namespace {

constexpr const char* kSplitParts[] = {"calibration", "validation", "fine_tune"};

acs::v1::SplitSize* MutablePart(acs::v1::DataSplit* s, int i) {
  return i == 0 ? s->mutable_calibration() : i == 1 ? s->mutable_validation() : s->mutable_fine_tune();
}

const acs::v1::SplitSize& Part(const acs::v1::DataSplit& s, int i) {
  return i == 0 ? s.calibration() : i == 1 ? s.validation() : s.fine_tune();
}

}  // namespace

nlohmann::json DataSplitJson(const acs::v1::DataSplit& split) {
  nlohmann::json j = nlohmann::json::object();
  for (int i = 0; i < 3; ++i) {
    const acs::v1::SplitSize& p = Part(split, i);
    if (p.samples() != 0) j[kSplitParts[i]]["samples"] = p.samples();
    if (p.fraction() != 0) j[kSplitParts[i]]["fraction"] = p.fraction();
  }
  if (split.shuffle_seed() != 0) j["shuffle_seed"] = split.shuffle_seed();
  return j;
}

void SetDataSplit(const nlohmann::json& split, acs::v1::DataSplit* out) {
  if (!split.is_object()) return;
  for (int i = 0; i < 3; ++i) {
    if (!split.contains(kSplitParts[i]) || !split[kSplitParts[i]].is_object()) continue;
    const nlohmann::json& p = split[kSplitParts[i]];
    if (p.contains("samples") && p["samples"].is_number_integer()) {
      MutablePart(out, i)->set_samples(p["samples"].get<int64_t>());
    }
    if (p.contains("fraction") && p["fraction"].is_number()) {
      MutablePart(out, i)->set_fraction(p["fraction"].get<double>());
    }
  }
  if (split.contains("shuffle_seed") && split["shuffle_seed"].is_number_unsigned()) {
    out->set_shuffle_seed(split["shuffle_seed"].get<uint64_t>());
  }
}

}  // namespace acs
