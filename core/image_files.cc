#include "core/image_files.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace acs {
namespace {

namespace fs = std::filesystem;

// The most files a folder listing may hold.
constexpr size_t kMaxFiles = 10'000'000;

}  // namespace

bool HiddenEntry(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

bool IsImageFileName(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

StatusOr<std::vector<fs::path>> ImageFilesUnder(const fs::path& dir, bool recursive) {
  std::vector<std::pair<std::string, std::string>> found;
  std::error_code ec;
  auto visit = [&](const fs::directory_entry& e) {
    if (!e.is_symlink() && e.is_regular_file() && IsImageFileName(e.path())) {
      found.emplace_back(e.path().parent_path().string(), e.path().filename().string());
    }
  };
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (HiddenEntry(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      visit(*it);
      if (found.size() > kMaxFiles) return Status::ResourceExhausted(dir.string() + ": more than 10 million images");
    }
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (!HiddenEntry(it->path())) visit(*it);
      if (found.size() > kMaxFiles) return Status::ResourceExhausted(dir.string() + ": more than 10 million images");
    }
  }
  if (ec) return Status::NotFound(dir.string() + ": cannot list: " + ec.message());
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (const auto& [parent, name] : found) out.push_back(fs::path(parent) / name);
  return out;
}

bool IsImageFolder(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  for (const char* idx : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"}) {
    for (const std::string& name : {std::string(idx), std::string(idx) + ".gz"}) {
      if (fs::exists(fs::path(path) / name, ec)) return false;
    }
  }
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (HiddenEntry(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_symlink() && it->is_regular_file() && IsImageFileName(it->path())) return true;
  }
  return false;
}

StatusOr<std::vector<std::string>> ImageFolderFiles(const std::string& root) {
  ACS_ASSIGN_OR_RETURN(std::vector<fs::path> files, ImageFilesUnder(root, true));
  std::vector<std::string> out;
  for (const fs::path& f : files) out.push_back(fs::relative(f, root).generic_string());
  return out;
}

}  // namespace acs
