// Tar archives, for image folders uploaded as one file: safe extraction (POSIX ustar, pax
// and GNU long names) and writing a list of files as ustar. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace acs {

struct TarLimits {
  int64_t max_entries = 1'000'000;          // files and directories
  int64_t max_bytes = int64_t{8} << 30;     // the files' bytes together
  int64_t max_name_bytes = 4096;            // one entry's path
};

// True when the file starts with a tar header ("ustar" at offset 257, checksum valid).
bool IsTarFile(const std::string& path);

// Extracts regular files and directories into `dest` (created; must not exist). Refused,
// with the entry named (InvalidArgument) and nothing left behind: absolute paths, ".."
// components, links, devices and FIFOs, an entry that repeats a path, a header whose
// checksum is wrong, a path with a NUL byte (pax), a file cut short; ResourceExhausted past
// a limit. A directory entry for the archive's root ("./") is skipped. The archive's file
// modes are not kept (files 0644, directories 0755).
Status ExtractTar(const std::string& archive, const std::string& dest, const TarLimits& limits = {});

// Writes the files (path in the archive, relative with '/' separators, at most 255 bytes;
// file to read) as a ustar archive. InvalidArgument for a path that ustar cannot hold or
// that is not relative; NotFound for a file that cannot be read.
Status WriteTar(const std::vector<std::pair<std::string, std::string>>& files, const std::string& archive);

}  // namespace acs
