#include "server/http_campaigns.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

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

}  // namespace

void AddCampaignRoutes(httplib::Server* server, JobService* service, const Authenticator* auth) {
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
}

}  // namespace acs::server
