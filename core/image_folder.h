// Image folders as torchvision's ImageFolder lays them out: ROOT/CLASS/**/FILE with JPEG or
// PNG files, the class index being CLASS's position among the sorted class folder names, the
// samples class by class, each class's files sorted by folder then name; or a flat folder of
// images, unlabelled (options.shuffle_seed shuffles that order). Only the samples
// options.offset / limit select are decoded, each
// prepared (TransformImages) before the next is read, so a large folder never sits in memory
// whole.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/image_files.h"
#include "core/status.h"

namespace acs {

// The folder's selected samples, prepared by options (a spec, or the fixed fit), stacked.
// Errors name the file: NotFound for a folder without images or a class folder without
// any; DataLoss for a file that does not decode; InvalidArgument for images that prepare
// to different sizes (a spec without a resize / crop to one size); ResourceExhausted past
// options.max_decoded_bytes or for an image past 2^25 pixels. Symbolic links are not
// followed, hidden entries (".name") are skipped.
StatusOr<Dataset> ReadImageFolder(const std::string& path, const DatasetOptions& options);

// One JPEG or PNG file (by content) as RGB [3, H, W], values in [0, 1]: grey images
// repeated, palettes expanded, alpha dropped (as PIL's convert("RGB") does); 16-bit PNG
// samples are converted to 8-bit sRGB by libpng. DataLoss naming the file for anything
// that does not decode.
StatusOr<torch::Tensor> DecodeImage(const std::string& path);

// A PNG of the first columns x columns images [N, C, H, W] side by side (rows of `columns`;
// the image columns x W wide, rows x H high), each scaled from its own minimum..maximum to
// 0..255 so that normalized data shows; grey for 1 channel, RGB for 3, the first channel
// otherwise. Unavailable when the file cannot be written.
Status WriteImageGrid(const torch::Tensor& images, const std::string& path, int64_t columns = 4);

}  // namespace acs
