// Dataset readers: IDX (MNIST family, gzipped or not), CIFAR-10 binary, and a tensor file
// of (images, labels) saved from Python with torch.save. Transforms: a preprocessing spec
// (core/preprocess.h), or the fixed pad / resize / channel repeat / normalize that lets a
// 28x28 grey image feed a 3x32x32 model.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "core/preprocess.h"
#include "core/status.h"

namespace acs {

struct Dataset {
  torch::Tensor images;  // float32 [N, C, H, W], transforms applied
  torch::Tensor labels;  // int64 [N]; undefined when the data has no labels
  std::string source;    // what was read, for messages and reports
  int64_t total = 0;     // samples the data holds, before offset / limit

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  bool has_labels() const { return labels.defined(); }
};

struct DatasetOptions {
  int64_t limit = 0;              // read at most this many samples; 0 = all
  int64_t offset = 0;             // skip this many samples first
  std::string split = "test";     // for a directory of IDX files: "train" or "test"
  std::vector<int64_t> resize;    // {H, W} bilinear resize after padding; empty = keep
  int64_t pad = 0;                // zero padding on every side, before resize
  int64_t channels = 0;           // repeat a 1-channel image to this many; 0 = keep
  std::vector<double> mean;       // per-channel (or one value) normalization; empty = none
  std::vector<double> std;        // same length as mean
  // When not empty, the transforms, in its order, instead of pad / resize / channels /
  // mean / std (which must then be unset).
  PreprocessSpec preprocess;
  std::vector<int64_t> input_chw;  // [C, H, W] the spec must make (FitToInput); empty = any
  // > 0 takes the samples in an order shuffled by this seed before offset / limit (so that
  // a window of an image folder, listed class by class, holds every class); 0 = the data's
  // order. Files other than image folders are then read whole before the window is taken.
  uint64_t shuffle_seed = 0;
  // The most the selected images may take as float32 (N*C*H*W*4 bytes), checked from the
  // file's header or shape before the pixels are read or converted, and for the tensors
  // the transforms make before they are made; 0 = no limit. Peak memory is higher: an IDX
  // or CIFAR read holds the raw bytes too (a quarter more), a torch.save'd file is read
  // whole. 4 GiB is about 1.4 million 1x28x28 or 350,000 3x32x32 images.
  int64_t max_decoded_bytes = int64_t{4} << 30;
};

// Reads `path`, detecting the format from the content:
// - an IDX images file (.gz or not); its labels file is found beside it by replacing
//   "images-idx3" with "labels-idx1" in the name (missing = unlabelled);
// - a directory holding IDX files (e.g. /usr/share/datasets/fashion-mnist): options.split
//   selects "train-*" or "t10k-*";
// - a CIFAR-10 binary batch (records of 1 label byte + 3x32x32 bytes);
// - a torch.save'd file holding a tensor of images or a tuple/list (images, labels).
// Pixel bytes are scaled to [0, 1]. A malformed or truncated file gives an error that names
// the file and what is wrong; images past options.max_decoded_bytes give ResourceExhausted
// naming the file, the size and the limit, before they are allocated.
StatusOr<Dataset> LoadDataset(const std::string& path, const DatasetOptions& options = {});

// Applies options.preprocess, or else pad, resize, channel repeat and normalization in that
// order, to images [N,C,H,W]. ResourceExhausted when a tensor it would make passes
// options.max_decoded_bytes; InvalidArgument for options that do not fit the images, both
// kinds of transform at once, or a spec that does not make options.input_chw.
StatusOr<torch::Tensor> TransformImages(const torch::Tensor& images, const DatasetOptions& options);

// The spec's transforms (core/preprocess.h) of images [N, C, H, W] read as values in
// [0, 1]. Errors as PreprocessedShapes, before any tensor is made.
StatusOr<torch::Tensor> ApplyPreprocess(const torch::Tensor& images, const PreprocessSpec& spec,
                                        int64_t max_bytes = 0);

// Options that make a dataset fit a model input shape {1, C, H, W}: channel repeat and
// resize when they differ. Normalization is left to the caller. With a preprocessing spec
// in `base`, the spec must make that shape itself: only input_chw is set. A shape of another
// rank leaves `base` unchanged.
DatasetOptions FitToInput(const std::vector<int64_t>& input_shape, DatasetOptions base = {});

}  // namespace acs
