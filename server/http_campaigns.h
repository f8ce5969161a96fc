// The HTTP/JSON routes of campaign runs, read-only (for the dashboard; docs/campaigns.md):
//   GET /api/v1/campaigns/runs[?campaign=NAME&before_date=D&page_size=N]  ListCampaignRunsReply
//   GET /api/v1/campaigns/runs/RUN                                       CampaignRun
//   GET /api/v1/campaigns/runs/RUN/comparison     the run against its baseline: the JSON
//                                                 of `acs campaign report --format json`
// Translation only: the rules are CampaignRuns' (server/campaign_runs.h), the comparison
// campaigns/run_comparison.h's (the CLI's code, over the caller's view); errors as the
// gateway's (server/http_errors.h). A comparison of ended runs is computed once and kept
// (server/http_campaigns_cache.h) until its run or baseline changes.
#pragma once

#include <memory>

#include "server/auth.h"
#include "server/http_campaigns_cache.h"
#include "server/job_service.h"

namespace httplib {
class Server;
}

namespace acs::server {

// Registers the routes on `server`; service and auth must outlive it. The comparisons of
// ended runs are kept in `cache` (null: a new one of 64 entries), shared with the routes.
void AddCampaignRoutes(httplib::Server* server, JobService* service, const Authenticator* auth,
                       std::shared_ptr<ComparisonCache> cache = nullptr);

}  // namespace acs::server
