// Checks the TorchScript code of a model archive before LibTorch 1.13 compiles it. Its
// parser and compiler recurse once per level of nesting, and its class importer reads
// annotations and values that a class body may lack (found by fuzzing,
// tests/fuzz/fuzz_importer.cc).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace acs {

// OK when `code` nests at most 256 brackets, 100 blocks and 1000 operators deep (a chain
// of operators, attributes, calls or subscripts counts each; items separated by ',' or ':'
// are siblings), and its class bodies hold what LibTorch's importer expects: a value for
// every Enum member, a type for every NamedTuple field, a type for every other class
// constant (`NAME : Final[T] = V`; only __parameters__, __buffers__, __annotations__ and
// the hook lists go without). Otherwise DataLoss "NAME: WHY".
Status CheckTorchScriptSource(std::string_view code, const std::string& name);

}  // namespace acs
