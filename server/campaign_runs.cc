#include "server/campaign_runs.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "server/auth.h"

namespace acs::server {
namespace {

Status RequireClient(const Principal& who, const std::string& what) {
  return Authenticator::Require(who, {Role::kAdmin, Role::kUser}, what);
}

bool IsCampaignName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

bool IsCampaignDate(const std::string& d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(d[i]))) return false;
  }
  const int month = std::stoi(d.substr(5, 2)), day = std::stoi(d.substr(8, 2));
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

StatusOr<CampaignRunRecord> CampaignRuns::Start(const Principal& who, CampaignRunRecord run, bool* created) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "starting a campaign run"));
  if (!IsCampaignName(run.campaign)) {
    return Status::InvalidArgument("campaign: expected 1-64 of [A-Za-z0-9._-], got '" + run.campaign + "'");
  }
  if (!IsCampaignDate(run.date)) return Status::InvalidArgument("date: expected YYYY-MM-DD, got '" + run.date + "'");
  if (run.spec_hash.empty()) return Status::InvalidArgument("spec_hash: required");
  if (run.cells.empty()) return Status::InvalidArgument("cell_keys: a run needs at least one cell");
  std::set<std::string> keys;
  for (const CampaignCellRecord& c : run.cells) {
    if (c.key.empty()) return Status::InvalidArgument("cell_keys: a key is empty");
    if (!keys.insert(c.key).second) return Status::InvalidArgument("cell_keys: '" + c.key + "' repeats");
  }
  run.owner = who.name;
  run.environment_json = jobs_->Environment().dump();
  return store_->StartCampaignRun(std::move(run), created);
}

StatusOr<CampaignRunRecord> CampaignRuns::Get(const Principal& who, const std::string& id) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "reading a campaign run"));
  if (id.empty()) return Status::InvalidArgument("a campaign run id is required");
  StatusOr<CampaignRunRecord> run = store_->GetCampaignRun(id);
  if (run.ok() && who.role != Role::kAdmin && run->owner != who.name) {
    return Status::NotFound("no campaign run '" + id + "'");
  }
  return run;
}

StatusOr<CampaignRunRecord> CampaignRuns::Find(const Principal& who, const std::string& campaign,
                                               const std::string& date) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "reading a campaign run"));
  ACS_ASSIGN_OR_RETURN(std::optional<CampaignRunRecord> run, store_->FindCampaignRun(who.name, campaign, date));
  if (!run) return Status::NotFound("no run of campaign '" + campaign + "' on " + date);
  return *run;
}

StatusOr<std::vector<CampaignRunRecord>> CampaignRuns::List(const Principal& who, const CampaignRunQuery& query) {
  ACS_RETURN_IF_ERROR(RequireClient(who, "listing campaign runs"));
  if (query.limit < 0) return Status::InvalidArgument("page_size must be >= 0");
  CampaignRunFilter filter;
  filter.owner = query.owner;
  if (who.role != Role::kAdmin) {
    if (!query.owner.empty() && query.owner != who.name) return std::vector<CampaignRunRecord>();
    filter.owner = who.name;
  }
  filter.campaign = query.campaign;
  filter.before_date = query.before_date;
  filter.limit = query.limit > 0 ? query.limit : 50;
  return store_->ListCampaignRuns(filter);
}

StatusOr<CampaignRunRecord> CampaignRuns::RecordCell(const Principal& who, const std::string& run_id,
                                                     const std::string& key, const std::string& job_id,
                                                     const std::string& note, const std::string& remeasure_json) {
  ACS_RETURN_IF_ERROR(Get(who, run_id).status());
  if (!job_id.empty()) ACS_RETURN_IF_ERROR(jobs_->Get(who, job_id).status());
  if (!remeasure_json.empty() && !nlohmann::json::parse(remeasure_json, nullptr, false).is_object()) {
    return Status::InvalidArgument("remeasure_json: expected a JSON object");
  }
  ACS_RETURN_IF_ERROR(store_->SetCampaignCell(run_id, key, job_id, note, remeasure_json));
  return store_->GetCampaignRun(run_id);
}

}  // namespace acs::server
