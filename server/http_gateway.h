// The client API over HTTP/JSON (cpp-httplib): a thin adapter over the job service
// (server/job_service.h), as AcsService is over gRPC. Each route authenticates the caller
// with the same Authenticator, translates, calls the service and answers the API's proto
// messages in protobuf's JSON mapping; errors convert in ToHttp (server/http_errors.h)
// alone. Routes (docs/service.md):
//   GET  /healthz                                   no auth: "ok"
//   GET  /metrics                                   any valid token: Prometheus text
//   GET  /api/v1/jobs?state=&page_size=&page_token=&view= ListJobsReply (view=summary: the
//                                                   jobs table's fields only, JobSummaryFields)
//   POST /api/v1/jobs                               SubmitJobRequest -> Job
//   GET  /api/v1/jobs/{id}                          Job
//   POST /api/v1/jobs/{id}/cancel                   Job
//   GET  /api/v1/jobs/{id}/events[?after=N]         Server-Sent Events of JobEvent
//   GET  /api/v1/jobs/{id}/artifacts/{name}         the artifact's bytes
//   POST /api/v1/uploads/{model|dataset}            raw body -> UploadReply
//   GET  /api/v1/devices                            ListDevicesReply
//   GET  /api/v1/search-space                       SearchSpaceChoices
//   GET  /api/v1/predictors/{device_class}          PredictorStatus
//   GET  /api/v1/predictors/{device_class}/evaluation  PredictorEvaluation
// The process must ignore SIGPIPE (acs-server does): a peer that goes away mid-answer
// would otherwise end it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "server/auth.h"
#include "server/http_jobs_list.h"
#include "server/http_metrics.h"
#include "server/job_service.h"

namespace httplib {
class ContentReader;
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace acs::server {

struct HttpGatewayOptions {
  std::string listen = "127.0.0.1:8080";      // HOST:PORT; port 0 takes a free port (see port())
  int max_streams = 64;                       // open event streams; past it: 503
  int request_threads = 8;                    // threads for all other requests, beside the streams'
  double heartbeat_seconds = 15;              // an idle event stream gets a comment at least this
                                              // often (checked about once a second, as is a
                                              // client that closed the stream)
  int64_t max_body_bytes = int64_t{1} << 30;  // larger request bodies: 413 (uploads' own limits
                                              // and quota are the job service's)
  std::string web_root;                       // the dashboard's files served at / (server/http_static.h);
                                              // "" serves none
};

class HttpGateway final {
 public:
  // Both must outlive the gateway.
  HttpGateway(JobService* service, const Authenticator* auth, HttpGatewayOptions options);
  ~HttpGateway();  // Stop()
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Binds and serves from threads of its own. InvalidArgument for a listen address that is
  // not HOST:PORT, or for no-auth on a host that is not loopback (as for gRPC); Unavailable
  // when the address cannot be bound; FailedPrecondition when started already.
  Status Start();
  // The bound port (after Start).
  int port() const { return port_; }
  // Ends open event streams (within about a second), stops accepting and joins. Idempotent.
  void Stop();

 private:
  class StreamSlot;
  using Handler = void (HttpGateway::*)(const httplib::Request&, httplib::Response&);

  // Registers `handler` for `method` and the path regex `pattern`; `route` names it in metrics.
  void Route(const std::string& method, const std::string& pattern, const std::string& route, Handler handler);
  // The caller named by the request's bearer token; the error answered in `res` when none.
  bool Caller(const httplib::Request& req, httplib::Response& res, Principal* who) const;

  void Healthz(const httplib::Request& req, httplib::Response& res);
  void Metrics(const httplib::Request& req, httplib::Response& res);
  void ListJobs(const httplib::Request& req, httplib::Response& res);
  void SubmitJob(const httplib::Request& req, httplib::Response& res);
  void GetJob(const httplib::Request& req, httplib::Response& res);
  void CancelJob(const httplib::Request& req, httplib::Response& res);
  void WatchJob(const httplib::Request& req, httplib::Response& res);
  void DownloadArtifact(const httplib::Request& req, httplib::Response& res);
  void Upload(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void ListDevices(const httplib::Request& req, httplib::Response& res);
  void GetSearchSpace(const httplib::Request& req, httplib::Response& res);
  void PredictorStatus(const httplib::Request& req, httplib::Response& res);
  void EvaluatePredictor(const httplib::Request& req, httplib::Response& res);

  JobService* service_;
  const Authenticator* auth_;
  HttpGatewayOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> streams_{0};  // open event streams
  HttpMetrics metrics_;
  JobListWriter job_list_;  // the job list's JSON
};

}  // namespace acs::server
