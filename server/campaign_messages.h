// Campaign runs (server/campaign_records.h) as the client API's messages, for the gRPC and
// HTTP adapters alike.
#pragma once

#include "proto/acs.pb.h"
#include "server/campaign_records.h"

namespace acs::server {

// Every field; a cell's state is its job's (unspecified without a job).
void FillCampaignRun(const CampaignRunRecord& run, acs::v1::CampaignRun* out);

}  // namespace acs::server
