// Collection of the blobs nothing needs any more (docs/robustness.md): a blob goes, file
// and `uploads` rows, once no record names it (ServerStore::ReferencedBlobs: any job, a
// campaign run, an open task) and nobody stored it within the grace period: an upload not
// yet submitted, an earlier round's export, a rewritten report. A blob any job names stays
// as long as the job, whatever its state. No gRPC.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "server/blob_store.h"
#include "server/server_store.h"

namespace acs::server {

struct BlobGcOptions {
  int64_t interval_seconds = 3600;        // between the serving process's sweeps, the first at
                                          // start; 0: none
  int64_t grace_seconds = 7 * 24 * 3600;  // a blob stored (uploaded, put by a job, or stored
                                          // again) more recently is kept
};

struct BlobGcResult {
  int64_t removed = 0;        // blob files removed
  int64_t removed_bytes = 0;  // their size
  int64_t forgotten = 0;      // blobs whose `uploads` rows went: the removed ones, and those
                              // whose file was gone already
};

// One sweep as at `now_unix_seconds` (tests pass a later time than the clock's): forgets
// the blobs stored before now - grace_seconds that no record names, then removes their
// files (BlobStore::RemoveIfStoredBefore: one stored again meanwhile stays); logs what it
// removed. Errors: the stores'.
//
// Crash contract: rows first, then files. A crash between leaves files no row counts, mere
// garbage the next sweep removes (an old file without references is collected whether it
// has rows or not). The other order could leave rows without a file: a quota charged for
// nothing, and StoresBlob admitting a submit whose model is gone.
//
// The jobs are parsed outside the store's lock first (ServerStore::ScanJobBlobs), its
// transaction parsing only those updated since; scan_jobs_first false: the transaction
// parses them all, other store calls waiting meanwhile (what the sweep did before; kept for
// experiments/bench/bench_blob_sweep.cc to compare). The same blobs go either way.
StatusOr<BlobGcResult> CollectBlobs(ServerStore& store, const BlobStore& blobs, int64_t grace_seconds,
                                    int64_t now_unix_seconds, bool scan_jobs_first = true);

// What Submit takes at its check of a blob its job will name (model, dataset, test set),
// until the job is stored: ServerStore::HoldBlob (NotFound when `owner` is not empty and
// stores no such blob), then the file's time set to now as storing the same bytes again
// sets it, so that a sweep which forgot the blob just before the hold keeps its file
// (BlobStore::RemoveIfStoredBefore). A file absent or parked by such a sweep is not an
// error here: the submit's own check of the file decides. The hold counts in this process
// only, where the sweeps run (BlobCollector). Errors: the store's.
StatusOr<BlobHold> HoldSubmittedBlob(ServerStore& store, const BlobStore& blobs, const std::string& owner,
                                     const std::string& sha256);

// CollectBlobs every options.interval_seconds on its own thread, the first at once (also
// when destroyed straight away); failures are logged and retried at the next sweep.
class BlobCollector {
 public:
  // Both stores must outlive this; options.interval_seconds > 0.
  BlobCollector(ServerStore* store, const BlobStore* blobs, BlobGcOptions options);
  ~BlobCollector();  // stops the thread, after the sweep under way if any
  BlobCollector(const BlobCollector&) = delete;
  BlobCollector& operator=(const BlobCollector&) = delete;

 private:
  void Run();
  ServerStore* store_;
  const BlobStore* blobs_;
  const BlobGcOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace acs::server
