// What `acs campaign report / run` reads from the server to report a stored run: the runs,
// the jobs and their report.json over gRPC, as the CampaignRunSource of the shared
// comparison (campaigns/run_comparison.h, which the server's HTTP route uses as well).
#pragma once

#include <optional>
#include <string>

#include "campaigns/run_comparison.h"
#include "cli/remote.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// The run (with its spec) by id, or by campaign and date (the caller's).
StatusOr<acs::v1::CampaignRun> FetchRun(const Remote& r, const std::string& id, const std::string& campaign = "",
                                        const std::string& date = "");

// The latest run of run's owner and campaign before run.date (nullopt: none), however many
// runs of other owners an admin's listing holds (acs::PreviousRunByPages).
StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const Remote& r, const acs::v1::CampaignRun& run);

// The report of `run` (read with its spec) against the previous run (acs::ReportOfRun
// over the server `r` talks to).
StatusOr<CampaignReport> ReportOfRun(const Remote& r, const acs::v1::CampaignRun& run);

// Renders the report as --format (default md) to --out (default stdout; the path is then
// printed on stderr) with --job-link; returns the report's exit code, or an error.
StatusOr<int> WriteReport(const Remote& r, const CampaignReport& report);

}  // namespace acs::cli
