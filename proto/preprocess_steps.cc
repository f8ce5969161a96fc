#include "proto/preprocess_steps.h"

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

}  // namespace acs
