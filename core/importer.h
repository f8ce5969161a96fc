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

// Errors: NotFound for a missing file; DataLoss for a file TorchScript cannot load;
// InvalidArgument when the model does not run on the input shape; Unimplemented for a
// model whose forward takes other than one tensor. An op the importer does not know is
// carried with its shape; only conv2d and linear layers with constant weights are
// offered as compressible.
StatusOr<std::shared_ptr<ImportedModel>> ImportTorchScript(const std::string& path,
                                                           const ImportOptions& options);

}  // namespace acs
