// The server store's nightly campaign runs and their cells (server/campaign_records.h).
#include <optional>

#include "server/server_store.h"
#include "server/server_store_internal.h"

namespace acs::server {

namespace store_internal {

// Numbered migrations of the "campaigns" component; append only.
const std::vector<std::string>& CampaignRunMigrations() {
  static const std::vector<std::string> m = {
      R"sql(
CREATE TABLE campaign_runs (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  campaign TEXT NOT NULL,
  date TEXT NOT NULL,
  spec_hash TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  UNIQUE (owner, campaign, date));
CREATE TABLE campaign_cells (
  run_id TEXT NOT NULL REFERENCES campaign_runs (id),
  seq INTEGER NOT NULL,
  key TEXT NOT NULL,
  job_id TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, key));
)sql",
      R"sql(
ALTER TABLE campaign_runs ADD COLUMN environment_json TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign_cells ADD COLUMN remeasure_json TEXT NOT NULL DEFAULT '';
)sql",
  };
  return m;
}

}  // namespace store_internal

namespace {

using store_internal::InTransaction;
using store_internal::ReadAll;

constexpr const char* kRunColumns = "id, owner, campaign, date, spec_hash, spec_json, created, environment_json";
constexpr const char* kListedRunColumns = "id, owner, campaign, date, spec_hash, '', created, environment_json";

CampaignRunRecord ReadRun(const Statement& q) {
  CampaignRunRecord r;
  r.id = q.Text(0);
  r.owner = q.Text(1);
  r.campaign = q.Text(2);
  r.date = q.Text(3);
  r.spec_hash = q.Text(4);
  r.spec_json = q.Text(5);
  r.created = q.Text(6);
  r.environment_json = q.Text(7);
  return r;
}

// The run's cells in order, each with its job's state now.
Status ReadCells(Db& db, CampaignRunRecord* run) {
  ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare("SELECT c.key, c.job_id, c.note, COALESCE(j.state, ''), c.remeasure_json FROM "
                                               "campaign_cells c LEFT JOIN jobs j ON j.id = c.job_id "
                                               "WHERE c.run_id = ? ORDER BY c.seq"));
  q.Bind(1, run->id);
  ACS_ASSIGN_OR_RETURN(run->cells, ReadAll<CampaignCellRecord>(q, [](const Statement& s) {
                         return CampaignCellRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4)};
                       }));
  return Status::Ok();
}

// The runs `where` selects (with its binds applied by `bind`), each with its cells.
template <typename Bind>
StatusOr<std::vector<CampaignRunRecord>> ReadRuns(Db& db, const std::string& columns, const std::string& where,
                                                  Bind bind) {
  ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare("SELECT " + columns + " FROM campaign_runs WHERE " + where));
  bind(q);
  ACS_ASSIGN_OR_RETURN(std::vector<CampaignRunRecord> runs, ReadAll<CampaignRunRecord>(q, ReadRun));
  for (CampaignRunRecord& r : runs) ACS_RETURN_IF_ERROR(ReadCells(db, &r));
  return runs;
}

StatusOr<std::optional<CampaignRunRecord>> FindLocked(Db& db, const std::string& owner, const std::string& campaign,
                                                      const std::string& date) {
  ACS_ASSIGN_OR_RETURN(std::vector<CampaignRunRecord> runs,
                       ReadRuns(db, kRunColumns, "owner = ? AND campaign = ? AND date = ?",
                                [&](Statement& q) { q.Bind(1, owner).Bind(2, campaign).Bind(3, date); }));
  if (runs.empty()) return std::optional<CampaignRunRecord>();
  return std::optional<CampaignRunRecord>(std::move(runs[0]));
}

}  // namespace

StatusOr<CampaignRunRecord> ServerStore::StartCampaignRun(CampaignRunRecord run, bool* created) {
  ACS_ASSIGN_OR_RETURN(std::string suffix, RandomHex(6));
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> StatusOr<CampaignRunRecord> {
    ACS_ASSIGN_OR_RETURN(std::optional<CampaignRunRecord> stored, FindLocked(*db_, run.owner, run.campaign, run.date));
    if (stored) {
      if (stored->spec_hash != run.spec_hash) {
        return Status::FailedPrecondition("the run of " + run.campaign + " on " + run.date + " ran spec " +
                                          stored->spec_hash.substr(0, 12) + ", not " + run.spec_hash.substr(0, 12) +
                                          ": a date runs one spec (run the new one for another date)");
      }
      *created = false;
      return *stored;
    }
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT INTO campaign_runs (id, owner, campaign, date, spec_hash, "
                                                   "spec_json, environment_json) VALUES (?,?,?,?,?,?,?)"));
    q.Bind(1, "run-" + suffix).Bind(2, run.owner).Bind(3, run.campaign).Bind(4, run.date).Bind(5, run.spec_hash);
    q.Bind(6, run.spec_json).Bind(7, run.environment_json);
    ACS_RETURN_IF_ERROR(q.Run());
    ACS_ASSIGN_OR_RETURN(Statement c, db_->Prepare("INSERT INTO campaign_cells (run_id, seq, key) VALUES (?,?,?)"));
    for (size_t i = 0; i < run.cells.size(); ++i) {
      c.Bind(1, "run-" + suffix).Bind(2, static_cast<int64_t>(i)).Bind(3, run.cells[i].key);
      ACS_RETURN_IF_ERROR(c.Run());
      ACS_RETURN_IF_ERROR(c.Reset());
    }
    *created = true;
    ACS_ASSIGN_OR_RETURN(std::optional<CampaignRunRecord> made, FindLocked(*db_, run.owner, run.campaign, run.date));
    if (!made) return Status::Internal("campaign run not stored");
    return *made;
  });
}

StatusOr<CampaignRunRecord> ServerStore::GetCampaignRun(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(std::vector<CampaignRunRecord> runs,
                       ReadRuns(*db_, kRunColumns, "id = ?", [&](Statement& q) { q.Bind(1, id); }));
  if (runs.empty()) return Status::NotFound("no campaign run '" + id + "'");
  return runs[0];
}

StatusOr<std::optional<CampaignRunRecord>> ServerStore::FindCampaignRun(const std::string& owner,
                                                                        const std::string& campaign,
                                                                        const std::string& date) {
  std::lock_guard<std::mutex> lock(mu_);
  return FindLocked(*db_, owner, campaign, date);
}

StatusOr<std::vector<CampaignRunRecord>> ServerStore::ListCampaignRuns(const CampaignRunFilter& f) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string where =
      "(? = '' OR owner = ?) AND (? = '' OR campaign = ?) AND (? = '' OR date < ?) ORDER BY date DESC, created DESC "
      "LIMIT ?";
  return ReadRuns(*db_, kListedRunColumns, where, [&](Statement& q) {
    q.Bind(1, f.owner).Bind(2, f.owner).Bind(3, f.campaign).Bind(4, f.campaign).Bind(5, f.before_date);
    q.Bind(6, f.before_date).Bind(7, static_cast<int64_t>(f.limit > 0 ? f.limit : 50));
  });
}

Status ServerStore::SetCampaignCell(const std::string& run_id, const std::string& key, const std::string& job_id,
                                    const std::string& note, const std::string& remeasure_json) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT job_id, remeasure_json FROM campaign_cells "
                                                   "WHERE run_id = ? AND key = ?"));
    q.Bind(1, run_id).Bind(2, key);
    ACS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Status::NotFound("campaign run '" + run_id + "' has no cell '" + key + "'");
    const std::string held = q.Text(0), held_remeasure = q.Text(1);
    if (!job_id.empty() && !held.empty() && held != job_id) {
      return Status::FailedPrecondition("cell '" + key + "' has job " + held + " already");
    }
    ACS_ASSIGN_OR_RETURN(Statement u, db_->Prepare("UPDATE campaign_cells SET job_id = ?, note = ?, "
                                                   "remeasure_json = ? WHERE run_id = ? AND key = ?"));
    u.Bind(1, job_id.empty() ? held : job_id).Bind(2, note);
    u.Bind(3, remeasure_json.empty() ? held_remeasure : remeasure_json).Bind(4, run_id).Bind(5, key);
    return u.Run();
  });
}

}  // namespace acs::server
