#include "core/flags.h"

#include <algorithm>

#include <stdexcept>

namespace acs {

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

StatusOr<int64_t> Flags::GetInt(const std::string& name, int64_t fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used == it->second.size()) return static_cast<int64_t>(v);
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("--" + name + " expects an integer, got '" + it->second + "'");
}

StatusOr<double> Flags::GetDouble(const std::string& name, double fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("--" + name + " expects a number, got '" + it->second + "'");
}

StatusOr<std::string> Flags::Required(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return Status::InvalidArgument("--" + name + " is required");
  return it->second;
}

StatusOr<Flags> ParseFlags(int argc, char** argv, int first, const std::set<std::string>& valued,
                           const std::set<std::string>& switches) {
  Flags flags;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
      flags.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (valued.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
        value = argv[++i];
      }
      flags.values[name] = value;
    } else if (switches.count(name) && !inline_value) {
      flags.values[name] = "";
    } else {
      return Status::InvalidArgument("unknown option --" + name);
    }
  }
  return flags;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

StatusOr<Shape> ParseShape(const std::string& text) {
  const char separator = text.find(',') != std::string::npos ? ',' : 'x';
  const Status bad = Status::InvalidArgument("bad input shape '" + text +
                                             "': expected positive integers like 1x3x32x32");
  Shape shape;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    std::string token = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos) return bad;
    try {
      int64_t v = std::stoll(token);
      if (v <= 0) return bad;
      shape.push_back(v);
    } catch (const std::exception&) {
      return bad;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return shape;
}

StatusOr<BudgetSpec> ParseBudget(const std::string& text) {
  const size_t eq = text.find('=');
  std::string value = eq == std::string::npos ? "" : text.substr(eq + 1);
  if (!value.empty() && (value.back() == 'x' || value.back() == 'X')) value.pop_back();
  BudgetSpec budget;
  budget.kind = text.substr(0, eq);
  const bool known = budget.kind == "latency" || budget.kind == "flops" || budget.kind == "params" || budget.kind == "bytes";
  try {
    size_t used = 0;
    budget.ratio = std::stod(value, &used);
    if (known && used == value.size() && budget.ratio > 0 && budget.ratio <= 1) return budget;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("--budget expects KIND=RATIOx with KIND latency, flops, params or bytes and RATIO in "
                                 "(0, 1], got '" + text + "'");
}

}  // namespace acs
