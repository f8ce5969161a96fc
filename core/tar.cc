#include "core/tar.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

namespace acs {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBlock = 512;

// Header fields: offset and length.
struct Field {
  size_t at, len;
};
constexpr Field kName{0, 100}, kMode{100, 8}, kSize{124, 12}, kMtime{136, 12}, kChecksum{148, 8}, kType{156, 1},
    kMagic{257, 6}, kVersion{263, 2}, kPrefix{345, 155};

std::string Text(const char* h, Field f) {
  const char* end = static_cast<const char*>(std::memchr(h + f.at, '\0', f.len));
  return std::string(h + f.at, end ? end : h + f.at + f.len);
}

// An octal field (spaces and NULs around it), or base-256 when its first byte has the
// high bit set; -1 when malformed.
int64_t Number(const char* h, Field f) {
  const auto* u = reinterpret_cast<const unsigned char*>(h + f.at);
  if (u[0] & 0x80) {
    if (u[0] != 0x80) return -1;  // negative or too large
    int64_t v = 0;
    for (size_t i = 1; i < f.len; ++i) {
      if (v > (int64_t{1} << 54)) return -1;
      v = (v << 8) | u[i];
    }
    return v;
  }
  int64_t v = 0;
  bool digits = false;
  for (size_t i = 0; i < f.len; ++i) {
    const char c = h[f.at + i];
    if (c >= '0' && c <= '7') {
      if (v > (int64_t{1} << 54)) return -1;
      v = v * 8 + (c - '0');
      digits = true;
    } else if (c == ' ' || c == '\0') {
      if (digits) break;
    } else {
      return -1;
    }
  }
  return v;
}

bool ChecksumMatches(const char* h) {
  int64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    const bool in_field = i >= kChecksum.at && i < kChecksum.at + kChecksum.len;
    sum += in_field ? ' ' : static_cast<unsigned char>(h[i]);
  }
  return Number(h, kChecksum) == sum;
}

bool AllZero(const char* h) {
  for (size_t i = 0; i < kBlock; ++i) {
    if (h[i] != 0) return false;
  }
  return true;
}

// The entry's path made safe: relative, without "." or empty components; empty when it
// must be refused (absolute, "..", nothing left).
std::string SafePath(const std::string& name) {
  if (name.empty() || name[0] == '/') return "";
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(start, end - start);
    if (part == "..") return "";
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
    start = end + 1;
  }
  return out;
}

// The "path" record of a pax extended header ("LEN key=value\n" records); empty if none.
std::string PaxPath(const std::string& data) {
  size_t at = 0;
  std::string path;
  while (at < data.size()) {
    const size_t space = data.find(' ', at);
    if (space == std::string::npos) break;
    const long long len = std::atoll(data.substr(at, space - at).c_str());
    if (len <= 0 || at + static_cast<size_t>(len) > data.size()) break;
    const std::string record = data.substr(space + 1, at + static_cast<size_t>(len) - space - 2);
    if (record.rfind("path=", 0) == 0) path = record.substr(5);
    at += static_cast<size_t>(len);
  }
  return path;
}

class Extraction {
 public:
  Extraction(const std::string& archive, const std::string& dest, const TarLimits& limits)
      : archive_(archive), dest_(dest), limits_(limits) {}

  Status Run() {
    in_.open(archive_, std::ios::binary);
    if (!in_) return Status::NotFound(archive_ + ": cannot open");
    std::error_code ec;
    if (!fs::create_directory(dest_, ec) || ec) {
      return Status::FailedPrecondition(dest_ + ": cannot create (or it exists): " + ec.message());
    }
    std::vector<char> header(kBlock);
    std::string long_name;  // from a GNU 'L' entry or a pax 'x' header, for the next entry
    int64_t entries = 0;
    while (true) {
      if (!Read(header.data(), kBlock)) return Refuse("the archive ends without its end-of-archive blocks");
      const char* h = header.data();
      if (AllZero(h)) return Status::Ok();
      if (!ChecksumMatches(h)) return Refuse("header " + std::to_string(entries + 1) + " has a wrong checksum");
      const std::string magic = Text(h, kMagic);
      if (magic.rfind("ustar", 0) != 0) {
        return Refuse("header " + std::to_string(entries + 1) + " is not a ustar header");
      }
      const int64_t size = Number(h, kSize);
      if (size < 0) return Refuse("header " + std::to_string(entries + 1) + " has a malformed size");
      std::string name = Text(h, kName);
      const std::string prefix = Text(h, kPrefix);
      if (std::string(h + kMagic.at, 6) == std::string("ustar\0", 6) && !prefix.empty()) name = prefix + "/" + name;
      if (!long_name.empty()) name = long_name;
      const char type = h[kType.at];
      if (type == 'L' || type == 'x' || type == 'g') {  // metadata of the next entry, or global
        if (size > limits_.max_name_bytes * 4) {
          return Refuse("a long-name or pax header of " + std::to_string(size) + " bytes");
        }
        std::string data(static_cast<size_t>(size), '\0');
        if (!ReadPadded(data.data(), size)) return Refuse("the archive is cut short in a pax or long-name header");
        if (type == 'L') long_name = Text(data.data(), {0, data.size()});
        if (type == 'x') long_name = PaxPath(data);
        continue;
      }
      long_name.clear();
      if (++entries > limits_.max_entries) {
        return Status::ResourceExhausted(archive_ + ": more than " + std::to_string(limits_.max_entries) + " entries");
      }
      if (static_cast<int64_t>(name.size()) > limits_.max_name_bytes) return Refuse("an entry's path is too long");
      if (name.find('\0') != std::string::npos) {  // a pax path; the file system would cut it there
        return Refuse("entry '" + name.substr(0, name.find('\0')) + "' has a NUL byte in its path");
      }
      const std::string path = SafePath(name);
      if (path.empty() && type == '5' && !name.empty() && name[0] != '/' && name.find("..") == std::string::npos) {
        if (!Skip(size)) return Refuse("the archive is cut short in entry '" + name + "'");
        continue;  // the archive's root ("./", as `tar -C DIR -cf x.tar .` writes it first)
      }
      if (path.empty()) return Refuse("entry '" + name + "' points outside the archive (absolute or '..')");
      if (!seen_.insert(path).second) return Refuse("entry '" + name + "' repeats a path");
      if (type == '5') {
        fs::create_directories(fs::path(dest_) / path, ec);
        if (ec) return Refuse("entry '" + name + "': " + ec.message());
        if (!Skip(size)) return Refuse("the archive is cut short in entry '" + name + "'");
        continue;
      }
      if (type != '0' && type != '\0' && type != '7') {
        return Refuse("entry '" + name + "' is a link, device or FIFO (type '" + std::string(1, type) +
                      "'); only files and directories are taken");
      }
      total_ += size;
      if (total_ > limits_.max_bytes) {
        return Status::ResourceExhausted(archive_ + ": its files hold more than " + std::to_string(limits_.max_bytes) +
                                         " bytes");
      }
      ACS_RETURN_IF_ERROR(WriteFile(name, fs::path(dest_) / path, size));
    }
  }

  // Removes what was extracted after an error.
  void Clean() {
    std::error_code ec;
    fs::remove_all(dest_, ec);
  }

 private:
  Status Refuse(const std::string& why) { return Status::InvalidArgument(archive_ + ": " + why); }

  bool Read(char* out, int64_t n) {
    in_.read(out, n);
    return in_.gcount() == n;
  }
  // n bytes, then the padding to the next block.
  bool ReadPadded(char* out, int64_t n) { return Read(out, n) && Skip(0, n); }
  bool Skip(int64_t n, int64_t already = 0) {
    const int64_t padded = (n + already + static_cast<int64_t>(kBlock) - 1) / kBlock * kBlock - already;
    in_.seekg(padded, std::ios::cur);
    return static_cast<bool>(in_) && in_.tellg() <= file_size();
  }
  int64_t file_size() {
    if (size_ < 0) size_ = static_cast<int64_t>(fs::file_size(archive_));
    return size_;
  }

  Status WriteFile(const std::string& name, const fs::path& path, int64_t size) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return Refuse("entry '" + name + "': " + ec.message());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Unavailable(path.string() + ": cannot write");
    std::vector<char> buffer(1 << 16);
    for (int64_t left = size; left > 0;) {
      const int64_t n = std::min<int64_t>(left, static_cast<int64_t>(buffer.size()));
      if (!Read(buffer.data(), n)) return Refuse("the archive is cut short in entry '" + name + "'");
      out.write(buffer.data(), n);
      left -= n;
    }
    if (!out) return Status::Unavailable(path.string() + ": cannot write");
    if (!Skip(0, size)) return Refuse("the archive is cut short after entry '" + name + "'");
    return Status::Ok();
  }

  std::string archive_, dest_;
  TarLimits limits_;
  std::ifstream in_;
  std::set<std::string> seen_;
  int64_t total_ = 0;
  int64_t size_ = -1;
};

}  // namespace

bool IsTarFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> header(kBlock);
  in.read(header.data(), kBlock);
  if (in.gcount() != static_cast<std::streamsize>(kBlock)) return false;
  return Text(header.data(), kMagic).rfind("ustar", 0) == 0 && ChecksumMatches(header.data());
}

Status WriteTar(const std::vector<std::pair<std::string, std::string>>& files, const std::string& archive) {
  std::ofstream out(archive, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Unavailable(archive + ": cannot write");
  // A field of len - 1 octal digits and a NUL.
  auto octal = [](char* h, Field f, int64_t v) {
    for (size_t i = f.len - 1; i-- > 0; v >>= 3) h[f.at + i] = static_cast<char>('0' + (v & 7));
    h[f.at + f.len - 1] = '\0';
  };
  std::vector<char> buffer(1 << 16);
  for (const auto& [name, file] : files) {
    if (SafePath(name) != name) return Status::InvalidArgument("'" + name + "' is not a plain relative path");
    std::vector<char> h(kBlock, '\0');
    // A path past 100 bytes splits at a '/' into prefix (up to 155) and name (up to 100).
    size_t split = 0;
    if (name.size() > kName.len) {
      split = name.rfind('/', kPrefix.len);
      if (split == std::string::npos || name.size() - split - 1 > kName.len || split == 0) {
        return Status::InvalidArgument("'" + name + "' is too long for a ustar archive");
      }
      std::memcpy(h.data() + kPrefix.at, name.data(), split);
      std::memcpy(h.data() + kName.at, name.data() + split + 1, name.size() - split - 1);
    } else {
      std::memcpy(h.data() + kName.at, name.data(), name.size());
    }
    std::error_code ec;
    const auto size = static_cast<int64_t>(fs::file_size(file, ec));
    std::ifstream in(file, std::ios::binary);
    if (ec || !in) return Status::NotFound(file + ": cannot read");
    if (size >= (int64_t{1} << 33)) return Status::InvalidArgument(file + ": 8 GiB or more, past a ustar entry");
    octal(h.data(), kMode, 0644);
    octal(h.data(), {108, 8}, 0);  // uid
    octal(h.data(), {116, 8}, 0);  // gid
    octal(h.data(), kSize, size);
    octal(h.data(), kMtime, 0);
    h[kType.at] = '0';
    std::memcpy(h.data() + kMagic.at, "ustar", 6);
    std::memcpy(h.data() + kVersion.at, "00", 2);
    std::memset(h.data() + kChecksum.at, ' ', kChecksum.len);
    int64_t sum = 0;
    for (char c : h) sum += static_cast<unsigned char>(c);
    octal(h.data(), {kChecksum.at, 7}, sum);  // six digits, NUL, and the space left in place
    out.write(h.data(), kBlock);
    for (int64_t left = size; left > 0;) {
      in.read(buffer.data(), std::min<int64_t>(left, static_cast<int64_t>(buffer.size())));
      if (in.gcount() <= 0) return Status::NotFound(file + ": changed while it was archived");
      out.write(buffer.data(), in.gcount());
      left -= in.gcount();
    }
    const std::vector<char> padding((kBlock - static_cast<size_t>(size) % kBlock) % kBlock, '\0');
    out.write(padding.data(), static_cast<std::streamsize>(padding.size()));
  }
  const std::vector<char> end(2 * kBlock, '\0');
  out.write(end.data(), static_cast<std::streamsize>(end.size()));
  if (!out) return Status::Unavailable(archive + ": cannot write");
  return Status::Ok();
}

Status ExtractTar(const std::string& archive, const std::string& dest, const TarLimits& limits) {
  Extraction extraction(archive, dest, limits);
  Status s = Status::Internal("not run");
  try {
    s = extraction.Run();
  } catch (const std::exception& e) {
    s = Status::Unavailable(archive + ": extracting failed: " + e.what());
  }
  if (!s.ok()) extraction.Clean();
  return s;
}

}  // namespace acs
