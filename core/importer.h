// TorchScript importer: loads a model, freezes and inlines it, records tensor shapes for a
// given input shape, finds conv / linear layers and derives their channel groups.
#pragma once

#include <memory>
#include <string>

#include "core/flags.h"
#include "core/graph.h"
#include "core/status.h"
#include "core/torchscript_model.h"

namespace acs {

struct ImportOptions {
  Shape input_shape;  // required, e.g. {1, 3, 32, 32}; the batch size may be any
};

std::string FormatShape(const Shape& shape);

// Errors: NotFound for a missing file; DataLoss for a file TorchScript cannot load, that
// fails CheckTorchArchive (core/torch_archive.h) or whose objects do not have the
// types their code declares; InvalidArgument when the model does not run on the input
// shape, or makes a shape or counts FLOPs or parameters past 2^53; Unimplemented for a
// model whose forward takes other than one tensor; ResourceExhausted when the thread it
// imports on (with a 256 MiB stack, for LibTorch's recursion) cannot start. An op the
// importer does not know is carried with its shape; only conv2d and linear layers with
// constant weights are offered as compressible. Running the model is not bounded here:
// callers that import untrusted models do it in a process under limits.
StatusOr<std::shared_ptr<ImportedModel>> ImportTorchScript(const std::string& path,
                                                           const ImportOptions& options);

}  // namespace acs
