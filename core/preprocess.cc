#include "core/preprocess.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace acs {
namespace {

using Op = PreprocessStep::Op;

constexpr int64_t kMaxSide = kMaxPreprocessSide;
constexpr int64_t kMaxSpecBytes = 1 << 20;

const std::map<std::string, Op>& OpNames() {
  static const std::map<std::string, Op> names = {
      {"resize", Op::kResize},       {"center_crop", Op::kCenterCrop},           {"pad", Op::kPad},
      {"to_tensor", Op::kToTensor},  {"grayscale_to_rgb", Op::kGrayscaleToRgb}, {"normalize", Op::kNormalize},
      {"grayscale", Op::kGrayscale}};
  return names;
}

std::string OpName(Op op) {
  for (const auto& [name, o] : OpNames()) {
    if (o == op) return name;
  }
  return "?";
}

// The keys each op takes besides "op".
const std::map<Op, std::vector<std::string>>& OpKeys() {
  static const std::map<Op, std::vector<std::string>> keys = {
      {Op::kResize, {"size"}},     {Op::kCenterCrop, {"size"}},         {Op::kPad, {"padding", "fill"}},
      {Op::kToTensor, {}},         {Op::kGrayscaleToRgb, {"channels"}}, {Op::kNormalize, {"mean", "std"}},
      {Op::kGrayscale, {"channels"}}};
  return keys;
}

// An integer or a list of integers, its length among `lengths`, each in [lo, kMaxSide].
StatusOr<std::vector<int64_t>> Ints(const nlohmann::json& v, const std::string& key, const std::vector<size_t>& lengths,
                                    int64_t lo) {
  std::vector<int64_t> out;
  auto take = [&](const nlohmann::json& x) {
    if (!x.is_number_integer()) return false;
    const int64_t i = x.get<int64_t>();
    if (i < lo || i > kMaxSide) return false;
    out.push_back(i);
    return true;
  };
  bool ok = v.is_array() ? true : take(v);
  if (v.is_array()) {
    for (const nlohmann::json& x : v) ok = ok && take(x);
  }
  bool length_ok = false;
  for (size_t n : lengths) length_ok |= out.size() == n;
  if (!ok || !length_ok) {
    std::string counts;
    for (size_t n : lengths) counts += (counts.empty() ? "" : " or ") + std::to_string(n);
    return Status::InvalidArgument(key + " must be an integer or a list of " + counts + " integers in [" +
                                   std::to_string(lo) + ", " + std::to_string(kMaxSide) + "], got " + v.dump());
  }
  return out;
}

StatusOr<std::vector<double>> Doubles(const nlohmann::json& v, const std::string& key) {
  std::vector<double> out;
  if (v.is_number()) out.push_back(v.get<double>());
  if (v.is_array()) {
    for (const nlohmann::json& x : v) {
      if (!x.is_number()) return Status::InvalidArgument(key + " must hold numbers, got " + v.dump());
      out.push_back(x.get<double>());
    }
  }
  if (out.empty()) return Status::InvalidArgument(key + " must be a number or a non-empty list of numbers, got " + v.dump());
  for (double x : out) {
    if (!std::isfinite(x)) return Status::InvalidArgument(key + " must be finite, got " + v.dump());
  }
  return out;
}

StatusOr<PreprocessStep> StepFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("a step must be an object with an \"op\", got " + j.dump());
  if (!j.contains("op") || !j["op"].is_string()) return Status::InvalidArgument("a step needs \"op\", a string");
  const std::string name = j["op"].get<std::string>();
  auto op = OpNames().find(name);
  if (op == OpNames().end()) {
    std::string known;
    for (const auto& [n, o] : OpNames()) known += (known.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("unknown op \"" + name + "\" (known: " + known + ")");
  }
  PreprocessStep s;
  s.op = op->second;
  const std::vector<std::string>& keys = OpKeys().at(s.op);
  for (const auto& [key, value] : j.items()) {
    if (key != "op" && std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return Status::InvalidArgument("unknown key \"" + key + "\"");
    }
  }
  switch (s.op) {
    case Op::kResize:
    case Op::kCenterCrop: {
      if (!j.contains("size")) return Status::InvalidArgument("needs \"size\"");
      ACS_ASSIGN_OR_RETURN(s.size, Ints(j["size"], "size", {1, 2}, 1));
      break;
    }
    case Op::kPad: {
      if (!j.contains("padding")) return Status::InvalidArgument("needs \"padding\"");
      ACS_ASSIGN_OR_RETURN(s.padding, Ints(j["padding"], "padding", {1, 2, 4}, 0));
      if (j.contains("fill")) {
        ACS_ASSIGN_OR_RETURN(std::vector<double> fill, Doubles(j["fill"], "fill"));
        if (fill.size() != 1) return Status::InvalidArgument("fill must be one number");
        s.fill = fill[0];
      }
      break;
    }
    case Op::kGrayscaleToRgb: {
      if (j.contains("channels")) {
        ACS_ASSIGN_OR_RETURN(std::vector<int64_t> c, Ints(j["channels"], "channels", {1}, 1));
        s.channels = c[0];
      }
      break;
    }
    case Op::kGrayscale: {
      s.channels = 1;
      if (j.contains("channels")) {
        ACS_ASSIGN_OR_RETURN(std::vector<int64_t> c, Ints(j["channels"], "channels", {1}, 1));
        if (c[0] != 1 && c[0] != 3) return Status::InvalidArgument("channels must be 1 or 3");
        s.channels = c[0];
      }
      break;
    }
    case Op::kNormalize: {
      if (!j.contains("mean") || !j.contains("std")) return Status::InvalidArgument("needs \"mean\" and \"std\"");
      ACS_ASSIGN_OR_RETURN(s.mean, Doubles(j["mean"], "mean"));
      ACS_ASSIGN_OR_RETURN(s.std, Doubles(j["std"], "std"));
      if (s.mean.size() != s.std.size() && s.mean.size() != 1 && s.std.size() != 1) {
        return Status::InvalidArgument("mean and std must have the same length (or one value), got " +
                                       std::to_string(s.mean.size()) +
                                       " and " + std::to_string(s.std.size()));
      }
      for (double x : s.std) {
        if (!(x > 0)) return Status::InvalidArgument("std values must be positive");
      }
      break;
    }
    case Op::kToTensor:
      break;
  }
  return s;
}

// The {H, W} a resize step makes of an h x w image.
std::pair<int64_t, int64_t> ResizedSize(const PreprocessStep& s, int64_t h, int64_t w) {
  if (s.size.size() == 2) return {s.size[0], s.size[1]};
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  const auto scaled = static_cast<int64_t>(static_cast<double>(s.size[0]) * static_cast<double>(longer) /
                                           static_cast<double>(shorter));
  return h <= w ? std::pair<int64_t, int64_t>{s.size[0], scaled} : std::pair<int64_t, int64_t>{scaled, s.size[0]};
}

// The [C, H, W] step `s` makes of `chw`; InvalidArgument when it does not fit.
StatusOr<std::vector<int64_t>> StepShape(const PreprocessStep& s, std::vector<int64_t> chw) {
  auto in_range = [](const std::vector<int64_t>& v, int64_t lo) {
    return std::all_of(v.begin(), v.end(), [lo](int64_t x) { return x >= lo && x <= kMaxSide; });
  };
  if ((s.op == Op::kResize || s.op == Op::kCenterCrop) &&
      ((s.size.size() != 1 && s.size.size() != 2) || !in_range(s.size, 1))) {
    return Status::InvalidArgument("size must hold 1 or 2 values in [1, " + std::to_string(kMaxSide) + "]");
  }
  if (s.op == Op::kPad && ((s.padding.size() != 1 && s.padding.size() != 2 && s.padding.size() != 4) ||
                           !in_range(s.padding, 0))) {
    return Status::InvalidArgument("padding must hold 1, 2 or 4 values in [0, " + std::to_string(kMaxSide) + "]");
  }
  if (s.op == Op::kNormalize && (s.mean.empty() || s.std.empty())) {
    return Status::InvalidArgument("mean and std need values");
  }
  if (s.op == Op::kGrayscaleToRgb && s.channels < 1) return Status::InvalidArgument("channels must be >= 1");
  switch (s.op) {
    case Op::kResize: {
      const auto [h, w] = ResizedSize(s, chw[1], chw[2]);
      if (h < 1 || w < 1 || h > kMaxSide || w > kMaxSide) {
        return Status::InvalidArgument("makes an image of " + std::to_string(h) + "x" + std::to_string(w));
      }
      return std::vector<int64_t>{chw[0], h, w};
    }
    case Op::kCenterCrop:
      return std::vector<int64_t>{chw[0], s.size[0], s.size.size() == 2 ? s.size[1] : s.size[0]};
    case Op::kPad: {
      const std::array<int64_t, 4> p = s.PadSides();
      return std::vector<int64_t>{chw[0], chw[1] + p[1] + p[3], chw[2] + p[0] + p[2]};
    }
    case Op::kGrayscaleToRgb:
      if (chw[0] != 1 && chw[0] != s.channels) {
        return Status::InvalidArgument("repeats a 1-channel image, got " + std::to_string(chw[0]) + " channels");
      }
      return std::vector<int64_t>{s.channels, chw[1], chw[2]};
    case Op::kGrayscale:
      if (chw[0] != 1 && chw[0] != 3) {
        return Status::InvalidArgument("takes a grey or RGB image, got " + std::to_string(chw[0]) + " channels");
      }
      if (s.channels != 1 && s.channels != 3) return Status::InvalidArgument("channels must be 1 or 3");
      return std::vector<int64_t>{s.channels, chw[1], chw[2]};
    case Op::kNormalize: {
      for (const std::vector<double>* v : {&s.mean, &s.std}) {
        const auto n = static_cast<int64_t>(v->size());
        if (n != 1 && n != chw[0]) {
          return Status::InvalidArgument(std::string(v == &s.mean ? "mean" : "std") + " has " + std::to_string(n) +
                                         " values for " + std::to_string(chw[0]) +
                                         " channels (give one, or one per channel)");
        }
      }
      return chw;
    }
    case Op::kToTensor:
      return chw;
  }
  return chw;
}

// What a step does, for CheckImagesSize: "after resizing come to".
std::string GrowsBy(Op op) {
  switch (op) {
    case Op::kResize:
      return "after resizing come to";
    case Op::kCenterCrop:
      return "after cropping come to";
    case Op::kPad:
      return "after padding come to";
    case Op::kGrayscaleToRgb:
    case Op::kGrayscale:
      return "after repeating channels come to";
    default:
      return "come to";
  }
}

// "512 B", "3.5 MiB", "13411045 GiB".
std::string Bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB"};
  int unit = 0;
  for (; unit < 3 && bytes >= 1024; ++unit) bytes /= 1024;
  char buf[64];
  std::snprintf(buf, sizeof(buf), unit > 0 && bytes < 100 ? "%.3g %s" : "%.0f %s", bytes, kUnits[unit]);
  return buf;
}

std::string StepLabel(size_t i, const PreprocessStep& s) {
  return "preprocessing step " + std::to_string(i + 1) + " (" + OpName(s.op) + ")";
}

}  // namespace

bool PreprocessSpec::has_to_tensor() const {
  for (const PreprocessStep& s : steps) {
    if (s.op == Op::kToTensor) return true;
  }
  return false;
}

nlohmann::json PreprocessSpec::ToJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const PreprocessStep& s : steps) {
    nlohmann::json j = {{"op", OpName(s.op)}};
    switch (s.op) {
      case Op::kResize:
      case Op::kCenterCrop:
        j["size"] = s.size;
        break;
      case Op::kPad:
        j["padding"] = s.padding;
        if (s.fill != 0) j["fill"] = s.fill;
        break;
      case Op::kGrayscaleToRgb:
        if (s.channels != 3) j["channels"] = s.channels;
        break;
      case Op::kGrayscale:
        if (s.channels != 1) j["channels"] = s.channels;
        break;
      case Op::kNormalize:
        j["mean"] = s.mean;
        j["std"] = s.std;
        break;
      case Op::kToTensor:
        break;
    }
    out.push_back(j);
  }
  return out;
}

StatusOr<PreprocessSpec> PreprocessSpec::FromJson(const nlohmann::json& steps) {
  if (!steps.is_array()) return Status::InvalidArgument("a preprocessing spec is a JSON list of steps, got " + steps.dump().substr(0, 80));
  PreprocessSpec spec;
  bool to_tensor = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    StatusOr<PreprocessStep> s = StepFromJson(steps[i]);
    const std::string label = "preprocessing step " + std::to_string(i + 1) +
                              (steps[i].is_object() && steps[i].contains("op") && steps[i]["op"].is_string()
                                   ? " (" + steps[i]["op"].get<std::string>() + ")"
                                   : std::string());
    if (!s.ok()) return Status::InvalidArgument(label + ": " + s.status().message());
    if (s->op == Op::kToTensor && to_tensor) return Status::InvalidArgument(label + ": to_tensor may come only once");
    to_tensor |= s->op == Op::kToTensor;
    spec.steps.push_back(*s);
  }
  if (to_tensor) {
    for (size_t i = 0; i < spec.steps.size() && spec.steps[i].op != Op::kToTensor; ++i) {
      if (spec.steps[i].op == Op::kNormalize) {
        return Status::InvalidArgument(StepLabel(i, spec.steps[i]) + ": normalize comes after to_tensor");
      }
    }
  }
  return spec;
}

StatusOr<PreprocessSpec> PreprocessSpec::Parse(const std::string& text_or_path) {
  const size_t first = text_or_path.find_first_not_of(" \t\r\n");
  std::string text = text_or_path;
  if (first == std::string::npos || (text_or_path[first] != '[' && text_or_path[first] != '{')) {
    std::ifstream in(text_or_path, std::ios::binary);
    if (!in) return Status::InvalidArgument("preprocessing spec: '" + text_or_path + "' is neither a JSON list nor a readable file");
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    if (static_cast<int64_t>(text.size()) > kMaxSpecBytes) {
      return Status::InvalidArgument("preprocessing spec: " + text_or_path + " is larger than 1 MiB");
    }
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("preprocessing spec: not valid JSON");
  return FromJson(j);
}

Status CheckImagesSize(const std::string& path, int64_t n, const std::vector<int64_t>& chw, int64_t max_bytes,
                       const std::string& how) {
  double bytes = 4.0 * static_cast<double>(n);
  for (int64_t d : chw) bytes *= static_cast<double>(d);
  if (max_bytes <= 0 || bytes <= static_cast<double>(max_bytes)) return Status::Ok();
  std::string size = Bytes(bytes), most = Bytes(static_cast<double>(max_bytes));
  if (size == most) {  // rounded alike: give the bytes
    size = std::to_string(static_cast<uint64_t>(bytes)) + " B";
    most = std::to_string(max_bytes) + " B";
  }
  std::string shape;
  for (int64_t d : chw) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  return Status::ResourceExhausted((path.empty() ? "" : path + ": ") + std::to_string(n) + " images of " + shape + " " +
                                   how + " " + size + " of float32, past the limit of " + most +
                                   " (read fewer with a limit/offset)")
      .WithReason(StatusReason::kDecodedSizeLimit);
}

std::array<int64_t, 4> PreprocessStep::PadSides() const {
  const std::vector<int64_t>& p = padding;
  if (p.size() == 1) return {p[0], p[0], p[0], p[0]};
  if (p.size() == 2) return {p[0], p[1], p[0], p[1]};
  if (p.size() == 4) return {p[0], p[1], p[2], p[3]};
  return {0, 0, 0, 0};
}

StatusOr<std::vector<std::vector<int64_t>>> PreprocessedShapes(std::vector<int64_t> chw, const PreprocessSpec& spec,
                                                               int64_t n, int64_t max_bytes) {
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    StatusOr<std::vector<int64_t>> next = StepShape(spec.steps[i], chw);
    if (!next.ok()) return Status::InvalidArgument(StepLabel(i, spec.steps[i]) + ": " + next.status().message());
    chw = *next;
    ACS_RETURN_IF_ERROR(CheckImagesSize("", n, chw, max_bytes, GrowsBy(spec.steps[i].op)));
    out.push_back(chw);
  }
  return out;
}

}  // namespace acs
