#include "cli/campaign_results.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/job_transfers.h"

namespace acs::cli {
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

StatusOr<RunResults> GatherRunResults(const Remote& r, const acs::v1::CampaignRun& run) {
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
    ACS_ASSIGN_OR_RETURN(acs::v1::Job job, FetchJob(r, cell.job_id()));
    std::string report;
    const bool has_report = std::any_of(job.artifacts().begin(), job.artifacts().end(),
                                        [](const acs::v1::Artifact& a) { return a.name() == "report.json"; });
    if (has_report) {
      StatusOr<std::string> text = ReadArtifact(r, job.id(), "report.json");
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

StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const Remote& r, const acs::v1::CampaignRun& run) {
  acs::v1::ListCampaignRunsRequest req;
  req.set_campaign(run.campaign());
  req.set_before_date(run.date());
  acs::v1::ListCampaignRunsReply reply;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::ListCampaignRuns, req, &reply));
  for (const acs::v1::CampaignRun& prev : reply.runs()) {
    if (prev.owner() == run.owner()) return std::optional<acs::v1::CampaignRun>(prev);
  }
  return std::optional<acs::v1::CampaignRun>();
}

StatusOr<acs::v1::CampaignRun> FetchRun(const Remote& r, const std::string& id, const std::string& campaign,
                                        const std::string& date) {
  acs::v1::GetCampaignRunRequest req;
  req.set_id(id);
  req.set_campaign(campaign);
  req.set_date(date);
  acs::v1::CampaignRun run;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::GetCampaignRun, req, &run));
  return run;
}

namespace {

ReportHeader Header(const Remote& r) {
  ReportHeader h;
#ifdef ACS_PROJECT_VERSION
  h.acs_version = ACS_PROJECT_VERSION;
#endif
  acs::v1::ListDevicesReply devices;
  if (!r.Unary(&acs::v1::Acs::Stub::ListDevices, acs::v1::ListDevicesRequest(), &devices).ok()) return h;
  std::vector<std::string> classes;
  for (const acs::v1::Device& d : devices.devices()) {
    h.workers.push_back(d.worker_id() + " (" + d.device_class() + ", " + d.worker_version() + ", " +
                        (d.online() ? "online" : "offline") + ")");
    if (std::find(classes.begin(), classes.end(), d.device_class()) == classes.end()) {
      classes.push_back(d.device_class());
    }
  }
  for (const std::string& c : classes) {
    acs::v1::PredictorStatusRequest req;
    req.set_device_class(c);
    acs::v1::PredictorStatus status;
    if (!r.Unary(&acs::v1::Acs::Stub::GetPredictorStatus, req, &status).ok()) continue;
    h.predictors.push_back(c + ": version " + std::to_string(status.version()) + " (" + status.state() + ")");
  }
  return h;
}

}  // namespace

StatusOr<CampaignReport> ReportOfRun(const Remote& r, const acs::v1::CampaignRun& stored) {
  acs::v1::CampaignRun run = stored;
  if (run.spec_json().empty()) {
    ACS_ASSIGN_OR_RETURN(run, FetchRun(r, stored.id()));
  }
  ACS_ASSIGN_OR_RETURN(CampaignSpec spec, ParseCampaignSpec(run.spec_json(), run.campaign() + " (stored spec)"));
  ACS_ASSIGN_OR_RETURN(RunResults today, GatherRunResults(r, run));
  ACS_ASSIGN_OR_RETURN(std::optional<acs::v1::CampaignRun> previous, PreviousRun(r, run));
  std::optional<RunResults> baseline;
  if (previous) {
    ACS_ASSIGN_OR_RETURN(baseline, GatherRunResults(r, *previous));
  }
  // The header as the server stored it with the run (the workers and predictors of that
  // night, also for the report of an old run); the server's view now for older runs.
  ReportHeader header;
  if (!HeaderFromEnvironment(run.environment_json(), &header)) header = Header(r);
  return CompareRuns(run.campaign(), spec.compare, today, baseline, header);
}

StatusOr<int> WriteReport(const Remote& r, const CampaignReport& report) {
  const std::string out = r.flags.Get("out");
  std::string format = r.flags.Get("format");
  if (format.empty()) {
    const std::string ext = std::filesystem::path(out).extension().string();
    format = ext == ".html" || ext == ".json" ? ext.substr(1) : "md";
  }
  ACS_ASSIGN_OR_RETURN(std::string text, RenderCampaignReport(report, format, r.flags.Get("job-link")));
  if (out.empty() || out == "-") {
    std::cout << text;
  } else {
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) return Status::Unavailable("cannot write the report to '" + out + "'");
    std::cerr << "report: " << out << "\n";
  }
  return report.ExitCode();
}

}  // namespace acs::cli
