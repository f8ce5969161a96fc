// The comparisons the HTTP route of campaign runs has computed (server/http_campaigns.h),
// so that a finished run's comparison, which reads every cell's job and report.json, is
// computed once. Bounded; the least recently used entry goes first. Thread-safe.
#pragma once

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "proto/acs.pb.h"

namespace acs::server {

class ComparisonCache {
 public:
  explicit ComparisonCache(size_t capacity = 64);  // capacity >= 1 entries

  // The comparison stored under `key` with this fingerprint; nullopt when there is none
  // or it was stored with another one (its inputs changed since).
  std::optional<std::string> Get(const std::string& key, const std::string& fingerprint);
  // Stores the comparison under `key`, replacing the key's entry; past capacity, the
  // least recently used entry is dropped.
  void Put(const std::string& key, const std::string& fingerprint, std::string comparison);
  size_t size() const;

 private:
  struct Entry {
    std::string key, fingerprint, comparison;
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;                                            // most recent first; guarded by mu_
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;  // into entries_; guarded by mu_
};

// The fingerprint of what a run's comparison reads from the store: the run's id, spec
// hash and environment, and the id, jobs, job states, notes and re-measurements of its
// cells and of its baseline's (nullopt: none). Nullopt while the comparison may still
// change without them changing: a cell's job of either run has not ended (its figures
// move as it runs) or is gone (a job row deleted from the store: its cell has no state),
// or the run was stored without its environment (the header is the server's now).
std::optional<std::string> ComparisonFingerprint(const acs::v1::CampaignRun& run,
                                                 const std::optional<acs::v1::CampaignRun>& baseline);

}  // namespace acs::server
