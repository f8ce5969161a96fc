#include "server/http_gateway.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <cctype>
#include <chrono>

#include "server/acs_messages.h"
#include "server/http_body_pipe.h"
#include "server/http_campaigns.h"
#include "server/http_errors.h"
#include "server/http_static.h"

namespace acs::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kJson = "application/json";

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void Fail(httplib::Response& res, const Status& status) {
  const HttpError error = ToHttp(status);
  res.status = error.status;
  if (error.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(error.body + "\n", kJson);
}

// The message in protobuf's JSON mapping, on one line, every field present and named as
// in the proto (as `acs show --json` prints it).
StatusOr<std::string> JsonOf(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(message, &json, options); !s.ok()) {
    return Status::Internal("the answer as JSON: " + s.ToString());
  }
  return json;
}

void Send(httplib::Response& res, const google::protobuf::Message& message) {
  StatusOr<std::string> json = JsonOf(message);
  if (!json.ok()) return Fail(res, json.status());
  res.status = 200;
  res.set_content(*json + "\n", kJson);
}

// The service's answer: `fill(value, &reply)` sent when OK, the error otherwise.
template <typename Reply, typename T, typename Fill>
void Answer(const StatusOr<T>& result, httplib::Response& res, Fill fill) {
  if (!result.ok()) return Fail(res, result.status());
  Reply reply;
  fill(*result, &reply);
  Send(res, reply);
}

// A non-negative integer given as `name`; InvalidArgument naming it otherwise.
StatusOr<int64_t> CountParam(const std::string& name, const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument(name + " must be a non-negative integer, not '" + text + "'");
  }
  return std::stoll(text);
}

// A job state as the API names it ("SUCCEEDED", or "succeeded") as stored; "" for any.
StatusOr<std::string> StoredStateParam(const std::string& text) {
  if (text.empty()) return std::string();
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  acs::v1::JobState state = acs::v1::JOB_STATE_UNSPECIFIED;
  if (!acs::v1::JobState_Parse(upper, &state) || StoredJobState(state).empty()) {
    return Status::InvalidArgument("unknown job state '" + text + "'");
  }
  return StoredJobState(state);
}

// Leaves the request's Accept-Encoding offering gzip at most ("gzip" when it names gzip,
// none otherwise): cpp-httplib picks brotli whenever "br" is offered, and Debian's build
// compresses at brotli's top quality with no setting (seconds for a large JSON page; gzip
// is about 15 times faster).
void OfferGzipAtMost(httplib::Request& req) {
  if (!req.has_header("Accept-Encoding")) return;
  const bool gzip = req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
  req.headers.erase("Accept-Encoding");
  if (gzip) req.headers.emplace("Accept-Encoding", "gzip");
}

// Splits HOST:PORT ("[::1]:80" gives "::1"); InvalidArgument otherwise.
Status SplitHostPort(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  StatusOr<int64_t> number =
      colon == std::string::npos ? Status::InvalidArgument("") : CountParam("the port", listen.substr(colon + 1));
  if (colon == 0 || !number.ok() || *number > 65535) {
    return Status::InvalidArgument("--http-listen must be HOST:PORT, not '" + listen + "'");
  }
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  *port = static_cast<int>(*number);
  return Status::Ok();
}

}  // namespace

// Holds one of the gateway's max_streams places while an event stream lasts, and the
// stream's watch (its place in the user's cap), given back first.
class HttpGateway::StreamSlot {
 public:
  explicit StreamSlot(HttpGateway* gateway) : gateway_(gateway) {
    held_ = gateway_->streams_.fetch_add(1) < gateway_->options_.max_streams;
    if (!held_) gateway_->streams_.fetch_sub(1);
  }
  ~StreamSlot() { Release(); }
  // Gives both places back (the watch's first); idempotent. Called before the stream's end
  // is sent, so that a client that saw the end and opens the next stream finds them free.
  void Release() {
    watch.reset();
    if (held_) gateway_->streams_.fetch_sub(1);
    held_ = false;
  }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  bool held() const { return held_; }
  std::unique_ptr<JobService::OpenedWatch> watch;

 private:
  HttpGateway* gateway_;
  bool held_ = false;
};

HttpGateway::HttpGateway(JobService* service, const Authenticator* auth, HttpGatewayOptions options)
    : service_(service), auth_(auth), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {}

HttpGateway::~HttpGateway() { Stop(); }

Status HttpGateway::Start() {
  if (thread_.joinable()) return Status::FailedPrecondition("the HTTP gateway is started already");
  std::string host;
  int port = 0;
  ACS_RETURN_IF_ERROR(SplitHostPort(options_.listen, &host, &port));
  if (auth_->no_auth() && !IsLoopbackAddress(options_.listen)) {
    return Status::InvalidArgument("--no-auth is only allowed on a loopback address, not '" + options_.listen + "'");
  }
  const size_t threads = static_cast<size_t>(std::max(1, options_.max_streams) + std::max(1, options_.request_threads));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(static_cast<size_t>(std::max<int64_t>(1, options_.max_body_bytes)));
  // An answer goes out at once, not after the client's delayed ACK of its headers (about
  // 40 ms per answer after a keep-alive connection's first).
  server_->set_tcp_nodelay(true);
  // Answers compress with gzip, not brotli. The library passes its own, non-const request.
  server_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    OfferGzipAtMost(const_cast<httplib::Request&>(req));
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors of httplib itself (no route, a body too large) answer in the API's error form.
  server_->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        const Status s = res.status == 404 ? Status::NotFound("no route " + req.method + " " + req.path)
                         : res.status == 413
                             ? Status::ResourceExhausted("the request body is larger than this server takes")
                             : Status::InvalidArgument("a malformed request (HTTP " + std::to_string(res.status) + ")");
        const int status = res.status;
        Fail(res, s);
        res.status = status;
        return httplib::Server::HandlerResponse::Handled;
      }));
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    Fail(res, Status::Internal(what));
  });
  Route("GET", "/healthz", "healthz", &HttpGateway::Healthz);
  Route("GET", "/metrics", "metrics", &HttpGateway::Metrics);
  Route("GET", "/api/v1/jobs", "jobs.list", &HttpGateway::ListJobs);
  Route("POST", "/api/v1/jobs", "jobs.submit", &HttpGateway::SubmitJob);
  Route("GET", "/api/v1/jobs/([^/]+)", "jobs.get", &HttpGateway::GetJob);
  Route("POST", "/api/v1/jobs/([^/]+)/cancel", "jobs.cancel", &HttpGateway::CancelJob);
  Route("GET", "/api/v1/jobs/([^/]+)/events", "jobs.events", &HttpGateway::WatchJob);
  Route("GET", "/api/v1/jobs/([^/]+)/artifacts/([^/]+)", "jobs.artifact", &HttpGateway::DownloadArtifact);
  Route("GET", "/api/v1/devices", "devices", &HttpGateway::ListDevices);
  Route("GET", "/api/v1/search-space", "search_space", &HttpGateway::GetSearchSpace);
  Route("GET", "/api/v1/predictors/([^/]+)", "predictors.status", &HttpGateway::PredictorStatus);
  Route("GET", "/api/v1/predictors/([^/]+)/evaluation", "predictors.evaluation", &HttpGateway::EvaluatePredictor);
  server_->Post("/api/v1/uploads/(model|dataset)",
                [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
                  const Clock::time_point start = Clock::now();
                  Upload(req, res, reader);
                  if (res.status >= 400) res.set_header("Connection", "close");  // the body may be left unread
                  metrics_.Record("uploads", res.status < 0 ? 200 : res.status, SecondsSince(start));
                });
  AddCampaignRoutes(server_.get(), service_, auth_);  // server/http_campaigns.h
  if (!options_.web_root.empty()) ACS_RETURN_IF_ERROR(ServeStaticFiles(server_.get(), options_.web_root));  // last

  const bool bound = port == 0 ? (port = server_->bind_to_any_port(host)) > 0 : server_->bind_to_port(host, port);
  if (!bound) return Status::Unavailable("cannot listen for HTTP on '" + options_.listen + "'");
  port_ = port;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void HttpGateway::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;  // open streams notice within about a second
  server_->stop();
  thread_.join();
}

void HttpGateway::Route(const std::string& method, const std::string& pattern, const std::string& route,
                        Handler handler) {
  auto timed = [this, route, handler](const httplib::Request& req, httplib::Response& res) {
    const Clock::time_point start = Clock::now();
    (this->*handler)(req, res);
    metrics_.Record(route, res.status < 0 ? 200 : res.status, SecondsSince(start));
  };
  if (method == "GET") {
    server_->Get(pattern, timed);
  } else {
    server_->Post(pattern, timed);
  }
}

bool HttpGateway::Caller(const httplib::Request& req, httplib::Response& res, Principal* who) const {
  StatusOr<Principal> caller = auth_->Authenticate(req.get_header_value("Authorization"));
  if (!caller.ok()) {
    Fail(res, caller.status());
    return false;
  }
  *who = *caller;
  return true;
}

void HttpGateway::Healthz(const httplib::Request&, httplib::Response& res) {
  res.status = 200;
  res.set_content("ok\n", "text/plain");
}

void HttpGateway::Metrics(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  StatusOr<ServiceCounts> counts = service_->Counts();
  if (!counts.ok()) return Fail(res, counts.status());
  std::string text;
  AppendCountsText(*counts, &text);
  text += "# HELP acs_http_event_streams Open event streams.\n# TYPE acs_http_event_streams gauge\n";
  text += "acs_http_event_streams " + std::to_string(streams_.load()) + "\n";
  metrics_.AppendText(&text);
  res.status = 200;
  res.set_content(text, "text/plain; version=0.0.4");
}

void HttpGateway::ListJobs(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  JobListQuery query;
  StatusOr<std::string> state = StoredStateParam(req.get_param_value("state"));
  if (!state.ok()) return Fail(res, state.status());
  query.state = *state;
  if (req.has_param("page_size")) {
    StatusOr<int64_t> size = CountParam("page_size", req.get_param_value("page_size"));
    if (!size.ok()) return Fail(res, size.status());
    query.page_size = static_cast<int>(std::min<int64_t>(*size, 1 << 20));
  }
  query.page_token = req.get_param_value("page_token");
  if (req.has_param("offset")) {
    StatusOr<int64_t> offset = CountParam("offset", req.get_param_value("offset"));
    if (!offset.ok()) return Fail(res, offset.status());
    query.offset = *offset;
  }
  const std::string view = req.get_param_value("view");
  if (view != "" && view != "full" && view != "summary") {
    return Fail(res, Status::InvalidArgument("view must be full or summary, not '" + view + "'"));
  }
  StatusOr<JobPage> page = service_->List(who, query);
  if (!page.ok()) return Fail(res, page.status());
  // Gzipped here when the client takes gzip (OfferGzipAtMost), from the pages kept by
  // job_list_; the library, offered no encoding, then sends the body as it is.
  const bool gzip = req.get_header_value("Accept-Encoding") == "gzip" && !req.has_header("Range");
  StatusOr<std::string> body = job_list_.Body(*page, view == "summary", gzip);
  if (!body.ok()) return Fail(res, body.status());
  if (gzip) {
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    res.set_header("Content-Encoding", "gzip");
  }
  res.status = 200;
  res.set_content(*body, kJson);
}

void HttpGateway::SubmitJob(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  acs::v1::SubmitJobRequest request;
  if (auto s = google::protobuf::util::JsonStringToMessage(req.body, &request); !s.ok()) {
    return Fail(res, Status::InvalidArgument("the body is not a SubmitJobRequest in JSON: " + s.ToString()));
  }
  Answer<acs::v1::Job>(service_->Submit(who, RequestOf(request)), res, FillJob);
}

void HttpGateway::GetJob(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  Answer<acs::v1::Job>(service_->Get(who, req.matches[1]), res, FillJob);
}

void HttpGateway::CancelJob(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  Answer<acs::v1::Job>(service_->Cancel(who, req.matches[1]), res, FillJob);
}

void HttpGateway::WatchJob(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  // The cursor: Last-Event-ID (sent by a reconnecting EventSource) wins over ?after=.
  const std::string cursor = req.has_header("Last-Event-ID") ? req.get_header_value("Last-Event-ID")
                             : req.has_param("after")        ? req.get_param_value("after")
                                                             : "0";
  StatusOr<int64_t> after = CountParam("the event cursor (Last-Event-ID or after)", cursor);
  if (!after.ok()) return Fail(res, after.status());
  auto slot = std::make_shared<StreamSlot>(this);
  if (!slot->held()) {
    res.set_header("Retry-After", "5");
    return Fail(res, Status::Unavailable("this server has " + std::to_string(options_.max_streams) +
                                         " event streams open, its limit; retry later"));
  }
  StatusOr<std::unique_ptr<JobService::OpenedWatch>> opened = service_->OpenWatch(who, req.matches[1], *after);
  if (!opened.ok()) return Fail(res, opened.status());
  slot->watch = std::move(*opened);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider("text/event-stream", [this, slot](size_t, httplib::DataSink& sink) {
    Clock::time_point last_write = Clock::now();
    bool lost = false;
    auto write = [&](const std::string& text) {
      last_write = Clock::now();
      lost = lost || !sink.write(text.data(), text.size());
      return !lost;
    };
    auto send = [&](const JobEventView& event) {
      acs::v1::JobEvent message;
      FillEvent(event, &message);
      StatusOr<std::string> json = JsonOf(message);
      if (!json.ok()) {
        write("event: error\ndata: " + ToHttp(json.status()).body + "\n\n");
        return false;
      }
      return write("id: " + std::to_string(event.seq) + "\nevent: " + event.kind + "\ndata: " + *json + "\n\n");
    };
    // Called about once a second while the job is quiet: a peer that closed its end is
    // noticed then (the sink peeks at the socket, writing nothing), one that vanished
    // without closing at the next heartbeat comment.
    auto gone = [&] {
      lost = lost || !sink.is_writable();
      if (!lost && SecondsSince(last_write) >= options_.heartbeat_seconds) write(": heartbeat\n\n");
      return lost || stopping_.load();
    };
    const Status s = slot->watch->Run(send, gone);
    if (!s.ok() && !lost) write("event: error\ndata: " + ToHttp(s).body + "\n\n");
    slot->Release();
    sink.done();
    return !lost;
  });
}

void HttpGateway::DownloadArtifact(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  const std::string job_id = req.matches[1], name = req.matches[2];
  // First pass, up to the first piece: the service checks access and the blob (a damaged
  // one is an error answered here, before any byte) and names the size and digest.
  ArtifactPiece first;
  const Status checked = service_->DownloadArtifact(who, job_id, name, [&](const ArtifactPiece& piece) {
    first = piece;
    return false;
  });
  if (!checked.ok()) return Fail(res, checked);
  if (!first.first) return Fail(res, Status::Internal("the artifact's first piece did not come"));
  res.status = 200;
  res.set_header("X-Acs-Sha256", first.sha256);
  res.set_header("X-Acs-Size", std::to_string(first.total_bytes));
  res.set_header("Content-Disposition", "attachment; filename=\"" + name + "\"");
  if (static_cast<int64_t>(first.data.size()) == first.total_bytes) {
    res.set_content(first.data, "application/octet-stream");
    return;
  }
  // Larger ones stream in a second pass. Should the blob fail now, the answer stops short
  // of its Content-Length and the connection closes: never a complete-looking artifact.
  res.set_content_provider(static_cast<size_t>(first.total_bytes), "application/octet-stream",
                           [this, who, job_id, name](size_t offset, size_t, httplib::DataSink& sink) {
                             if (offset != 0) return false;  // all of it goes in the first call
                             const Status s =
                                 service_->DownloadArtifact(who, job_id, name, [&](const ArtifactPiece& piece) {
                                   return sink.write(piece.data.data(), piece.data.size());
                                 });
                             return s.ok();
                           });
}

void HttpGateway::Upload(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  int64_t announced = 0;
  if (req.has_header("Content-Length")) {
    StatusOr<int64_t> length = CountParam("Content-Length", req.get_header_value("Content-Length"));
    if (!length.ok()) return Fail(res, length.status());
    announced = *length;
  }
  StatusOr<BlobWriter::Committed> committed = Status::Internal("not uploaded");
  {
    // Reading stops when the pipe goes, before the answer: httplib marks a body left
    // unread in `res`, which the answer then overwrites.
    BodyPipe body(reader);
    bool first = true;
    auto next = [&](UploadPiece* piece) {
      piece->total_bytes = first ? announced : 0;
      first = false;
      return body.Next(&piece->data);
    };
    committed = service_->Upload(who, req.matches[1], next, [&] { return body.broken(); });
  }
  Answer<acs::v1::UploadReply>(committed, res, [](const BlobWriter::Committed& blob, acs::v1::UploadReply* out) {
    out->set_sha256(blob.sha256);
    out->set_bytes(blob.bytes);
    out->set_deduplicated(blob.deduplicated);
  });
}

void HttpGateway::ListDevices(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  Answer<acs::v1::ListDevicesReply>(service_->Devices(who), res,
                                    [](const std::vector<DeviceView>& devices, acs::v1::ListDevicesReply* out) {
                                      for (const DeviceView& d : devices) FillDevice(d, out->add_devices());
                                    });
}

void HttpGateway::GetSearchSpace(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  Answer<acs::v1::SearchSpaceChoices>(service_->Choices(who), res, FillChoices);
}

void HttpGateway::PredictorStatus(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  Answer<acs::v1::PredictorStatus>(service_->PredictorStatus(who, req.matches[1]), res, FillPredictorStatus);
}

void HttpGateway::EvaluatePredictor(const httplib::Request& req, httplib::Response& res) {
  Principal who;
  if (!Caller(req, res, &who)) return;
  const std::string device_class = req.matches[1];
  Answer<acs::v1::PredictorEvaluation>(service_->EvaluatePredictor(who, device_class), res,
                                       [&](const predictors::EvalReport& report, acs::v1::PredictorEvaluation* out) {
                                         FillEvaluation(device_class, report, out);
                                       });
}

}  // namespace acs::server
