// libacs_ops: the acs_rt TorchScript classes and ops that a compressed.acs.pt file calls.
// A C++ program that includes this header and links acs_ops::acs_ops (find_package(acs_ops))
// runs such a file with torch::jit::load; Python loads the library with
// torch.ops.load_library. Not for a process that links acs_runtime, which registers acs_rt
// itself (a second registration aborts the process).
#pragma once

#include <cstdint>

// The format version of the saved acs_rt classes this library reads; a file of another
// version fails to load with an error naming the class and both versions.
extern "C" __attribute__((visibility("default"))) int64_t acs_ops_format_version();

namespace acs_ops {

inline int64_t FormatVersion() { return acs_ops_format_version(); }

namespace detail {
// Every program that includes this header references the library, so a linker that drops
// unreferenced libraries (--as-needed) keeps it, and its classes register at start-up.
[[maybe_unused]] inline const int64_t kLinked = acs_ops_format_version();
}  // namespace detail

}  // namespace acs_ops
