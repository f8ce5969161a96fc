// Artifacts and uploads as files named by their sha256 under the data dir
// (blobs/ab/abcdef...). Writes go to a temporary file first, flushed to the disk, and are
// renamed into place, so a blob is either whole or absent; the same bytes are stored once. Thread-safe.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "core/status.h"

namespace acs::server {

class BlobStore;

// Receives one blob in chunks (an upload stream). Commit or destroy.
class BlobWriter {
 public:
  ~BlobWriter();  // removes the temporary file unless committed
  // ResourceExhausted once the total would exceed the limit.
  Status Append(const std::string& chunk);
  struct Committed {
    std::string sha256;
    int64_t bytes = 0;
    bool deduplicated = false;  // the store had these bytes already
  };
  StatusOr<Committed> Commit();

 private:
  friend class BlobStore;
  BlobWriter() = default;
  const BlobStore* store_ = nullptr;
  std::string temp_path_;
  std::ofstream out_;
  std::unique_ptr<Sha256> digest_;
  int64_t bytes_ = 0, limit_ = 0;
  bool done_ = false;
};

class BlobStore {
 public:
  // Creates root/blobs and root/tmp. Errors: Unavailable when they cannot be made.
  static StatusOr<std::unique_ptr<BlobStore>> Open(const std::string& root);
  // A writer for one blob of at most limit_bytes.
  StatusOr<std::unique_ptr<BlobWriter>> NewWriter(int64_t limit_bytes) const;
  // Where writers put their bytes before a blob is renamed into place: root/tmp unless set
  // (a job runner child uses its own dir, created when missing; on the same file system).
  // Set before the first writer.
  void set_temp_dir(const std::string& dir) { temp_dir_ = dir; }
  // The directory the blobs are in (a confined job runner may only add to it).
  std::string blob_dir() const;
  StatusOr<BlobWriter::Committed> Put(const std::string& bytes) const;
  // The bytes of an open file, from its offset to its end, read in chunks of at most
  // kStreamChunkBytes (never held whole); ResourceExhausted past limit_bytes and
  // Unavailable when it cannot be read, both storing nothing. Does not close fd.
  StatusOr<BlobWriter::Committed> PutFromFd(int fd, int64_t limit_bytes) const;
  static constexpr size_t kStreamChunkBytes = size_t{1} << 20;
  bool Has(const std::string& sha256) const;
  // The file of a blob; NotFound when absent, InvalidArgument for a malformed digest.
  StatusOr<std::string> PathOf(const std::string& sha256) const;
  StatusOr<std::string> Read(const std::string& sha256) const;
  // DataLoss when the blob's bytes no longer hash to its name (or cannot be read).
  Status Verify(const std::string& sha256) const;
  struct StoredFile {
    std::string sha256;
    int64_t bytes = 0;
    int64_t stored_unix_seconds = 0;  // when last stored: written, or found already there by a
                                      // writer (BlobWriter::Commit touches it)
  };
  // The files of the blobs (others under the blob dir left out). Unavailable when the
  // directory cannot be read.
  StatusOr<std::vector<StoredFile>> ListFiles() const;
  // Removes the blob's file unless it was stored at or after `stored_before` (unix seconds),
  // also when a writer stores the same bytes at the same time: the writer's blob is then
  // whole afterwards, never removed. Whether it removed the file (false: kept, or none).
  // Unavailable when it cannot; DataLoss when a file stored meanwhile was moved aside and
  // cannot be put back (a later RemoveUnfinishedWrites deletes it). The file is parked in
  // root/tmp while its time is read: only in the serving process.
  StatusOr<bool> RemoveIfStoredBefore(const std::string& sha256, int64_t stored_before) const;
  // Removes the temporary files of writers that never finished (a process killed during
  // an upload or a RemoveIfStoredBefore) and returns how many. Only while no writer of any
  // process is open: the server calls it once at start, before it serves or starts job runners.
  StatusOr<int> RemoveUnfinishedWrites() const;

 private:
  friend class BlobWriter;
  std::string FinalPath(const std::string& sha256) const;
  std::string root_;
  std::string temp_dir_;  // empty: root/tmp
};

// True for 64 lower-case hex digits.
bool IsSha256(const std::string& text);

}  // namespace acs::server
