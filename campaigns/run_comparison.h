// The report of a stored campaign run (docs/campaigns.md): each cell's job read into a
// CellResult (its report.json for the spread of repeat measurements, the run's recorded
// re-measurement and note), the previous run of the same owner as the baseline, both
// compared by CompareRuns. The reads go through a CampaignRunSource, so that the CLI (over
// gRPC) and the server (over its job service) report a run with the same code.
#pragma once

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
  // The caller's runs of `campaign` dated before `date`, newest first (any owner's for an
  // admin).
  virtual StatusOr<std::vector<acs::v1::CampaignRun>> RunsBefore(const std::string& campaign,
                                                                 const std::string& date) const = 0;
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

// The run of the same owner and campaign before run.date; nullopt when there is none.
StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const CampaignRunSource& source,
                                                          const acs::v1::CampaignRun& run);

// The report of `run` (read again when it comes without its spec) against the previous
// run; the header from the run's stored environment, else the source's current one.
// InvalidArgument when the stored spec does not parse.
StatusOr<CampaignReport> ReportOfRun(const CampaignRunSource& source, const acs::v1::CampaignRun& run);

}  // namespace acs
