// What a report of a stored campaign run needs from the server: each cell's job read into
// a CellResult (its report.json for the spread of repeat measurements), the header
// (workers, predictor versions) and the previous run of the campaign.
#pragma once

#include <optional>

#include "cli/campaign_report.h"
#include "cli/remote.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// A job's result as a cell's: metrics of a job that ended with a result, its error
// otherwise. `report_json` is its report.json (empty: unknown spreads).
CellResult CellResultOf(const std::string& key, const acs::v1::Job& job, const std::string& report_json);

// Every cell of the run, each job read (and its report.json when it ended with one).
StatusOr<RunResults> GatherRunResults(const Remote& r, const acs::v1::CampaignRun& run);

// The run of the same owner and campaign before run.date; nullopt when there is none.
StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const Remote& r, const acs::v1::CampaignRun& run);

// The run (with its spec) by id, or by campaign and date (the caller's).
StatusOr<acs::v1::CampaignRun> FetchRun(const Remote& r, const std::string& id, const std::string& campaign = "",
                                        const std::string& date = "");

// The report of `run` (read with its spec) against the previous run.
StatusOr<CampaignReport> ReportOfRun(const Remote& r, const acs::v1::CampaignRun& run);

// Renders the report as --format (default md) to --out (default stdout; the path is then
// printed on stderr) with --job-link; returns the report's exit code, or an error.
StatusOr<int> WriteReport(const Remote& r, const CampaignReport& report);

}  // namespace acs::cli
