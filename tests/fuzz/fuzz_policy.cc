// Fuzz target: policy JSON (Policy::FromJson). Accepted text must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  acs::StatusOr<acs::Policy> policy = acs::Policy::FromJson(text);
  if (!policy.ok()) return 0;
  acs::StatusOr<acs::Policy> again = acs::Policy::FromJson(policy->ToJson(-1));
  if (!again.ok() || again->ToJson(-1) != policy->ToJson(-1)) std::abort();
  return 0;
}
