// Fuzz target: kernel spec JSON (ParseKernelSpec), as workers receive it in tasks. An
// accepted spec must survive a round trip and have a kernel the plan can name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/kernel_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  acs::StatusOr<acs::KernelSpec> spec = acs::ParseKernelSpec(j);
  if (!spec.ok()) return 0;
  acs::StatusOr<acs::KernelSpec> again = acs::ParseKernelSpec(spec->ToJson());
  if (!again.ok() || again->ToJson() != spec->ToJson()) std::abort();
  (void)acs::KernelOf(*spec);
  return 0;
}
