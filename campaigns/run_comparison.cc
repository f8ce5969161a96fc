#include "campaigns/run_comparison.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

namespace acs {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The spread of the exported policy's measured speedups over its repeat runs (rank 0).
double SpeedupSpread(const nlohmann::json& report) {
  const nlohmann::json& runs = report.contains("verification") ? report["verification"] : nlohmann::json::array();
  double lo = 0, hi = 0;
  bool any = false;
  for (const nlohmann::json& v : runs) {
    if (!v.is_object() || v.value("rank", -1) != 0) continue;
    const double measured = v.value("measured_us", 0.0), dense = v.value("dense_measured_us", 0.0);
    if (measured <= 0 || dense <= 0) continue;
    const double s = dense / measured;
    lo = any ? std::min(lo, s) : s;
    hi = any ? std::max(hi, s) : s;
    any = true;
  }
  if (any) return hi - lo;
  // Older reports: the latency budget's outcome only.
  const nlohmann::json o = report.value("budget_outcome", nlohmann::json::object());
  const double rmin = o.value("ratio_min", 0.0), rmax = o.value("ratio_max", 0.0);
  return rmin > 0 && rmax > 0 ? 1 / rmin - 1 / rmax : 0;
}

// The day after `date` (YYYY-MM-DD).
StatusOr<std::string> NextDay(const std::string& date) {
  std::tm tm{};
  if (date.size() != 10 || strptime(date.c_str(), "%Y-%m-%d", &tm) == nullptr) {
    return Status::InvalidArgument("a campaign run's date: expected YYYY-MM-DD, got '" + date + "'");
  }
  const std::time_t next = timegm(&tm) + 86400;
  gmtime_r(&next, &tm);
  char b[16];
  std::strftime(b, sizeof b, "%Y-%m-%d", &tm);
  return std::string(b);
}

}  // namespace

CellResult CellResultOf(const std::string& key, const acs::v1::Job& job, const std::string& report_json) {
  CellResult c;
  c.key = key;
  c.job_id = job.id();
  c.state = Lower(acs::v1::JobState_Name(job.state()));
  c.error = job.error();
  c.device_class = job.request().device_class();
  c.agent = job.request().agent();
  if (job.dense_measured_latency_us() > 0 && job.best_measured_latency_us() > 0) {
    c.metrics["measured_speedup"] = job.dense_measured_latency_us() / job.best_measured_latency_us();
  }
  if (job.dense_predicted_latency_us() > 0 && job.best_predicted_latency_us() > 0) {
    c.metrics["predicted_speedup"] = job.dense_predicted_latency_us() / job.best_predicted_latency_us();
  }
  if (job.exported_accuracy() > 0) c.metrics["validation_accuracy"] = job.exported_accuracy();
  if (job.test_samples() > 0) {
    c.metrics["test_accuracy"] = job.test_accuracy();
    c.accuracy_loss = job.dense_test_accuracy() - job.test_accuracy();
  } else if (job.exported_accuracy() > 0) {
    c.accuracy_loss = job.dense_accuracy() - job.exported_accuracy();
  }
  const nlohmann::json report = nlohmann::json::parse(report_json, nullptr, false);
  if (report.is_object()) c.noise["measured_speedup"] = SpeedupSpread(report);
  return c;
}

StatusOr<RunResults> GatherRunResults(const CampaignRunSource& source, const acs::v1::CampaignRun& run) {
  RunResults out;
  out.run = {run.id(), run.date(), run.spec_hash(), run.environment_json()};
  for (const acs::v1::CampaignCell& cell : run.cells()) {
    if (cell.job_id().empty()) {
      CellResult c;
      c.key = cell.key();
      c.state = "pending";
      c.error = cell.note().empty() ? "never submitted" : cell.note();
      out.cells.push_back(c);
      continue;
    }
    ACS_ASSIGN_OR_RETURN(acs::v1::Job job, source.Job(cell.job_id()));
    std::string report;
    const bool has_report = std::any_of(job.artifacts().begin(), job.artifacts().end(),
                                        [](const acs::v1::Artifact& a) { return a.name() == "report.json"; });
    if (has_report) {
      StatusOr<std::string> text = source.JobReport(job.id());
      if (text.ok()) report = *text;  // without it the cell only lacks its noise band
    }
    CellResult c = CellResultOf(cell.key(), job, report);
    if (!cell.remeasure_json().empty()) {
      c.remeasure = CellRemeasure::FromJson(nlohmann::json::parse(cell.remeasure_json(), nullptr, false));
    }
    if (!cell.note().empty()) c.error = cell.note() + (c.error.empty() ? "" : "; " + c.error);
    out.cells.push_back(c);
  }
  return out;
}

StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRunByPages(const acs::v1::CampaignRun& run, int page_size,
                                                                 const CampaignRunPage& page) {
  std::string before = run.date();
  for (;;) {
    ACS_ASSIGN_OR_RETURN(std::vector<acs::v1::CampaignRun> runs, page(before, page_size));
    // Newest first, one run per owner and date: the first of the owner is the latest.
    for (const acs::v1::CampaignRun& prev : runs) {
      if (prev.owner() == run.owner() && prev.date() < run.date()) return std::optional<acs::v1::CampaignRun>(prev);
    }
    if (static_cast<int>(runs.size()) < page_size) return std::optional<acs::v1::CampaignRun>();
    const std::string oldest = runs.back().date();
    if (oldest == runs.front().date()) {
      return Status::ResourceExhausted("more than " + std::to_string(page_size) + " runs of campaign '" +
                                       run.campaign() + "' on " + oldest + ": its baseline cannot be listed");
    }
    // The oldest date's runs may go on past the page: the next page starts with them.
    ACS_ASSIGN_OR_RETURN(before, NextDay(oldest));
  }
}

StatusOr<CampaignReport> ReportOfRun(const CampaignRunSource& source, const acs::v1::CampaignRun& run) {
  ACS_ASSIGN_OR_RETURN(std::optional<acs::v1::CampaignRun> previous, source.PreviousRun(run));
  return ReportAgainst(source, run, previous);
}

StatusOr<CampaignReport> ReportAgainst(const CampaignRunSource& source, const acs::v1::CampaignRun& stored,
                                       const std::optional<acs::v1::CampaignRun>& previous) {
  acs::v1::CampaignRun run = stored;
  if (run.spec_json().empty()) {
    ACS_ASSIGN_OR_RETURN(run, source.Run(stored.id()));
  }
  ACS_ASSIGN_OR_RETURN(CampaignSpec spec, ParseCampaignSpec(run.spec_json(), run.campaign() + " (stored spec)"));
  ACS_ASSIGN_OR_RETURN(RunResults today, GatherRunResults(source, run));
  std::optional<RunResults> baseline;
  if (previous) {
    ACS_ASSIGN_OR_RETURN(baseline, GatherRunResults(source, *previous));
  }
  // The header as the server stored it with the run (the workers and predictors of that
  // night, also for the report of an old run); the server's view now for older runs.
  ReportHeader header;
  if (!HeaderFromEnvironment(run.environment_json(), &header)) header = source.CurrentHeader();
  return CompareRuns(run.campaign(), spec.compare, today, baseline, header);
}

}  // namespace acs
