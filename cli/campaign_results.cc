#include "cli/campaign_results.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/job_transfers.h"

namespace acs::cli {

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

// The server's view now: the client's version, the workers and predictors it lists.
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

constexpr int kRunPage = 200;  // runs listed per ListCampaignRuns call when looking for a baseline

class RemoteRunSource final : public CampaignRunSource {
 public:
  explicit RemoteRunSource(const Remote& r) : r_(r) {}
  StatusOr<acs::v1::CampaignRun> Run(const std::string& id) const override { return FetchRun(r_, id); }
  StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const acs::v1::CampaignRun& run) const override {
    return cli::PreviousRun(r_, run);
  }
  StatusOr<acs::v1::Job> Job(const std::string& id) const override { return FetchJob(r_, id); }
  StatusOr<std::string> JobReport(const std::string& job_id) const override {
    return ReadArtifact(r_, job_id, "report.json");
  }
  ReportHeader CurrentHeader() const override { return Header(r_); }

 private:
  const Remote& r_;
};

}  // namespace

StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const Remote& r, const acs::v1::CampaignRun& run) {
  // The listing has no owner filter: an admin's pages hold every owner's runs.
  return PreviousRunByPages(
      run, kRunPage,
      [&r, &run](const std::string& before_date, int page_size) -> StatusOr<std::vector<acs::v1::CampaignRun>> {
        acs::v1::ListCampaignRunsRequest req;
        req.set_campaign(run.campaign());
        req.set_before_date(before_date);
        req.set_page_size(page_size);
        acs::v1::ListCampaignRunsReply reply;
        ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::ListCampaignRuns, req, &reply));
        return std::vector<acs::v1::CampaignRun>(reply.runs().begin(), reply.runs().end());
      });
}

StatusOr<CampaignReport> ReportOfRun(const Remote& r, const acs::v1::CampaignRun& run) {
  return acs::ReportOfRun(RemoteRunSource(r), run);
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
