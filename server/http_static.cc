#include "server/http_static.h"

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

namespace acs::server {
namespace fs = std::filesystem;
namespace {

bool IsUnder(const fs::path& file, const fs::path& root) {
  auto r = root.begin(), f = file.begin();
  for (; r != root.end(); ++r, ++f) {
    if (f == file.end() || *f != *r) return false;
  }
  return f != file.end();
}

// Each segment of `relative` ("a/b.js") is a plain name: not empty, ".", "..", and without
// a backslash or NUL.
bool PlainSegments(const std::string& relative) {
  if (relative.find('\\') != std::string::npos || relative.find('\0') != std::string::npos) return false;
  std::stringstream segments(relative);
  std::string segment;
  size_t count = 0;
  while (std::getline(segments, segment, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return false;
    ++count;
  }
  return count > 0 && relative.back() != '/';
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

// The pages load only this server's files and talk only to it (styles inline: the charts'
// and the views' own; images from data: and blob: URLs: exports).
constexpr const char* kPagePolicy =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'";

}  // namespace

std::string ContentTypeOf(const std::string& name) {
  static const std::map<std::string, std::string> kTypes = {{".html", "text/html; charset=utf-8"},
                                                            {".js", "text/javascript; charset=utf-8"},
                                                            {".mjs", "text/javascript; charset=utf-8"},
                                                            {".css", "text/css; charset=utf-8"},
                                                            {".json", "application/json"},
                                                            {".map", "application/json"},
                                                            {".svg", "image/svg+xml"},
                                                            {".png", "image/png"},
                                                            {".ico", "image/x-icon"},
                                                            {".txt", "text/plain; charset=utf-8"},
                                                            {".woff2", "font/woff2"}};
  const auto it = kTypes.find(fs::path(name).extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

StatusOr<std::string> ResolveStaticPath(const std::string& root, const std::string& path) {
  const Status missing = Status::NotFound("no file '" + path + "'");
  if (path.empty() || path.front() != '/') return missing;
  const std::string relative = path == "/" ? "index.html" : path.substr(1);
  if (relative.rfind("api/", 0) == 0 || !PlainSegments(relative)) return missing;
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec) return missing;
  const fs::path file = fs::canonical(canonical_root / relative, ec);  // symlinks resolved
  if (ec || !IsUnder(file, canonical_root) || !fs::is_regular_file(file, ec)) return missing;
  return file.string();
}

Status ServeStaticFiles(httplib::Server* server, const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return Status::InvalidArgument("--web-root '" + root + "' is not a directory");
  auto serve = [root](const httplib::Request& req, httplib::Response& res) {
    StatusOr<std::string> file = ResolveStaticPath(root, req.path);
    StatusOr<std::string> data = file.ok() ? ReadFile(*file) : file.status();
    if (!data.ok()) {
      res.status = 404;  // the error handler answers it
      return;
    }
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Content-Type-Options", "nosniff");
    if (ContentTypeOf(*file).rfind("text/html", 0) == 0) res.set_header("Content-Security-Policy", kPagePolicy);
    res.set_content(*data, ContentTypeOf(*file));
  };
  server->Get("/", serve);
  server->Get("/(.+)", serve);
  return Status::Ok();
}

std::string DefaultWebRoot() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const fs::path dir = exe.parent_path();
  for (const fs::path& candidate : {dir.parent_path() / "web" / "dist", dir / "web"}) {
    if (fs::is_regular_file(candidate / "index.html", ec)) return candidate.lexically_normal().string();
  }
  return "";
}

}  // namespace acs::server
