// A nightly campaign run compared with the previous stored run of the same campaign
// (docs/campaigns.md): per cell, each metric's baseline, today's value, the delta and the
// noise band; a change is flagged only beyond both the spec's relative floor and
// noise_multiplier x the spread of repeat measurements. Pure: no server, no files; the
// results are gathered by cli/campaign_results.h and rendered by RenderCampaignReport.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/campaign_spec.h"

namespace acs {

// What one cell of a run produced, as read from its job.
struct CellResult {
  std::string key;           // CampaignCell::Key
  std::string job_id;        // empty: never submitted
  std::string state;         // "succeeded", "budget_not_met", "failed", "cancelled", a running
                             // state, or "pending" (no job)
  std::string error;         // the job's error, or the run's note (e.g. cancelled past the time limit)
  std::string device_class;  // the job's device class
  std::string agent;
  // CampaignMetrics() names present when known, higher is better for all of them.
  std::map<std::string, double> metrics;
  // Per metric, the spread (max - min) of its repeat measurements; absent or 0: none known.
  std::map<std::string, double> noise;
  std::optional<double> accuracy_loss;  // dense minus compressed accuracy (test set when it has one)
};

// The cell verdicts, most severe first.
enum class CellVerdict { kRegressed, kFailed, kMissing, kNew, kImproved, kUnchanged, kPending };
const char* VerdictName(CellVerdict v);  // "regressed", "failed", ...

struct MetricChange {
  std::string metric;
  std::optional<double> baseline, today;
  double delta = 0;     // today - baseline (both known)
  double relative = 0;  // delta / |baseline| (baseline known and non-zero)
  double noise = 0;     // the larger of both nights' spreads
  double band = 0;      // beyond this |delta| is flagged: max(floor x |baseline|, multiplier x noise)
  int flagged = 0;      // -1 regressed, +1 improved, 0 within the band (or not comparable)
  bool gated = false;   // a regression of it fails the run
};

struct CellComparison {
  std::string key;
  CellVerdict verdict = CellVerdict::kUnchanged;
  std::string job_id, baseline_job_id;
  std::string state, error;
  std::vector<MetricChange> changes;  // in CampaignMetrics() order
  double severity = 0;                // regressed: the worst gated relative drop (more negative first)
};

// Geomean measured speedup and mean accuracy loss of a device class and agent.
struct GroupSummary {
  std::string device_class, agent;
  int cells = 0;
  std::optional<double> geomean_speedup, baseline_geomean_speedup;
  std::optional<double> mean_accuracy_loss, baseline_mean_accuracy_loss;
};

struct RunInfo {
  std::string run_id, date, spec_hash;
};

// What the header shows besides the runs.
struct ReportHeader {
  std::string acs_version;
  std::vector<std::string> predictors;  // "CLASS: version N" per device class
  std::vector<std::string> workers;     // "NAME (CLASS, VERSION, online)"
};

struct CampaignReport {
  std::string campaign;
  RunInfo today;
  std::optional<RunInfo> baseline;  // none: the campaign's first run
  CampaignCompare compare;
  ReportHeader header;
  std::map<std::string, int> counts;  // VerdictName -> cells, every verdict present
  std::vector<GroupSummary> groups;   // by device class, then agent
  std::vector<CellComparison> cells;  // most severe first, then by key
  bool gated_regression = false;
  // The exit code of `acs campaign run / report`: 0, kExitRegressed or kExitFailedCells.
  int ExitCode() const;
};

inline constexpr int kExitRegressed = 3;    // a gated metric regressed
inline constexpr int kExitFailedCells = 4;  // no regression, but cells failed or did not end

struct RunResults {
  RunInfo run;
  std::vector<CellResult> cells;
};

// Compares `today` with `baseline` (nullopt: nothing to compare with; every cell new).
CampaignReport CompareRuns(const std::string& campaign, const CampaignCompare& compare, const RunResults& today,
                           const std::optional<RunResults>& baseline, const ReportHeader& header = {});

// The report as JSON (the "json" format), Markdown ("md") or a self-contained HTML page
// ("html": inline CSS and SVG, no external resources). `job_link`, when set, prefixes
// job ids into links. InvalidArgument for another format.
StatusOr<std::string> RenderCampaignReport(const CampaignReport& report, const std::string& format,
                                           const std::string& job_link = "");

}  // namespace acs
