// Fuzz target: the dataset readers (IDX, gzipped IDX, CIFAR-10 binary, torch.save'd
// tensors), which detect the format from a file's content. A read that succeeds must give
// images of four dimensions and, when labelled, one label per image.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/dataset.h"

namespace {

// The one input file of this process, removed when it exits.
struct InputFile {
  std::string path =
      (std::filesystem::temp_directory_path() / ("acs-fuzz-" + std::to_string(getpid()) + "-images-idx3-ubyte"))
          .string();
  ~InputFile() { std::remove(path.c_str()); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const InputFile input;
  const std::string& path = input.path;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  acs::DatasetOptions options;
  options.limit = 64;
  acs::StatusOr<acs::Dataset> d = acs::LoadDataset(path, options);
  if (d.ok()) {
    if (d->images.dim() != 4) std::abort();
    if (d->has_labels() && d->labels.size(0) != d->images.size(0)) std::abort();
  }
  return 0;
}
