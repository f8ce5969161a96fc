#include "experiments/bench/bench_output.h"

#include <filesystem>
#include <fstream>

namespace acs::bench {

bool WriteJsonFile(const std::string& path, const nlohmann::json& json) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  std::ofstream f(path);
  f << json.dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  std::printf("\nwrote %s\n", path.c_str());
  return true;
}

}  // namespace acs::bench
