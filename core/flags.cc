#include "core/flags.h"

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

}  // namespace acs
