// Checks a zip archive of LibTorch's (a TorchScript model from torch.jit.save, or data from
// torch.save) before LibTorch reads it. LibTorch 1.13 trusts the archive: it allocates
// whatever size a zip entry or a pickle declares, builds tensors past the data it holds,
// and compiles code it does not check (found by fuzzing, tests/fuzz/fuzz_importer.cc).
#pragma once

#include <string>

#include "core/status.h"

namespace acs {

// OK when LibTorch can read `path` within bounds: a zip archive (not LibTorch's flatbuffer
// format) whose entries lie inside the file, stored or deflated, none declaring more than
// deflate can make of its bytes; every pickle passing CheckPickle, its storages in the
// archive; every code file passing CheckTorchScriptSource. Otherwise DataLoss saying what
// is wrong. A torch.save'd archive is the same with no code.
Status CheckTorchArchive(const std::string& path);

}  // namespace acs
