// Fuzz target: the tar reader that unpacks an uploaded image folder (ExtractTar), into a
// directory of this process's own under the temp dir, emptied after every input. An input
// must be extracted or refused as InvalidArgument, ResourceExhausted or Unavailable, with
// nothing left behind when refused; it must never write beside its destination, and what it
// extracts is only directories and regular files, no more bytes than the input holds, and
// the same again after WriteTar and ExtractTar. So that mutated headers get past their
// checksums, an input of whole 512-byte blocks has the checksum of each block that carries
// the "ustar" magic rewritten first; other inputs are taken as they are.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tar.h"

namespace {

namespace fs = std::filesystem;

constexpr size_t kBlock = 512;

// This process's directory: the archive, its extraction and their round trip, nothing else.
struct Root {
  fs::path dir = fs::temp_directory_path() / ("acs-fuzz-tar-" + std::to_string(getpid()));
  Root() { fs::create_directories(dir); }
  ~Root() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_tar: %s\n", what);
  std::abort();
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The checksum of every block with the ustar magic, as tar writes it (six octal digits, NUL,
// space), when the input is whole blocks.
void FixChecksums(std::string& bytes) {
  if (bytes.size() % kBlock != 0) return;
  for (size_t at = 0; at < bytes.size(); at += kBlock) {
    char* h = bytes.data() + at;
    if (std::memcmp(h + 257, "ustar", 5) != 0) continue;
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(h[i]);
    char field[9];
    std::snprintf(field, sizeof(field), "%06o", sum);
    std::memcpy(h + 148, field, 7);  // the six digits and their NUL; the space stays
  }
}

// Path under `dir` -> content of every regular file there; aborts on anything else.
std::map<std::string, std::string> Files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const fs::file_status s = e.symlink_status();
    if (fs::is_directory(s)) continue;
    Check(fs::is_regular_file(s), "extracted something that is neither a file nor a directory");
    files[e.path().lexically_relative(dir).string()] = ReadBytes(e.path());
  }
  return files;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Root root;
  const fs::path archive = root.dir / "in.tar", out = root.dir / "out";
  const fs::path again_archive = root.dir / "again.tar", again = root.dir / "again";
  std::string bytes(reinterpret_cast<const char*>(data), size);
  FixChecksums(bytes);
  WriteBytes(archive, bytes);
  acs::TarLimits limits;
  limits.max_entries = 256;
  limits.max_bytes = 1 << 20;
  (void)acs::IsTarFile(archive.string());
  const acs::Status s = acs::ExtractTar(archive.string(), out.string(), limits);
  if (s.ok()) {
    Check(fs::is_directory(out), "extracted without its directory");
    const std::map<std::string, std::string> files = Files(out);
    size_t total = 0;
    for (const auto& [path, content] : files) total += content.size();
    Check(total <= size, "extracted more bytes than the archive holds");
    std::vector<std::pair<std::string, std::string>> list;
    for (const auto& f : files) list.emplace_back(f.first, (out / f.first).string());
    if (acs::WriteTar(list, again_archive.string()).ok()) {
      Check(acs::ExtractTar(again_archive.string(), again.string(), limits).ok(), "its own archive is refused");
      Check(Files(again) == files, "its own archive extracts to other files");
    }
  } else {
    Check(s.code() == acs::StatusCode::kInvalidArgument || s.code() == acs::StatusCode::kResourceExhausted ||
              s.code() == acs::StatusCode::kUnavailable,
          "refused with an unexpected code");
    Check(!fs::exists(out), "left files behind after refusing the archive");
  }
  for (const auto& e : fs::directory_iterator(root.dir)) {
    const fs::path p = e.path();
    Check(p == archive || p == out || p == again_archive || p == again, "wrote beside its destination");
  }
  std::error_code ec;
  for (const fs::path& p : {out, again, again_archive}) fs::remove_all(p, ec);
  return 0;
}
