// The files of an image folder (core/image_folder.h reads them): which entries count,
// and in which order. Torch-free, for clients that pack a folder.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"

namespace acs {

// A name starting with '.': skipped, with everything under it.
bool HiddenEntry(const std::filesystem::path& p);
// .jpg, .jpeg or .png, any case.
bool IsImageFileName(const std::filesystem::path& p);

// The image files in dir (and under it when recursive), not following links, hidden entries
// skipped, sorted by their folder, then name (as torchvision's sorted(os.walk(...)) with
// sorted names). ResourceExhausted past 10 million files.
StatusOr<std::vector<std::filesystem::path>> ImageFilesUnder(const std::filesystem::path& dir, bool recursive);

// A directory holding image files directly or in its subdirectories, and no IDX files.
bool IsImageFolder(const std::string& path);

// Every image file under root that the folder reader may take, relative to root with '/'
// separators: what an archive of the folder holds.
StatusOr<std::vector<std::string>> ImageFolderFiles(const std::string& root);

}  // namespace acs
