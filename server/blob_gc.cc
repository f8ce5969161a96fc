#include "server/blob_gc.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <vector>

namespace acs::server {

StatusOr<BlobGcResult> CollectBlobs(ServerStore& store, const BlobStore& blobs, int64_t grace_seconds,
                                    int64_t now_unix_seconds, bool scan_jobs_first) {
  const int64_t stored_before = now_unix_seconds - grace_seconds;
  ACS_ASSIGN_OR_RETURN(std::vector<BlobStore::StoredFile> files, blobs.ListFiles());
  ACS_ASSIGN_OR_RETURN(std::vector<std::string> recorded, store.RecordedBlobs());
  std::map<std::string, int64_t> bytes_on_disk;
  std::vector<std::string> candidates;
  for (const BlobStore::StoredFile& f : files) {
    bytes_on_disk[f.sha256] = f.bytes;
    if (f.stored_unix_seconds < stored_before) candidates.push_back(f.sha256);
  }
  for (const std::string& sha : recorded) {
    if (bytes_on_disk.count(sha) == 0) candidates.push_back(sha);  // rows whose file is gone
  }
  JobBlobScan scan;
  if (scan_jobs_first && !candidates.empty()) {
    ACS_ASSIGN_OR_RETURN(scan, store.ScanJobBlobs(candidates));
  }
  ACS_ASSIGN_OR_RETURN(std::vector<std::string> forgotten,
                       store.ForgetUnreferencedBlobs(candidates, stored_before, scan_jobs_first ? &scan : nullptr));
  BlobGcResult result;
  result.forgotten = static_cast<int64_t>(forgotten.size());
  for (const std::string& sha : forgotten) {
    const auto file = bytes_on_disk.find(sha);
    if (file == bytes_on_disk.end()) continue;
    ACS_ASSIGN_OR_RETURN(bool removed, blobs.RemoveIfStoredBefore(sha, stored_before));
    if (!removed) continue;
    spdlog::debug("removed blob {} ({} bytes): unreferenced", sha, file->second);
    ++result.removed;
    result.removed_bytes += file->second;
  }
  if (result.forgotten > 0) {
    spdlog::info("blob collection: removed {} unreferenced blob(s), {} bytes, stored over {} s ago ({} forgotten)",
                 result.removed, result.removed_bytes, grace_seconds, result.forgotten);
  }
  return result;
}

StatusOr<BlobHold> HoldSubmittedBlob(ServerStore& store, const BlobStore& blobs, const std::string& owner,
                                     const std::string& sha256) {
  ACS_ASSIGN_OR_RETURN(BlobHold hold, store.HoldBlob(owner, sha256));
  if (StatusOr<std::string> path = blobs.PathOf(sha256); path.ok()) {
    (void)utimensat(AT_FDCWD, path->c_str(), nullptr, 0);  // ENOENT: gone meanwhile (see the header)
  }
  return hold;
}

BlobCollector::BlobCollector(ServerStore* store, const BlobStore* blobs, BlobGcOptions options)
    : store_(store), blobs_(blobs), options_(options), thread_([this] { Run(); }) {}

BlobCollector::~BlobCollector() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BlobCollector::Run() {
  while (true) {
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    StatusOr<BlobGcResult> swept = CollectBlobs(*store_, *blobs_, options_.grace_seconds, now);
    if (!swept.ok()) {
      spdlog::warn("blob collection failed (retried in {} s): {}", options_.interval_seconds,
                   swept.status().ToString());
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, std::chrono::seconds(options_.interval_seconds), [this] { return stop_; })) return;
  }
}

}  // namespace acs::server
