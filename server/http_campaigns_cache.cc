#include "server/http_campaigns_cache.h"

#include <algorithm>

#include "core/sha256.h"
#include "server/acs_messages.h"
#include "server/server_store.h"

namespace acs::server {
namespace {

// Each field length-prefixed, so that no two sequences of fields hash alike.
void Field(Sha256* h, const std::string& s) { h->Update(std::to_string(s.size()) + ":" + s); }

// Adds the run to the hash; false when one of its cells' jobs has not ended, or is gone
// (deleted: the state unspecified, never terminal).
bool AddRun(Sha256* h, const acs::v1::CampaignRun& run) {
  Field(h, run.id());
  Field(h, run.spec_hash());
  Field(h, run.environment_json());
  for (const acs::v1::CampaignCell& c : run.cells()) {
    if (!c.job_id().empty() && !IsTerminalJobState(StoredJobState(c.state()))) return false;
    for (const std::string& f :
         {c.key(), c.job_id(), acs::v1::JobState_Name(c.state()), c.note(), c.remeasure_json()}) {
      Field(h, f);
    }
  }
  return true;
}

}  // namespace

ComparisonCache::ComparisonCache(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

std::optional<std::string> ComparisonCache::Get(const std::string& key, const std::string& fingerprint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end() || it->second->fingerprint != fingerprint) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->comparison;
}

void ComparisonCache::Put(const std::string& key, const std::string& fingerprint, std::string comparison) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    entries_.erase(it->second);
    by_key_.erase(it);
  }
  entries_.push_front({key, fingerprint, std::move(comparison)});
  by_key_[key] = entries_.begin();
  while (entries_.size() > capacity_) {
    by_key_.erase(entries_.back().key);
    entries_.pop_back();
  }
}

size_t ComparisonCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::optional<std::string> ComparisonFingerprint(const acs::v1::CampaignRun& run,
                                                 const std::optional<acs::v1::CampaignRun>& baseline) {
  if (run.environment_json().empty()) return std::nullopt;
  Sha256 h;
  if (!AddRun(&h, run)) return std::nullopt;
  Field(&h, baseline ? "baseline" : "no baseline");
  if (baseline && !AddRun(&h, *baseline)) return std::nullopt;
  return h.HexDigest();
}

}  // namespace acs::server
