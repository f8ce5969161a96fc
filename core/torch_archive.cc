#include "core/torch_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "core/pickle_check.h"
#include "core/source_check.h"

namespace acs {
namespace {

constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate makes at most 1032 bytes of one
constexpr uint64_t kEndRecord = 22, kZip64Locator = 20, kZip64EndRecord = 56, kEntryHeader = 46, kLocalHeader = 30;
constexpr uint64_t kMaxComment = 65535;
constexpr uint32_t kMarker32 = 0xffffffffu;

uint64_t Le(std::string_view b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(b[at + i])} << (8 * i);
  return v;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Byte ranges of one file.
class File {
 public:
  explicit File(const std::string& path) : in_(path, std::ios::binary | std::ios::ate) {
    if (in_) size_ = static_cast<uint64_t>(in_.tellg());
  }
  bool ok() const { return static_cast<bool>(in_); }
  uint64_t size() const { return size_; }
  // Bytes [offset, offset + n); false when they are not all in the file.
  bool Read(uint64_t offset, uint64_t n, std::string* out) {
    if (offset > size_ || n > size_ - offset) return false;
    out->resize(n);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(out->data(), static_cast<std::streamsize>(n));
    return static_cast<uint64_t>(in_.gcount()) == n;
  }

 private:
  std::ifstream in_;
  uint64_t size_ = 0;
};

struct Entry {
  std::string name;
  uint64_t method = 0;
  uint64_t compressed = 0;
  uint64_t size = 0;
  uint64_t data = 0;  // where its bytes start
};

// The central directory as LibTorch's zip reader (miniz) finds it: the last end record,
// the zip64 one when a locator before it points to one.
struct Directory {
  uint64_t entries = 0, offset = 0, size = 0, end = 0;
};

StatusOr<Directory> FindDirectory(File& f) {
  const Status bad = Status::DataLoss("not a sound zip archive: no end of central directory record");
  const uint64_t tail = std::min(f.size(), kEndRecord + kMaxComment + kZip64Locator + kZip64EndRecord);
  std::string b;
  if (tail < kEndRecord || !f.Read(f.size() - tail, tail, &b)) return bad;
  size_t at = b.size() - kEndRecord + 1;
  do {
    --at;
  } while (at > 0 && Le(b, at, 4) != 0x06054b50);
  if (Le(b, at, 4) != 0x06054b50) return bad;
  Directory d;
  d.end = f.size() - tail + at;
  if (at + kEndRecord + Le(b, at + 20, 2) > b.size()) return Status::DataLoss("zip comment past the end of the file");
  uint64_t disk = Le(b, at + 4, 2), cd_disk = Le(b, at + 6, 2), on_disk = Le(b, at + 8, 2);
  d.entries = Le(b, at + 10, 2);
  d.size = Le(b, at + 12, 4);
  d.offset = Le(b, at + 16, 4);
  if (d.end >= kZip64Locator + kZip64EndRecord) {
    std::string locator, record;
    if (!f.Read(d.end - kZip64Locator, kZip64Locator, &locator)) return bad;
    if (Le(locator, 0, 4) == 0x07064b50) {
      const uint64_t where = Le(locator, 8, 8);
      if (!f.Read(where, kZip64EndRecord, &record) || where + kZip64EndRecord > d.end - kZip64Locator) {
        return Status::DataLoss("zip64 end record outside the file");
      }
      if (Le(record, 0, 4) == 0x06064b50) {
        disk = Le(record, 16, 4);
        cd_disk = Le(record, 20, 4);
        on_disk = Le(record, 24, 8);
        d.entries = Le(record, 32, 8);
        d.size = Le(record, 40, 8);
        d.offset = Le(record, 48, 8);
        d.end = where;
      }
    }
  }
  if (disk != 0 || cd_disk != 0 || on_disk != d.entries) {
    return Status::DataLoss("multi-disk zip archives are not read");
  }
  if (d.offset > d.end || d.size > d.end - d.offset || d.entries > d.size / kEntryHeader) {
    return Status::DataLoss("zip central directory outside the file");
  }
  return d;
}

// Sizes and offset of an entry whose 32-bit fields hold the zip64 marker, from its zip64
// extra field; false when a marked value is missing.
bool ApplyZip64(std::string_view extra, uint64_t* size, uint64_t* compressed, uint64_t* offset) {
  for (size_t at = 0; at + 4 <= extra.size();) {
    const uint64_t id = Le(extra, at, 2), length = Le(extra, at + 2, 2);
    if (at + 4 + length > extra.size()) return false;
    if (id == 1) {
      size_t field = at + 4;
      for (uint64_t* v : {size, compressed, offset}) {
        if (*v != kMarker32) continue;
        if (field + 8 > at + 4 + length) return false;
        *v = Le(extra, field, 8);
        field += 8;
      }
      return true;
    }
    at += 4 + length;
  }
  return *size != kMarker32 && *compressed != kMarker32 && *offset != kMarker32;
}

StatusOr<std::vector<Entry>> ReadEntries(File& f) {
  ACS_ASSIGN_OR_RETURN(Directory d, FindDirectory(f));
  std::string cd, local;
  if (!f.Read(d.offset, d.size, &cd)) return Status::DataLoss("cannot read the zip central directory");
  std::vector<Entry> entries;
  size_t at = 0;
  while (entries.size() < d.entries) {
    if (at + kEntryHeader > cd.size() || Le(cd, at, 4) != 0x02014b50) {
      return Status::DataLoss("zip central directory entry " + std::to_string(entries.size()) + " is damaged");
    }
    const uint64_t name_length = Le(cd, at + 28, 2), extra_length = Le(cd, at + 30, 2);
    const uint64_t next = at + kEntryHeader + name_length + extra_length + Le(cd, at + 32, 2);
    if (next > cd.size()) return Status::DataLoss("zip central directory entry past its end");
    Entry e;
    e.name = cd.substr(at + kEntryHeader, name_length);
    e.method = Le(cd, at + 10, 2);
    e.compressed = Le(cd, at + 20, 4);
    e.size = Le(cd, at + 24, 4);
    uint64_t header = Le(cd, at + 42, 4);
    if (!ApplyZip64(std::string_view(cd).substr(at + kEntryHeader + name_length, extra_length), &e.size, &e.compressed,
                    &header)) {
      return Status::DataLoss("zip entry '" + e.name + "' lacks its zip64 sizes");
    }
    if (!f.Read(header, kLocalHeader, &local) || Le(local, 0, 4) != 0x04034b50) {
      return Status::DataLoss("zip entry '" + e.name + "' has no local header");
    }
    e.data = header + kLocalHeader + Le(local, 26, 2) + Le(local, 28, 2);
    if (e.data > f.size() || e.compressed > f.size() - e.data) {
      return Status::DataLoss("zip entry '" + e.name + "' runs past the end of the file");
    }
    const bool stored = e.method == 0 && e.size == e.compressed;
    const bool deflated = e.method == 8 && e.size <= kMaxDeflateRatio * std::max<uint64_t>(e.compressed, 1);
    if (!stored && !deflated) {
      return Status::DataLoss("zip entry '" + e.name + "' declares " + std::to_string(e.size) + " bytes from " +
                              std::to_string(e.compressed) + " (method " + std::to_string(e.method) + ")");
    }
    entries.push_back(std::move(e));
    at = next;
  }
  return entries;
}

StatusOr<std::string> ReadEntry(File& f, const Entry& e) {
  std::string raw;
  if (!f.Read(e.data, e.compressed, &raw)) return Status::DataLoss("cannot read zip entry '" + e.name + "'");
  if (e.method == 0) return raw;
  if (raw.size() > UINT32_MAX || e.size > UINT32_MAX) {
    return Status::DataLoss("zip entry '" + e.name + "' is too large to check");
  }
  std::string out(e.size, '\0');
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return Status::Internal("zlib: inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const uint64_t made = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || made != e.size) {
    return Status::DataLoss("zip entry '" + e.name + "' does not inflate to its declared " + std::to_string(e.size) +
                            " bytes");
  }
  return out;
}

}  // namespace

Status CheckTorchArchive(const std::string& path) {
  File f(path);
  std::string head;
  if (!f.ok() || !f.Read(0, 8, &head) || head.compare(0, 4, "PK\x03\x04") != 0) {
    return Status::DataLoss("not a zip archive (torch.save and torch.jit.save write one)");
  }
  if (head.compare(4, 4, "PTMF") == 0) return Status::DataLoss("LibTorch's flatbuffer format is not read");
  ACS_ASSIGN_OR_RETURN(std::vector<Entry> entries, ReadEntries(f));
  if (entries.empty()) return Status::DataLoss("an empty zip archive");
  // LibTorch finds entries by name ignoring case; a storage must fit every entry of its name.
  std::map<std::string, uint64_t> sizes;
  for (const Entry& e : entries) {
    auto [it, inserted] = sizes.emplace(Lower(e.name), e.size);
    if (!inserted) it->second = std::min(it->second, e.size);
  }
  for (const Entry& e : entries) {
    const std::string name = Lower(e.name);
    const bool pickle = EndsWith(name, "pkl"), code = EndsWith(name, ".py");
    if (!pickle && !code) continue;
    ACS_ASSIGN_OR_RETURN(std::string bytes, ReadEntry(f, e));
    if (code) {
      ACS_RETURN_IF_ERROR(CheckTorchScriptSource(bytes, e.name));
      continue;
    }
    // ARCHIVE/data.pkl keeps its storages in ARCHIVE/data/KEY; debug pickles have none.
    const std::string dir = EndsWith(name, ".pkl") ? name.substr(0, name.size() - 4) + "/" : "";
    const StorageRecordSize record = [&](const std::string& key) -> std::optional<uint64_t> {
      auto it = dir.empty() ? sizes.end() : sizes.find(dir + Lower(key));
      if (it == sizes.end()) return std::nullopt;
      return it->second;
    };
    ACS_RETURN_IF_ERROR(CheckPickle(bytes, e.name, record));
  }
  return Status::Ok();
}

}  // namespace acs
