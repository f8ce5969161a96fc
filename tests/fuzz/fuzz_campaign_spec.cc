// Fuzz target: the nightly campaign spec (ParseCampaignSpec), a JSON file `acs campaign run`
// reads. Every input is a spec or an InvalidArgument naming what is wrong, never an
// exception or a crash; a spec that parses expands to at most 10,000 cells, each with a key
// of its own (a night's cells are matched to the last night's by key).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "campaigns/campaign_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const acs::StatusOr<acs::CampaignSpec> spec = acs::ParseCampaignSpec(text, "spec.json");
  if (!spec.ok()) {
    if (spec.status().code() != acs::StatusCode::kInvalidArgument) std::abort();
    if (spec.status().message().rfind("spec.json: ", 0) != 0) std::abort();
    return 0;
  }
  const std::vector<acs::CampaignCell> cells = acs::CampaignCells(*spec);
  if (cells.empty() || cells.size() > 10000) std::abort();
  std::set<std::string> keys;
  for (const acs::CampaignCell& cell : cells) {
    if (cell.model < 0 || static_cast<size_t>(cell.model) >= spec->models.size()) std::abort();
    if (!keys.insert(cell.Key(*spec)).second) std::abort();
  }
  if (acs::CampaignSpecHash(*spec).size() != 64) std::abort();
  return 0;
}
