// The device class (DESIGN §3): what a latency is valid for. Two measurements compare only
// when their device classes have the same Id(): same architecture, kernel ISA, CPU model
// and thread count. Torch-free; the runtime version is passed in by the caller.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace acs::measure {

struct DeviceClass {
  std::string arch;             // e.g. "x86_64" (uname machine)
  std::string cpu_model;        // /proc/cpuinfo "model name", e.g. "AMD EPYC"
  std::string isa;              // what the kernel table runs: "scalar", "avx2", "avx512"
  bool vnni = false;            // AVX-512 VNNI usable (int8 dot products)
  int physical_cores = 0;       // distinct (physical id, core id) pairs; logical CPUs if unknown
  int threads = 1;              // threads a measurement uses
  std::string runtime_version;  // e.g. "acs 0.1.0 / libtorch 1.13.0"

  // "<arch>-<isa>-<cpu model slug>-t<threads>", e.g. "x86_64-avx512-amd-epyc-t1". Stable:
  // the same machine, kernel ISA and threads give the same id.
  std::string Id() const;
  // Id() without the thread suffix, e.g. "x86_64-avx512-amd-epyc": the machine kind that
  // latency predictors are kept for (threads are one of their features).
  std::string MachineId() const;
  nlohmann::json ToJson() const;  // every field, plus "id"
  // Errors (InvalidArgument) name a missing or mistyped field.
  static StatusOr<DeviceClass> FromJson(const nlohmann::json& j);
};

struct DeviceClassOptions {
  int threads = 1;              // threads measurements will use
  std::string runtime_version;  // empty: "acs <project version>"
};

// This machine's device class: /proc/cpuinfo, uname, and the kernel table chosen at start-up
// (so ACS_ISA caps the ISA here too).
DeviceClass DetectDeviceClass(const DeviceClassOptions& options = {});

// The project version, e.g. "0.1.0".
std::string ProjectVersion();

// Pieces of the above, exposed for tests.
// "model name" of the first processor in /proc/cpuinfo text; "unknown" if none.
std::string CpuModelFromCpuinfo(const std::string& cpuinfo);
// Distinct (physical id, core id) pairs; without those fields, the count of "processor"
// entries; 0 for empty text.
int PhysicalCoresFromCpuinfo(const std::string& cpuinfo);
// Lower-case letters and digits, runs of anything else as one '-', trimmed:
// "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz" -> "intel-r-xeon-r-gold-6230-cpu-2-10ghz".
std::string Slug(const std::string& text);

}  // namespace acs::measure
