#include "devices/measure/device_class.h"

#include <sys/utsname.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "devices/kernels/cpu_features.h"
#include "devices/kernels/kernel_table.h"

#ifndef ACS_PROJECT_VERSION
#define ACS_PROJECT_VERSION "unknown"
#endif

namespace acs::measure {
namespace {

// "key : value" of a /proc/cpuinfo line; false for other lines.
bool SplitLine(const std::string& line, std::string* key, std::string* value) {
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return false;
  auto trim = [](std::string s) {
    const size_t b = s.find_first_not_of(" \t");
    const size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  *key = trim(line.substr(0, colon));
  *value = trim(line.substr(colon + 1));
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string ProjectVersion() { return ACS_PROJECT_VERSION; }

std::string CpuModelFromCpuinfo(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  std::string line, key, value;
  while (std::getline(lines, line)) {
    if (SplitLine(line, &key, &value) && key == "model name" && !value.empty()) return value;
  }
  return "unknown";
}

int PhysicalCoresFromCpuinfo(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  std::string line, key, value, physical = "0";
  std::set<std::pair<std::string, std::string>> cores;
  int processors = 0;
  while (std::getline(lines, line)) {
    if (!SplitLine(line, &key, &value)) continue;
    if (key == "processor") {
      ++processors;
      physical = "0";
    } else if (key == "physical id") {
      physical = value;
    } else if (key == "core id") {
      cores.insert({physical, value});
    }
  }
  return cores.empty() ? processors : static_cast<int>(cores.size());
}

std::string Slug(const std::string& text) {
  std::string out;
  bool dash = false;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      if (dash && !out.empty()) out += '-';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      dash = false;
    } else {
      dash = true;
    }
  }
  return out;
}

std::string DeviceClass::MachineId() const {
  return (arch.empty() ? "unknown" : arch) + "-" + isa + "-" + Slug(cpu_model);
}

std::string DeviceClass::Id() const { return MachineId() + "-t" + std::to_string(threads); }

nlohmann::json DeviceClass::ToJson() const {
  return {{"id", Id()},
          {"arch", arch},
          {"cpu_model", cpu_model},
          {"isa", isa},
          {"vnni", vnni},
          {"physical_cores", physical_cores},
          {"threads", threads},
          {"runtime_version", runtime_version}};
}

StatusOr<DeviceClass> DeviceClass::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("device class: expected a JSON object");
  DeviceClass d;
  auto bad = [](const char* key, const char* what) {
    return Status::InvalidArgument(std::string("device class: '") + key + "' must be " + what);
  };
  auto str = [&](const char* key, std::string* out) -> Status {
    if (!j.contains(key) || !j[key].is_string()) return bad(key, "a string");
    *out = j[key].get<std::string>();
    return Status::Ok();
  };
  auto integer = [&](const char* key, int* out) -> Status {
    if (!j.contains(key) || !j[key].is_number_integer()) return bad(key, "an integer");
    *out = j[key].get<int>();
    return Status::Ok();
  };
  ACS_RETURN_IF_ERROR(str("arch", &d.arch));
  ACS_RETURN_IF_ERROR(str("cpu_model", &d.cpu_model));
  ACS_RETURN_IF_ERROR(str("isa", &d.isa));
  ACS_RETURN_IF_ERROR(str("runtime_version", &d.runtime_version));
  ACS_RETURN_IF_ERROR(integer("physical_cores", &d.physical_cores));
  ACS_RETURN_IF_ERROR(integer("threads", &d.threads));
  if (!j.contains("vnni") || !j["vnni"].is_boolean()) return bad("vnni", "a boolean");
  d.vnni = j["vnni"].get<bool>();
  return d;
}

DeviceClass DetectDeviceClass(const DeviceClassOptions& options) {
  DeviceClass d;
  struct utsname u;
  d.arch = uname(&u) == 0 ? u.machine : "unknown";
  const std::string cpuinfo = ReadFile("/proc/cpuinfo");
  d.cpu_model = CpuModelFromCpuinfo(cpuinfo);
  d.physical_cores = PhysicalCoresFromCpuinfo(cpuinfo);
  if (d.physical_cores == 0) d.physical_cores = static_cast<int>(std::thread::hardware_concurrency());
  const kernels::Isa isa = kernels::Kernels().isa;
  d.isa = kernels::IsaName(isa);
  d.vnni = isa == kernels::Isa::kAvx512 && kernels::GetCpuFeatures().avx512vnni;
  d.threads = options.threads;
  d.runtime_version = options.runtime_version.empty() ? "acs " + ProjectVersion() : options.runtime_version;
  return d;
}

}  // namespace acs::measure
