// A nightly campaign run compared with the previous stored run of the same campaign
// (docs/campaigns.md): per cell, each metric's baseline, today's value, the delta and the
// noise band; a change is flagged only beyond both the spec's relative floor and
// noise_multiplier x the spread of repeat measurements. Pure: no server, no files; the
// results are gathered by campaigns/run_comparison.h and rendered by RenderCampaignReport.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "campaigns/campaign_spec.h"

namespace acs {

// The exported policy of a suspect cell measured again against its dense model on a worker
// of the cell's class (each run one task alternating both, as its verification did).
struct CellRemeasure {
  struct Run {
    std::string worker_id;
    double measured_us = 0, dense_measured_us = 0;  // both > 0: a measurement
    std::string error;
  };
  std::vector<Run> runs;
  std::string error;  // the re-measurement could not be made (no worker, timed out, ...)
  // The median of the runs' dense / measured; nullopt when no run measured.
  std::optional<double> Speedup() const;
  nlohmann::json ToJson() const;
  static CellRemeasure FromJson(const nlohmann::json& j);  // a malformed one: an error
};

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
  // A suspect cell's re-measurement (RemeasureJob), as the run recorded it; absent: none.
  std::optional<CellRemeasure> remeasure;
};

// The cell verdicts, most severe first.
enum class CellVerdict { kRegressed, kFailed, kMissing, kNew, kImproved, kUnchanged, kPending };
const char* VerdictName(CellVerdict v);  // "regressed", "failed", ...

struct MetricChange {
  std::string metric;
  std::optional<double> baseline, today;
  double delta = 0;     // today - baseline (both known)
  double relative = 0;  // delta / |baseline| (baseline known and non-zero)
  double noise = 0;     // the larger of both nights' spreads (their re-measurements' too)
  double band = 0;      // beyond this |delta| is flagged: max(floor x |baseline|, multiplier x noise)
  int flagged = 0;      // -1 regressed, +1 improved, 0 within the band (or not comparable)
  bool gated = false;   // a regression of it fails the run
  std::optional<double> remeasured;  // measured_speedup of a suspect cell measured again
  // The baseline is the baseline cell's re-measured figure (the median of its runs; its
  // latest), not its first measurement: measured_speedup of a baseline cell measured again.
  bool baseline_remeasured = false;
  std::optional<double> baseline_measured;  // the baseline's first measurement, when re-measured
};

// What the re-measurement of a suspect cell decided (CellComparison::remeasure).
enum class RemeasureOutcome {
  kNone,          // not suspect, or not measured again (a report during a run, an older run)
  kConfirmed,     // measured again, the regression stands: "confirmed on re-measure"
  kNotConfirmed,  // measured again within the band: "not confirmed (noise)", not flagged
  kUnavailable,   // asked for but not made (no worker, timed out): flagged on the first measurement
};
const char* RemeasureOutcomeText(RemeasureOutcome o);

struct CellComparison {
  std::string key;
  CellVerdict verdict = CellVerdict::kUnchanged;
  std::string job_id, baseline_job_id;
  std::string state, error;
  std::vector<MetricChange> changes;  // in CampaignMetrics() order
  double severity = 0;                // regressed: the worst gated relative drop (more negative first)
  RemeasureOutcome remeasure = RemeasureOutcome::kNone;
  std::optional<CellRemeasure> remeasurement;  // the runs, when measured again
};

// A cell is suspect when a gated metric crossed both the floor and the noise band for the
// worse on its first measurement: `acs campaign run` measures it again before flagging it.
// The decision, pure: a gated measured_speedup regression stands only when the
// re-measured speedup (the median of its runs) is also worse than the baseline by more
// than the band, widened to compare.noise_multiplier x the spread of the re-measured runs
// when that is larger; accuracies and predicted speedup are deterministic (the same
// exported model on the same samples), so measuring latency again cannot clear them. A
// re-measurement that could not be made leaves the flags of the first measurement.
// Updates `cell`'s flags, verdict, remeasure and remeasurement from `today.remeasure`.
void ApplyRemeasure(const CellResult& today, const CampaignCompare& compare, CellComparison* cell);

// Geomean measured speedup and mean accuracy loss of a device class and agent. A cell
// measured again (its CellResult::remeasure has a speedup) counts with its re-measured
// speedup (the median of the runs) instead of its first measurement, in both nights.
struct GroupSummary {
  std::string device_class, agent;
  int cells = 0;
  std::optional<double> geomean_speedup, baseline_geomean_speedup;
  std::optional<double> mean_accuracy_loss, baseline_mean_accuracy_loss;
  // The keys of the cells whose re-measured speedup is in the geomean, sorted.
  std::vector<std::string> remeasured, baseline_remeasured;
};

struct ReportHeader;

struct RunInfo {
  std::string run_id, date, spec_hash;
  std::string environment_json;  // what the server stored with the run (empty: older runs)
};

// The environments of two runs compared: one line per difference, e.g. "runtime: acs 0.1.0
// / libtorch 2.1.0 -> acs 0.1.0 / libtorch 2.2.0", "worker w-2 (x86_64-avx2-...) added";
// empty when either is unknown (`known` false) or nothing changed.
std::vector<std::string> EnvironmentChanges(const std::string& baseline_json, const std::string& today_json,
                                            bool* known = nullptr);
// The header's versions, predictors and workers from a stored environment; false when it
// is empty or malformed (the header is then left as it is).
bool HeaderFromEnvironment(const std::string& environment_json, ReportHeader* header);

// Whole days from `from` to `to` (YYYY-MM-DD); nullopt when either does not parse.
std::optional<int> DaysBetween(const std::string& from, const std::string& to);

// What the header shows besides the runs.
struct ReportHeader {
  std::string acs_version;
  std::vector<std::string> predictors;  // "CLASS: version N" per device class
  std::vector<std::string> workers;     // "NAME (CLASS, VERSION, online)"
  std::string runtime;                  // the server's "acs V / libtorch V" (stored runs)
  // Set by `acs campaign run` when called without --date: the latest stored run before
  // today is older than yesterday (nights were missed); the report says so.
  std::string missed_nights;
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
  // What changed in the environment since the baseline (EnvironmentChanges).
  std::vector<std::string> environment_changes;
  bool environment_known = false;  // both runs stored their environment
  std::optional<int> baseline_age_days;  // days from the baseline's date to today's
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
