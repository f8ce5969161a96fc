// The report of a stored campaign run (docs/campaigns.md): each cell's job read into a
// CellResult (its report.json for the spread of repeat measurements, the run's recorded
// re-measurement and note), the previous run of the same owner as the baseline, both
// compared by CompareRuns. The reads go through a CampaignRunSource, so that the CLI (over
// gRPC) and the server (over its job service) report a run with the same code.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "campaigns/campaign_report.h"
#include "core/status.h"
#include "proto/acs.pb.h"

namespace acs {

// What a report reads, as seen by one caller (its visibility rules apply).
class CampaignRunSource {
 public:
  virtual ~CampaignRunSource() = default;
  // The run by id, with its spec.
  virtual StatusOr<acs::v1::CampaignRun> Run(const std::string& id) const = 0;
  // The baseline of `run`: the latest run of the same owner and campaign dated before
  // run.date (with its cells; its spec may be absent); nullopt when there is none.
  virtual StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const acs::v1::CampaignRun& run) const = 0;
  virtual StatusOr<acs::v1::Job> Job(const std::string& id) const = 0;
  // The job's report.json; an error when it cannot be read (the cell then lacks its noise
  // band, nothing else).
  virtual StatusOr<std::string> JobReport(const std::string& job_id) const = 0;
  // The header of a run stored without its environment: the server's view now.
  virtual ReportHeader CurrentHeader() const = 0;
};

// A job's result as a cell's: metrics of a job that ended with a result, its error
// otherwise. `report_json` is its report.json (empty: unknown spreads).
CellResult CellResultOf(const std::string& key, const acs::v1::Job& job, const std::string& report_json);

// Every cell of the run, each job read (and its report.json when it ended with one).
StatusOr<RunResults> GatherRunResults(const CampaignRunSource& source, const acs::v1::CampaignRun& run);

// One page of the caller's runs of a campaign dated before `before_date`, newest date
// first, any owner's for an admin: what a source that can only list runs reads.
using CampaignRunPage =
    std::function<StatusOr<std::vector<acs::v1::CampaignRun>>(const std::string& before_date, int page_size)>;

// CampaignRunSource::PreviousRun over such listings, however many runs of other owners
// come first: pages of `page_size`, each one from the oldest date of the page before
// (dates up to it), so that a date's runs are never split between pages. page's errors;
// ResourceExhausted when more than page_size runs of the campaign share one date.
StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRunByPages(const acs::v1::CampaignRun& run, int page_size,
                                                                 const CampaignRunPage& page);

// The report of `run` (read again when it comes without its spec) against the previous
// run; the header from the run's stored environment, else the source's current one.
// InvalidArgument when the stored spec does not parse.
StatusOr<CampaignReport> ReportOfRun(const CampaignRunSource& source, const acs::v1::CampaignRun& run);
// The same against `baseline` as given (nullopt: none), for a caller that read it already
// (e.g. to tell whether the run or its baseline changed since a report).
StatusOr<CampaignReport> ReportAgainst(const CampaignRunSource& source, const acs::v1::CampaignRun& run,
                                       const std::optional<acs::v1::CampaignRun>& baseline);

}  // namespace acs
