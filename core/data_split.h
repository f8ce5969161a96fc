// How a search divides its data (docs/data.md): the first samples calibrate, the next
// validate, the next fine-tune; disjoint windows of the samples in the data's order, or in
// an order shuffled by a seed. Each part is a count or a fraction of the samples the data
// holds. Torch-free: clients check a split without LibTorch.
//
//   {"calibration": {"samples": 256}, "validation": {"fraction": 0.1}, "shuffle_seed": 7}
//   calibration=256,validation=10%,shuffle_seed=7          (the command line's form)
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace acs {

// One part: a count, a fraction, or neither (the caller's default).
struct SplitSize {
  int64_t samples = 0;  // > 0: this many samples
  double fraction = 0;  // in (0, 1]: this share of the data's samples, rounded down (>= 1)
  bool is_set() const { return samples > 0 || fraction > 0; }
  // "256", "10%" or "0.1"; InvalidArgument otherwise.
  static StatusOr<SplitSize> Parse(const std::string& text);
  std::string ToString() const;  // "256", "10%", "" when unset
};

struct DataSplit {
  SplitSize calibration, validation, fine_tune;  // unset: the caller's defaults
  uint64_t shuffle_seed = 0;                     // > 0: the samples shuffled by it; 0: the caller's default
  bool empty() const {
    return !calibration.is_set() && !validation.is_set() && !fine_tune.is_set() && shuffle_seed == 0;
  }
  // InvalidArgument naming the part: a negative count, a fraction outside (0, 1], both
  // forms in one part, fractions that add up to more than 1.
  Status Validate() const;
  nlohmann::json ToJson() const;  // as in the file comment; unset parts left out
  // The JSON form, validated; InvalidArgument naming an unknown or malformed key.
  static StatusOr<DataSplit> FromJson(const nlohmann::json& j);
  // "calibration=256,validation=10%,fine_tune=0.5,shuffle_seed=7" (any subset), validated.
  static StatusOr<DataSplit> Parse(const std::string& text);
  std::string ToString() const;  // Parse's form, unset parts left out
};

// The samples each part takes, in order.
struct SplitCounts {
  int64_t calibration = 256;
  int64_t validation = 500;
  int64_t fine_tune = 5000;  // 0 without fine-tuning
  std::string ToString() const;  // "calibration 256, validation 500, fine-tuning 5000"
};

// The counts of `split` on data of `total` samples, `defaults` for its unset parts (and no
// fine-tuning samples unless `fine_tune`). Parts the split names must fit the data:
// InvalidArgument naming the counts and the total otherwise. Default parts shrink to what
// is left: validation to at least 1 sample, fine-tuning to at least 1 when it runs.
StatusOr<SplitCounts> ResolveSplit(const DataSplit& split, const SplitCounts& defaults, int64_t total, bool fine_tune);

}  // namespace acs
