// The rules of nightly campaign runs without a transport (docs/campaigns.md): who may
// start, read and change which run, and what a run and its cells may hold. A run is one
// per owner, campaign and date; starting it again returns it (the idempotence `acs
// campaign run` relies on). Owners see and change their own runs, admins all; workers none.
// Thread-safe (the store is).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "server/campaign_records.h"
#include "server/job_service.h"
#include "server/server_store.h"

namespace acs::server {

struct CampaignRunQuery {
  std::string campaign;     // empty: every campaign
  std::string before_date;  // only earlier dates; empty: all
  std::string owner;        // only this owner's runs (a user's: none of another's); empty: any visible
  int limit = 0;            // 0: 50
};

class CampaignRuns {
 public:
  // Both must outlive this.
  CampaignRuns(ServerStore* store, JobService* jobs) : store_(store), jobs_(jobs) {}

  // Each call returns PermissionDenied for workers and the store's errors besides its own.

  // Creates the run of `run`'s campaign and date owned by `who` with one cell per key of
  // run.cells and the server's environment now (JobService::Environment), or returns the
  // stored one (*created false). InvalidArgument for a bad
  // campaign name, a date not YYYY-MM-DD, an empty spec hash, no cells, an empty or
  // repeated key; FailedPrecondition when the date's run ran another spec.
  StatusOr<CampaignRunRecord> Start(const Principal& who, CampaignRunRecord run, bool* created);
  // NotFound for an unknown id and another user's run.
  StatusOr<CampaignRunRecord> Get(const Principal& who, const std::string& id);
  // The caller's run of the campaign on the date; NotFound when there is none.
  StatusOr<CampaignRunRecord> Find(const Principal& who, const std::string& campaign, const std::string& date);
  // Newest date first; a user's own runs, an admin's all.
  StatusOr<std::vector<CampaignRunRecord>> List(const Principal& who, const CampaignRunQuery& query);
  // Records the cell's job (the caller must see it: JobService::Get's errors) and note;
  // Get's errors for the run; the store's NotFound / FailedPrecondition for the cell.
  // remeasure_json, when set, must be a JSON object (InvalidArgument) and replaces the cell's.
  StatusOr<CampaignRunRecord> RecordCell(const Principal& who, const std::string& run_id, const std::string& key,
                                         const std::string& job_id, const std::string& note,
                                         const std::string& remeasure_json = "");

 private:
  ServerStore* store_;
  JobService* jobs_;
};

// YYYY-MM-DD with a month 01-12 and a day 01-31.
bool IsCampaignDate(const std::string& date);

}  // namespace acs::server
