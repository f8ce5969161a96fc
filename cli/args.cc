#include "cli/args.h"

namespace acs::cli {

std::string Args::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

StatusOr<int64_t> Args::GetInt(const std::string& name, int64_t fallback) const {
  auto it = flags.find(name);
  if (it == flags.end()) return fallback;
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    if (used == it->second.size()) return static_cast<int64_t>(v);
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("--" + name + " expects an integer, got '" + it->second + "'");
}

StatusOr<Args> ParseArgs(int argc, char** argv, int first, const std::set<std::string>& valued,
                         const std::set<std::string>& switches) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      size_t eq = name.find('=');
      bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (valued.count(name)) {
        if (!inline_value) {
          if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
          value = argv[++i];
        }
        args.flags[name] = value;
      } else if (switches.count(name) && !inline_value) {
        args.flags[name] = "";
      } else {
        return Status::InvalidArgument("unknown option --" + name);
      }
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

}  // namespace acs::cli
