#include "server/campaign_messages.h"

#include "server/acs_messages.h"

namespace acs::server {

void FillCampaignRun(const CampaignRunRecord& run, acs::v1::CampaignRun* out) {
  out->set_id(run.id);
  out->set_owner(run.owner);
  out->set_campaign(run.campaign);
  out->set_date(run.date);
  out->set_spec_hash(run.spec_hash);
  out->set_spec_json(run.spec_json);
  out->set_created(run.created);
  out->set_environment_json(run.environment_json);
  for (const CampaignCellRecord& c : run.cells) {
    acs::v1::CampaignCell* cell = out->add_cells();
    cell->set_key(c.key);
    cell->set_job_id(c.job_id);
    if (!c.job_state.empty()) cell->set_state(JobStateOf(c.job_state));
    cell->set_note(c.note);
    cell->set_remeasure_json(c.remeasure_json);
  }
}

}  // namespace acs::server
