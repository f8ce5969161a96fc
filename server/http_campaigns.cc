#include "server/http_campaigns.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include "campaigns/run_comparison.h"
#include "server/acs_messages.h"
#include "server/campaign_messages.h"
#include "server/campaign_runs.h"
#include "server/http_errors.h"

namespace acs::server {
namespace {

constexpr const char* kJson = "application/json";

void Fail(httplib::Response& res, const Status& status) {
  const HttpError error = ToHttp(status);
  res.status = error.status;
  if (error.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(error.body + "\n", kJson);
}

void Send(httplib::Response& res, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(message, &json, options); !s.ok()) {
    return Fail(res, Status::Internal("the answer as JSON: " + s.ToString()));
  }
  res.status = 200;
  res.set_content(json + "\n", kJson);
}

// The runs, jobs and reports `who` may read, through the service's rules.
class ServiceRunSource final : public CampaignRunSource {
 public:
  ServiceRunSource(JobService* service, const Principal& who) : service_(service), who_(who) {}
  StatusOr<acs::v1::CampaignRun> Run(const std::string& id) const override {
    ACS_ASSIGN_OR_RETURN(CampaignRunRecord run, CampaignRuns(service_->store(), service_).Get(who_, id));
    acs::v1::CampaignRun out;
    FillCampaignRun(run, &out);
    return out;
  }
  StatusOr<std::optional<acs::v1::CampaignRun>> PreviousRun(const acs::v1::CampaignRun& run) const override {
    // One row of the owner's runs, however many other owners' runs an admin sees.
    CampaignRunQuery query;
    query.campaign = run.campaign();
    query.before_date = run.date();
    query.owner = run.owner();
    query.limit = 1;
    ACS_ASSIGN_OR_RETURN(std::vector<CampaignRunRecord> runs,
                         CampaignRuns(service_->store(), service_).List(who_, query));
    if (runs.empty()) return std::optional<acs::v1::CampaignRun>();
    acs::v1::CampaignRun out;
    FillCampaignRun(runs[0], &out);
    return std::optional<acs::v1::CampaignRun>(std::move(out));
  }
  StatusOr<acs::v1::Job> Job(const std::string& id) const override {
    ACS_ASSIGN_OR_RETURN(JobRecord job, service_->Get(who_, id));
    acs::v1::Job out;
    FillJob(job, &out);
    return out;
  }
  StatusOr<std::string> JobReport(const std::string& job_id) const override {
    std::string text;
    ACS_RETURN_IF_ERROR(service_->DownloadArtifact(who_, job_id, "report.json", [&text](const ArtifactPiece& piece) {
      text += piece.data;
      return true;
    }));
    return text;
  }
  ReportHeader CurrentHeader() const override {
    ReportHeader header;
    HeaderFromEnvironment(service_->Environment().dump(), &header);
    return header;
  }

 private:
  JobService* service_;
  const Principal& who_;
};

// The run compared with its owner's previous run, as the report's JSON (the CLI's
// `--format json`), everything read as `who` may see it; from `cache` when neither run
// changed since it was computed (ComparisonFingerprint), and stored there when both ended.
StatusOr<std::string> ComparisonJson(JobService* service, ComparisonCache* cache, const Principal& who,
                                     const std::string& id) {
  const ServiceRunSource source(service, who);
  ACS_ASSIGN_OR_RETURN(acs::v1::CampaignRun run, source.Run(id));
  ACS_ASSIGN_OR_RETURN(std::optional<acs::v1::CampaignRun> previous, source.PreviousRun(run));
  const std::optional<std::string> fingerprint = ComparisonFingerprint(run, previous);
  // A run is read by its owner or an admin, who may see other jobs: one entry for each.
  const std::string key = run.id() + (who.role == Role::kAdmin ? " admin" : " owner");
  if (fingerprint) {
    if (std::optional<std::string> hit = cache->Get(key, *fingerprint)) return *std::move(hit);
  }
  ACS_ASSIGN_OR_RETURN(CampaignReport report, ReportAgainst(source, run, previous));
  ACS_ASSIGN_OR_RETURN(std::string json, RenderCampaignReport(report, "json"));
  if (fingerprint) cache->Put(key, *fingerprint, json);
  return json;
}

}  // namespace

void AddCampaignRoutes(httplib::Server* server, JobService* service, const Authenticator* auth,
                       std::shared_ptr<ComparisonCache> cache) {
  if (cache == nullptr) cache = std::make_shared<ComparisonCache>();
  server->Get("/api/v1/campaigns/runs", [service, auth](const httplib::Request& req, httplib::Response& res) {
    StatusOr<Principal> who = auth->Authenticate(req.get_header_value("Authorization"));
    if (!who.ok()) return Fail(res, who.status());
    CampaignRunQuery query;
    query.campaign = req.get_param_value("campaign");
    query.before_date = req.get_param_value("before_date");
    const std::string size = req.get_param_value("page_size");
    if (!size.empty()) {
      if (size.size() > 6 || size.find_first_not_of("0123456789") != std::string::npos) {
        return Fail(res, Status::InvalidArgument("page_size: expected a number, got '" + size + "'"));
      }
      query.limit = std::stoi(size);
    }
    StatusOr<std::vector<CampaignRunRecord>> runs = CampaignRuns(service->store(), service).List(*who, query);
    if (!runs.ok()) return Fail(res, runs.status());
    acs::v1::ListCampaignRunsReply reply;
    for (const CampaignRunRecord& r : *runs) FillCampaignRun(r, reply.add_runs());
    Send(res, reply);
  });
  server->Get("/api/v1/campaigns/runs/([^/]+)", [service, auth](const httplib::Request& req, httplib::Response& res) {
    StatusOr<Principal> who = auth->Authenticate(req.get_header_value("Authorization"));
    if (!who.ok()) return Fail(res, who.status());
    StatusOr<CampaignRunRecord> run = CampaignRuns(service->store(), service).Get(*who, req.matches[1]);
    if (!run.ok()) return Fail(res, run.status());
    acs::v1::CampaignRun reply;
    FillCampaignRun(*run, &reply);
    Send(res, reply);
  });
  server->Get("/api/v1/campaigns/runs/([^/]+)/comparison",
              [service, auth, cache](const httplib::Request& req, httplib::Response& res) {
                StatusOr<Principal> who = auth->Authenticate(req.get_header_value("Authorization"));
                if (!who.ok()) return Fail(res, who.status());
                StatusOr<std::string> json = ComparisonJson(service, cache.get(), *who, req.matches[1]);
                if (!json.ok()) return Fail(res, json.status());
                res.status = 200;
                res.set_content(*json, kJson);
              });
}

}  // namespace acs::server
