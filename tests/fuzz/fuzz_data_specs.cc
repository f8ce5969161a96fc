// Fuzz target: the data specs of a job request that Submit reads in the server's own
// process before any child runs: the preprocessing spec (PreprocessSpec::FromJson, and the
// shapes its steps make) and the split (DataSplit::FromJson and the command line's
// DataSplit::Parse, resolved on data of several sizes). Each must give a spec or an error,
// never a crash or undefined behaviour; a spec that parses survives its own JSON, and a
// resolved split takes at most the samples the data holds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data_split.h"
#include "core/preprocess.h"

namespace {

void CheckPreprocess(const nlohmann::json& j) {
  const acs::StatusOr<acs::PreprocessSpec> spec = acs::PreprocessSpec::FromJson(j);
  if (!spec.ok()) return;
  const acs::StatusOr<acs::PreprocessSpec> again = acs::PreprocessSpec::FromJson(spec->ToJson());
  if (!again.ok() || again->ToJson() != spec->ToJson()) std::abort();
  const std::vector<std::vector<int64_t>> inputs = {{1, 28, 28}, {3, 32, 32}, {1, 1, 65536}, {4, 7, 3}};
  for (const std::vector<int64_t>& chw : inputs) {
    const auto shapes = acs::PreprocessedShapes(chw, *spec, 60000, int64_t{4} << 30);
    if (!shapes.ok()) {
      const acs::StatusCode code = shapes.status().code();
      if (code != acs::StatusCode::kInvalidArgument && code != acs::StatusCode::kResourceExhausted) std::abort();
      continue;
    }
    if (shapes->size() != spec->steps.size()) std::abort();
    for (const std::vector<int64_t>& shape : *shapes) {
      if (shape.size() != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1) std::abort();
    }
  }
}

void CheckResolved(const acs::DataSplit& split) {
  const acs::SplitCounts defaults;
  for (int64_t total : {int64_t{0}, int64_t{1}, int64_t{300}, int64_t{60000}, int64_t{1} << 40}) {
    for (bool fine_tune : {false, true}) {
      const acs::StatusOr<acs::SplitCounts> c = acs::ResolveSplit(split, defaults, total, fine_tune);
      if (!c.ok()) continue;
      if (c->calibration < 0 || c->validation < 1 || c->fine_tune < (fine_tune ? 1 : 0)) std::abort();
      if (!fine_tune && c->fine_tune != 0) std::abort();
      // Each part within what the parts before it left (no sum that could overflow).
      if (c->calibration > total || c->validation > total - c->calibration ||
          c->fine_tune > total - c->calibration - c->validation) {
        std::abort();
      }
    }
  }
}

void CheckSplit(const nlohmann::json& j) {
  const acs::StatusOr<acs::DataSplit> split = acs::DataSplit::FromJson(j);
  if (!split.ok()) return;
  const acs::StatusOr<acs::DataSplit> again = acs::DataSplit::FromJson(split->ToJson());
  if (!again.ok() || again->ToJson() != split->ToJson()) std::abort();
  CheckResolved(*split);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    CheckPreprocess(j);
    CheckSplit(j);
  }
  const acs::StatusOr<acs::DataSplit> split = acs::DataSplit::Parse(text);
  if (split.ok()) CheckResolved(*split);
  (void)acs::SplitSize::Parse(text);
  return 0;
}
