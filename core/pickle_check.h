// Checks a pickle from a TorchScript archive before LibTorch 1.13's unpickler reads it. That
// unpickler trusts its input: it grows its memo to any id, allocates any string length, pops
// from an empty stack, and builds tensors whose storage sizes, offsets, sizes and strides
// reach past the data the archive holds (found by fuzzing, tests/fuzz/fuzz_importer.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace acs {

// The size of the record that holds the tensor storage `key` of the pickle being checked
// (e.g. "0" for ARCHIVE/data/0), or nullopt when there is none.
using StorageRecordSize = std::function<std::optional<uint64_t>(const std::string& key)>;

// OK when `pickle` keeps to what LibTorch's unpickler reads safely: protocol 2; only the
// opcodes it knows; every argument inside the pickle; every pop, mark and memo reference
// valid; containers changed only before they are placed in another value and nested at
// most 1000 deep; each storage key once, its size within its record; every tensor view
// inside its storage. Otherwise DataLoss "NAME: WHY at byte N".
Status CheckPickle(std::string_view pickle, const std::string& name, const StorageRecordSize& record_size);

}  // namespace acs
