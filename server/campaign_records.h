// The stored form of nightly campaign runs (docs/campaigns.md): one run per owner,
// campaign and date, and one cell per point of the spec, each with the job submitted for
// it. No gRPC; ServerStore reads and writes them (server/server_store_campaigns.cc).
#pragma once

#include <string>
#include <vector>

namespace acs::server {

struct CampaignCellRecord {
  std::string key;        // the cell's key, unique in its run
  std::string job_id;     // empty until submitted
  std::string note;       // set by the run, e.g. why it cancelled the job
  std::string job_state;  // the job's stored state when read; empty without a job
  std::string remeasure_json;  // a suspect cell's re-measurement, as the run recorded it
};

struct CampaignRunRecord {
  std::string id;        // "run-" + 12 hex digits, set by the store
  std::string owner;     // Principal::name of whoever started it
  std::string campaign;  // the spec's name
  std::string date;      // YYYY-MM-DD
  std::string spec_hash;
  std::string spec_json;                  // empty in listings
  std::string created;                    // UTC ISO 8601, set by the store
  std::vector<CampaignCellRecord> cells;  // in the spec's order
  std::string environment_json;           // the server's environment when created (JSON)
};

struct CampaignRunFilter {
  std::string owner;        // empty: any
  std::string campaign;     // empty: any
  std::string before_date;  // only runs of earlier dates; empty: all
  int limit = 50;           // newest date first
};

}  // namespace acs::server
