#include "server/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/sha256.h"
#include "server/server_store.h"

namespace acs::server {
namespace fs = std::filesystem;

namespace {

// Flushes a file (or directory) to the disk; false when it cannot.
bool SyncPath(const std::string& path, bool directory) {
  const int fd = open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

}  // namespace

bool IsSha256(const std::string& t) {
  if (t.size() != 64) return false;
  for (char c : t) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

BlobWriter::~BlobWriter() {
  if (!done_ && !temp_path_.empty()) {
    out_.close();
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
}

Status BlobWriter::Append(const std::string& chunk) {
  if (done_) return Status::FailedPrecondition("the blob was committed already");
  if (bytes_ + static_cast<int64_t>(chunk.size()) > limit_) {
    return Status::ResourceExhausted("upload exceeds the limit of " + std::to_string(limit_) + " bytes");
  }
  out_.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  if (!out_) return Status::Unavailable("cannot write '" + temp_path_ + "' (disk full?)");
  digest_->Update(chunk);
  bytes_ += static_cast<int64_t>(chunk.size());
  return Status::Ok();
}

StatusOr<BlobWriter::Committed> BlobWriter::Commit() {
  if (done_) return Status::FailedPrecondition("the blob was committed already");
  out_.close();
  if (!out_) return Status::Unavailable("cannot write '" + temp_path_ + "'");
  // On the disk before its name: a crash leaves a whole blob or none.
  if (!SyncPath(temp_path_, false)) return Status::Unavailable("cannot flush '" + temp_path_ + "' to the disk");
  Committed c;
  c.sha256 = digest_->HexDigest();
  c.bytes = bytes_;
  const std::string final_path = store_->FinalPath(c.sha256);
  std::error_code ec;
  fs::create_directories(fs::path(final_path).parent_path(), ec);
  // A file under the name whose bytes are not these (one a job runner planted before the
  // blob arrived) is replaced, not trusted. One kept is touched: its time says when the blob
  // was last stored (what RemoveIfStoredBefore goes by); when it is gone by then (collected),
  // these bytes take its place.
  if (fs::exists(final_path, ec) && store_->Verify(c.sha256).ok() &&
      (utimensat(AT_FDCWD, final_path.c_str(), nullptr, 0) == 0 || errno != ENOENT)) {
    c.deduplicated = true;
    fs::remove(temp_path_, ec);
  } else {
    fs::rename(temp_path_, final_path, ec);
    if (ec) return Status::Unavailable("cannot store blob '" + final_path + "': " + ec.message());
    (void)SyncPath(fs::path(final_path).parent_path().string(), true);
  }
  done_ = true;
  return c;
}

StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& root) {
  std::error_code ec;
  fs::create_directories(fs::path(root) / "blobs", ec);
  fs::create_directories(fs::path(root) / "tmp", ec);
  if (ec) return Status::Unavailable("cannot create the blob directories under '" + root + "': " + ec.message());
  auto s = std::unique_ptr<BlobStore>(new BlobStore());
  s->root_ = root;
  return s;
}

StatusOr<int> BlobStore::RemoveUnfinishedWrites() const {
  std::error_code ec;
  int removed = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(root_) / "tmp", ec)) {
    if (fs::remove(e.path(), ec)) ++removed;
    if (ec) break;
  }
  if (ec) return Status::Unavailable("cannot clear '" + (fs::path(root_) / "tmp").string() + "': " + ec.message());
  return removed;
}

StatusOr<std::vector<BlobStore::StoredFile>> BlobStore::ListFiles() const {
  std::vector<StoredFile> out;
  std::error_code ec;
  const fs::directory_iterator end;
  for (fs::directory_iterator shard(blob_dir(), ec); !ec && shard != end; shard.increment(ec)) {
    const std::string prefix = shard->path().filename().string();
    if (prefix.size() != 2) continue;
    for (fs::directory_iterator e(shard->path(), ec); !ec && e != end; e.increment(ec)) {
      const std::string name = e->path().filename().string();
      struct stat st {};
      if (!IsSha256(name) || name.compare(0, 2, prefix) != 0) continue;
      if (stat(e->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      out.push_back({name, static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)});
    }
    if (ec == std::errc::not_a_directory) ec.clear();  // a file among the shards
  }
  if (ec) return Status::Unavailable("cannot list the blobs under '" + blob_dir() + "': " + ec.message());
  return out;
}

StatusOr<bool> BlobStore::RemoveIfStoredBefore(const std::string& sha256, int64_t stored_before) const {
  if (!IsSha256(sha256)) return Status::InvalidArgument("'" + sha256 + "' is not a sha256 digest");
  const std::string path = FinalPath(sha256);
  const std::string parked = (fs::path(root_) / "tmp" / ("collected-" + sha256)).string();
  // Moved aside before its time is read: a writer that touched it first shows in that
  // time; one that comes later finds no file and stores its own bytes.
  if (rename(path.c_str(), parked.c_str()) != 0) {
    if (errno == ENOENT) return false;
    return Status::Unavailable("cannot move blob " + sha256 + " aside: " + std::strerror(errno));
  }
  struct stat st {};
  const bool timed = stat(parked.c_str(), &st) == 0;
  if (!timed || st.st_mtime >= stored_before) {
    // Stored again meanwhile: back under its name (over a copy a writer just put there,
    // which holds the same bytes).
    if (rename(parked.c_str(), path.c_str()) != 0) {
      return Status::DataLoss("blob " + sha256 +
                              " was stored again while collected and could not be put back: " + std::strerror(errno));
    }
    return false;
  }
  if (unlink(parked.c_str()) != 0) {
    return Status::Unavailable("cannot remove blob " + sha256 + ": " + std::strerror(errno));
  }
  return true;
}

std::string BlobStore::FinalPath(const std::string& sha256) const {
  return (fs::path(blob_dir()) / sha256.substr(0, 2) / sha256).string();
}

std::string BlobStore::blob_dir() const { return (fs::path(root_) / "blobs").string(); }

StatusOr<std::unique_ptr<BlobWriter>> BlobStore::NewWriter(int64_t limit_bytes) const {
  static std::atomic<uint64_t> counter{0};
  ACS_ASSIGN_OR_RETURN(std::string suffix, RandomHex(8));
  std::unique_ptr<BlobWriter> w(new BlobWriter());
  w->store_ = this;
  w->limit_ = limit_bytes;
  const fs::path temp_dir = temp_dir_.empty() ? fs::path(root_) / "tmp" : fs::path(temp_dir_);
  if (!temp_dir_.empty()) {
    std::error_code ec;
    fs::create_directories(temp_dir, ec);  // a job runner's own dir, which its job may have removed
  }
  w->temp_path_ = (temp_dir / (suffix + "-" + std::to_string(counter++))).string();
  w->out_.open(w->temp_path_, std::ios::binary | std::ios::trunc);
  if (!w->out_) return Status::Unavailable("cannot create '" + w->temp_path_ + "'");
  w->digest_ = std::make_unique<Sha256>();
  return w;
}

StatusOr<BlobWriter::Committed> BlobStore::Put(const std::string& bytes) const {
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> w, NewWriter(static_cast<int64_t>(bytes.size())));
  ACS_RETURN_IF_ERROR(w->Append(bytes));
  return w->Commit();
}

StatusOr<BlobWriter::Committed> BlobStore::PutFromFd(int fd, int64_t limit_bytes) const {
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> w, NewWriter(limit_bytes));
  std::string chunk;
  while (true) {
    chunk.resize(kStreamChunkBytes);
    const ssize_t n = read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable(std::string("cannot read the file: ") + std::strerror(errno));
    if (n == 0) break;
    chunk.resize(static_cast<size_t>(n));
    ACS_RETURN_IF_ERROR(w->Append(chunk));
  }
  return w->Commit();
}

bool BlobStore::Has(const std::string& sha256) const {
  std::error_code ec;
  return IsSha256(sha256) && fs::exists(FinalPath(sha256), ec);
}

StatusOr<std::string> BlobStore::PathOf(const std::string& sha256) const {
  if (!IsSha256(sha256)) return Status::InvalidArgument("'" + sha256 + "' is not a sha256 digest");
  if (!Has(sha256)) return Status::NotFound("no blob " + sha256);
  return FinalPath(sha256);
}

StatusOr<std::string> BlobStore::Read(const std::string& sha256) const {
  ACS_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (!in) return Status::DataLoss("cannot read blob " + sha256);
  return s.str();
}

Status BlobStore::Verify(const std::string& sha256) const {
  ACS_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  const std::string actual = Sha256OfFile(path);
  if (actual.empty()) return Status::DataLoss("blob " + sha256 + " cannot be read");
  if (actual != sha256) return Status::DataLoss("blob " + sha256 + " is corrupt: its bytes hash to " + actual);
  return Status::Ok();
}

}  // namespace acs::server
