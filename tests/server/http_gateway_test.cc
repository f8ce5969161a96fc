// The HTTP/JSON gateway (server/http_gateway.h) on an ephemeral loopback port, over a real
// JobService on a real SQLite store, asked by cpp-httplib's client: tokens and roles,
// visibility, JSON of the API's messages, job events as Server-Sent Events with resume,
// the stream caps (a closed stream's places given back), keep-alive connections without
// Nagle's delay, gzip rather than brotli, artifacts (and a damaged one), uploads, the
// predictor evaluation's chart points, /healthz and /metrics.
#include "server/http_gateway.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/tcp.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agents/agent_names.h"
#include "core/policy.h"
#include "core/sha256.h"
#include "predictors/predictor.h"
#include "tests/server/gateway_fixture.h"
#include "tests/server/http_test_clients.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::AcceptedSockets;
using test::OpenStream;

// One event of a text/event-stream body.
struct SseEvent {
  std::string id, event;
  json data;
};

// The events of an SSE body (comments skipped).
std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> events;
  SseEvent current;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(start, end - start);
    start = end + 1;
    if (line.empty()) {
      if (!current.id.empty() || !current.event.empty()) events.push_back(current);
      current = {};
    } else if (line.rfind("id: ", 0) == 0) {
      current.id = line.substr(4);
    } else if (line.rfind("event: ", 0) == 0) {
      current.event = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      current.data = json::parse(line.substr(6));
    }
  }
  return events;
}

class HttpGatewayTest : public test::GatewayFixture {
 protected:
  HttpGatewayTest() : GatewayFixture("acs_http_gateway_") {}
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as acs-server does: a peer gone mid-answer must not end the process
    JobServiceOptions options;
    options.max_upload_bytes = 100;
    options.max_watchers_per_user = 1;
    HttpGatewayOptions http;
    http.max_streams = 2;
    http.heartbeat_seconds = 3600;  // none: a closed stream is noticed without one
    StartGateway(options, http);
    if (HasFatalFailure()) return;
    store_ = parts_.store.get();
    alice_ = store_->CreateToken("alice", Role::kUser).value();
    bob_ = store_->CreateToken("bob", Role::kUser).value();
    admin_ = store_->CreateToken("root", Role::kAdmin).value();
    worker_ = store_->CreateToken("worker-1", Role::kWorker).value();
  }

  httplib::Client Client() { return httplib::Client("127.0.0.1", gateway_->port()); }
  httplib::Result Get(const std::string& path, const std::string& token, httplib::Headers headers = {}) {
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return Client().Get(path.c_str(), headers);
  }
  // The error code of a JSON error body.
  static std::string ErrorCode(const httplib::Result& r) {
    const json body = json::parse(r->body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "no error: " + r->body;
  }

  std::string StoredJob(const std::string& owner, const std::string& state, const JobProgress& progress = {}) {
    return parts_.StoredJob(owner, state, progress);
  }
  // A job of alice's that searched two episodes and succeeded (events 1-4).
  std::string FinishedJob() {
    const std::string id = StoredJob("alice", kJobSucceeded);
    EXPECT_TRUE(store_->AddEvent(id, kEventState, R"({"state": "searching"})").ok());
    EXPECT_TRUE(store_->AddEvent(id, kEventEpisode, R"({"episode": 1, "reward": 0.25})").ok());
    EXPECT_TRUE(store_->AddEvent(id, kEventEpisode, R"({"episode": 2, "reward": 0.5})").ok());
    EXPECT_TRUE(store_->AddEvent(id, kEventState, R"({"state": "succeeded"})").ok());
    return id;
  }

  ServerStore* store_ = nullptr;
  std::string alice_, bob_, admin_, worker_;
};

TEST_F(HttpGatewayTest, HealthzNeedsNoToken) {
  httplib::Result r = Get("/healthz", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
}

TEST_F(HttpGatewayTest, TokensAndRolesAsForGrpc) {
  httplib::Result none = Get("/api/v1/jobs", "");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(ErrorCode(none), "UNAUTHENTICATED");
  httplib::Result wrong = Get("/api/v1/jobs", "not-a-token");
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(ErrorCode(wrong), "UNAUTHENTICATED");
  httplib::Result worker = Get("/api/v1/jobs", worker_);
  EXPECT_EQ(worker->status, 403);
  EXPECT_EQ(ErrorCode(worker), "PERMISSION_DENIED");
  EXPECT_NE(json::parse(worker->body)["error"]["message"].get<std::string>().find("needs the admin or user role"),
            std::string::npos);
  EXPECT_EQ(Get("/api/v1/jobs", alice_)->status, 200);
  EXPECT_EQ(Get("/metrics", "")->status, 401);
  EXPECT_EQ(Get("/api/v1/no-such-route", alice_)->status, 404);
  EXPECT_EQ(ErrorCode(Get("/api/v1/no-such-route", alice_)), "NOT_FOUND");
}

TEST_F(HttpGatewayTest, NoAuthServesOnlyOnLoopback) {
  Authenticator open(store_, /*no_auth=*/true);
  HttpGatewayOptions options;
  options.listen = "0.0.0.0:0";
  HttpGateway everywhere(service_.get(), &open, options);
  Status refused = everywhere.Start();
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused.ToString();
  options.listen = "127.0.0.1:0";
  HttpGateway loopback(service_.get(), &open, options);
  ASSERT_TRUE(loopback.Start().ok());
  httplib::Result r = httplib::Client("127.0.0.1", loopback.port()).Get("/api/v1/jobs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);  // every caller is the admin "local"
}

TEST_F(HttpGatewayTest, JobsAsJsonAndAnotherUsersJobIsNotFound) {
  const std::string id = FinishedJob();
  httplib::Result mine = Get("/api/v1/jobs/" + id, alice_);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->status, 200) << mine->body;
  EXPECT_EQ(mine->get_header_value("Content-Type"), "application/json");
  const json job = json::parse(mine->body);
  EXPECT_EQ(job["id"], id);
  EXPECT_EQ(job["owner"], "alice");
  EXPECT_EQ(job["state"], "SUCCEEDED");
  EXPECT_EQ(job["episodes_done"], 0);  // every field present, named as in the proto

  httplib::Result theirs = Get("/api/v1/jobs/" + id, bob_);
  EXPECT_EQ(theirs->status, 404);
  EXPECT_EQ(json::parse(theirs->body)["error"]["message"], "no job '" + id + "'");
  EXPECT_EQ(Get("/api/v1/jobs/" + id, admin_)->status, 200);

  EXPECT_EQ(json::parse(Get("/api/v1/jobs", alice_)->body)["jobs"][0]["id"], id);
  EXPECT_TRUE(json::parse(Get("/api/v1/jobs", bob_)->body)["jobs"].empty());
  EXPECT_TRUE(json::parse(Get("/api/v1/jobs?state=queued", alice_)->body)["jobs"].empty());
  EXPECT_EQ(json::parse(Get("/api/v1/jobs?state=SUCCEEDED", alice_)->body)["jobs"].size(), 1u);
  EXPECT_EQ(Get("/api/v1/jobs?state=sleeping", alice_)->status, 400);
  EXPECT_EQ(Get("/api/v1/jobs?page_size=-1", alice_)->status, 400);

  httplib::Headers auth = {{"Authorization", "Bearer " + bob_}};
  EXPECT_EQ(Client().Post(("/api/v1/jobs/" + id + "/cancel").c_str(), auth, "", "text/plain")->status, 404);
}

TEST_F(HttpGatewayTest, EventsReplayWithIdsAndResumeAfterLastEventId) {
  const std::string id = FinishedJob();
  httplib::Result all = Get("/api/v1/jobs/" + id + "/events", alice_);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->status, 200) << all->body;
  EXPECT_EQ(all->get_header_value("Content-Type"), "text/event-stream");
  std::vector<SseEvent> events = ParseSse(all->body);
  ASSERT_EQ(events.size(), 4u) << all->body;  // the stream ended with the job's last state
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id, std::to_string(i + 1));
    EXPECT_EQ(events[i].data["seq"], std::to_string(i + 1));  // int64 is a string in the JSON mapping
    EXPECT_GT(std::stoll(events[i].data["time_ms"].get<std::string>()), 0);
  }
  EXPECT_EQ(events[1].event, "episode");
  EXPECT_EQ(events[1].data["reward"], 0.25);
  EXPECT_EQ(events[3].event, "state");
  EXPECT_EQ(events[3].data["state"], "SUCCEEDED");
  EXPECT_EQ(events[3].data["job"]["id"], id);

  std::vector<SseEvent> resumed =
      ParseSse(Get("/api/v1/jobs/" + id + "/events", alice_, {{"Last-Event-ID", "2"}})->body);
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_EQ(resumed[0].id, "3");
  EXPECT_EQ(resumed[1].id, "4");
  // Last-Event-ID (a reconnecting EventSource) wins over the URL's cursor.
  resumed = ParseSse(Get("/api/v1/jobs/" + id + "/events?after=1", alice_, {{"Last-Event-ID", "3"}})->body);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].id, "4");
  EXPECT_EQ(ParseSse(Get("/api/v1/jobs/" + id + "/events?after=2", alice_)->body).size(), 2u);
  EXPECT_TRUE(ParseSse(Get("/api/v1/jobs/" + id + "/events?after=4", alice_)->body).empty());

  EXPECT_EQ(Get("/api/v1/jobs/" + id + "/events", alice_, {{"Last-Event-ID", "x"}})->status, 400);
  EXPECT_EQ(Get("/api/v1/jobs/" + id + "/events", bob_)->status, 404);
}

TEST_F(HttpGatewayTest, SearchSpaceNamesWhatSubmitChecks) {
  httplib::Result r = Get("/api/v1/search-space", alice_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json choices = json::parse(r->body);
  EXPECT_EQ(choices["agents"].get<std::vector<std::string>>(), AgentNames());
  EXPECT_EQ(choices["default_agent"], "amc");
  EXPECT_EQ(choices["budget_kinds"].get<std::vector<std::string>>(), BudgetKinds());
  EXPECT_EQ(choices["patterns"].get<std::vector<std::string>>(), PatternNames());
  EXPECT_EQ(choices["precisions"].get<std::vector<std::string>>(), PrecisionNames());
  EXPECT_EQ(choices["defaults"]["patterns"], json({"channel", "block"}));
  EXPECT_EQ(choices["defaults"]["precisions"], json({"fp32", "int8"}));
  EXPECT_EQ(choices["defaults"]["block_sizes"], json({4, 8}));
  EXPECT_EQ(Get("/api/v1/search-space", "")->status, 401);
  EXPECT_EQ(Get("/api/v1/search-space", worker_)->status, 403);

  // Submit refuses what the list does not hold, naming what it holds.
  httplib::Headers auth = {{"Authorization", "Bearer " + alice_}};
  httplib::Result agent = Client().Post("/api/v1/jobs", auth, R"({"agent": "dqn"})", "application/json");
  ASSERT_EQ(agent->status, 400) << agent->body;
  const std::string said = json::parse(agent->body)["error"]["message"];
  for (const std::string& a : AgentNames()) EXPECT_NE(said.find(a), std::string::npos) << said;
  httplib::Result budget = Client().Post("/api/v1/jobs", auth, R"({"agent": "random", "budget": {"kind": "energy"}})",
                                         "application/json");
  ASSERT_EQ(budget->status, 400) << budget->body;
  const std::string kinds = json::parse(budget->body)["error"]["message"];
  for (const std::string& k : BudgetKinds()) EXPECT_NE(kinds.find(k), std::string::npos) << kinds;
}

TEST_F(HttpGatewayTest, VerifiedEventsCarryTheMeasurementAndItsText) {
  const std::string id = StoredJob("alice", kJobSucceeded);
  ASSERT_TRUE(store_
                  ->AddEvent(id, kEventVerified,
                             R"({"rank": 0, "run": 1, "policy_hash": "abc", "accuracy": 0.9, "predicted_us": 90,
                                 "dense_predicted_us": 180, "measured_us": 80, "dense_measured_us": 200,
                                 "stock_us": 100, "acs_file_us": 85, "error": ""})")
                  .ok());
  ASSERT_TRUE(store_->AddEvent(id, kEventVerified, R"({"rank": 1, "error": "the worker died"})").ok());
  ASSERT_TRUE(store_->AddEvent(id, kEventState, R"({"state": "succeeded"})").ok());
  std::vector<SseEvent> events = ParseSse(Get("/api/v1/jobs/" + id + "/events", alice_)->body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].event, "verified");
  const json v = events[0].data["verification"];
  EXPECT_EQ(v["rank"], 0);
  EXPECT_EQ(v["run"], 1);
  EXPECT_EQ(v["policy_hash"], "abc");
  EXPECT_DOUBLE_EQ(v["accuracy"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(v["predicted_latency_us"].get<double>(), 90);
  EXPECT_DOUBLE_EQ(v["dense_predicted_latency_us"].get<double>(), 180);
  EXPECT_DOUBLE_EQ(v["measured_latency_us"].get<double>(), 80);
  EXPECT_DOUBLE_EQ(v["dense_measured_latency_us"].get<double>(), 200);
  EXPECT_DOUBLE_EQ(v["stock_measured_latency_us"].get<double>(), 100);
  EXPECT_DOUBLE_EQ(v["acs_file_measured_latency_us"].get<double>(), 85);
  EXPECT_DOUBLE_EQ(v["measured_speedup"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(v["predicted_speedup"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(v["prediction_error"].get<double>(), 0.125);
  // The text the CLI prints stays.
  EXPECT_EQ(events[0].data["message"],
            "policy #1 (run 2) abc: measured 80 us (dense 200 us), predicted 90 us; compressed.pt in stock PyTorch "
            "100 us; compressed.acs.pt 85 us");
  const json failed = events[1].data["verification"];
  EXPECT_EQ(failed["rank"], 1);
  EXPECT_EQ(failed["error"], "the worker died");
  EXPECT_DOUBLE_EQ(failed["measured_speedup"].get<double>(), 0);  // unknown, never a made-up figure
  EXPECT_FALSE(events[2].data.contains("verification"));           // only VERIFIED events have one
}

TEST_F(HttpGatewayTest, StreamsPastTheCapsAreRefused) {
  const std::string alices = StoredJob("alice", kJobSearching), bobs = StoredJob("bob", kJobSearching);
  ASSERT_TRUE(store_->AddEvent(alices, kEventState, R"({"state": "searching"})").ok());
  ASSERT_TRUE(store_->AddEvent(bobs, kEventState, R"({"state": "searching"})").ok());
  auto alice_stream = std::make_unique<OpenStream>(gateway_->port(), "/api/v1/jobs/" + alices + "/events", alice_);
  ASSERT_TRUE(alice_stream->WaitOpen());
  // The per-user watcher cap of the job service (1 here), as over gRPC.
  httplib::Result second = Get("/api/v1/jobs/" + alices + "/events", alice_);
  EXPECT_EQ(second->status, 429);
  EXPECT_EQ(ErrorCode(second), "RESOURCE_EXHAUSTED");
  OpenStream bob_stream(gateway_->port(), "/api/v1/jobs/" + bobs + "/events", bob_);
  ASSERT_TRUE(bob_stream.WaitOpen());
  // The gateway's cap on open streams (2 here).
  httplib::Result third = Get("/api/v1/jobs/" + alices + "/events", admin_);
  EXPECT_EQ(third->status, 503);
  EXPECT_EQ(ErrorCode(third), "UNAVAILABLE");
  EXPECT_EQ(third->get_header_value("Retry-After"), "5");
  EXPECT_NE(Get("/metrics", admin_)->body.find("acs_http_event_streams 2\n"), std::string::npos);

  // A stream whose client closed it gives its places back, on a quiet job and with no
  // heartbeat due (the fixture's come hourly).
  alice_stream.reset();
  bool released = false;
  for (int i = 0; i < 1200 && !released; ++i) {  // a bound against hanging, not a timing check
    released = Get("/metrics", admin_)->body.find("acs_http_event_streams 1\n") != std::string::npos;
    if (!released) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(released);
  OpenStream again(gateway_->port(), "/api/v1/jobs/" + alices + "/events", alice_);
  EXPECT_TRUE(again.WaitOpen());
}

// Requests on one keep-alive connection are answered without Nagle's algorithm, so an
// answer's body never waits for the client's delayed ACK of its headers.
TEST_F(HttpGatewayTest, KeepAliveConnectionsSendWithoutDelay) {
  httplib::Client client = Client();
  client.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Get("/healthz")->status, 200);
  const std::vector<int> accepted = AcceptedSockets(gateway_->port());
  ASSERT_EQ(accepted.size(), 1u);  // the three requests shared one connection
  int nodelay = 0;
  socklen_t size = sizeof nodelay;
  ASSERT_EQ(getsockopt(accepted[0], IPPROTO_TCP, TCP_NODELAY, &nodelay, &size), 0);
  EXPECT_NE(nodelay, 0);
}

// A browser offers brotli first; answers come gzip-encoded (cheap) and decode to the JSON
// sent uncompressed.
TEST_F(HttpGatewayTest, AnswersCompressWithGzipThoughBrotliIsOffered) {
  for (int i = 0; i < 3; ++i) StoredJob("alice", kJobQueued);
  httplib::Result plain = Get("/api/v1/jobs", alice_, {{"Accept-Encoding", "identity"}});
  httplib::Result packed = Get("/api/v1/jobs", alice_, {{"Accept-Encoding", "br, gzip, deflate"}});
  ASSERT_TRUE(plain && packed);
  EXPECT_FALSE(plain->has_header("Content-Encoding"));
  EXPECT_EQ(packed->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(packed->body, plain->body);  // as the client decoded it
  EXPECT_EQ(json::parse(plain->body)["jobs"].size(), 3u);
}

TEST_F(HttpGatewayTest, ArtifactsDownloadWithTheirDigestAndADamagedOneIsAnError) {
  const std::string small = "the compressed model's bytes";
  std::string large(kArtifactPieceBytes * 2 + 123, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7 % 251);
  JobProgress progress;
  for (const auto& [name, bytes] :
       {std::pair<std::string, std::string>{"policy.json", small}, {"compressed.pt", large}}) {
    StatusOr<BlobWriter::Committed> blob = parts_.blobs->Put(bytes);
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    progress.artifacts.push_back({name, blob->sha256, blob->bytes});
  }
  const std::string id = StoredJob("alice", kJobSucceeded, progress);
  for (const std::string& bytes : {small, large}) {
    const std::string name = bytes == small ? "policy.json" : "compressed.pt";
    httplib::Result r = Get("/api/v1/jobs/" + id + "/artifacts/" + name, alice_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 200);
    EXPECT_TRUE(r->body == bytes) << name << ": " << r->body.size() << " bytes";
    EXPECT_EQ(r->get_header_value("X-Acs-Sha256"), Sha256Hex(bytes));
    EXPECT_EQ(r->get_header_value("X-Acs-Size"), std::to_string(bytes.size()));
  }
  httplib::Result missing = Get("/api/v1/jobs/" + id + "/artifacts/report.json", alice_);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(Get("/api/v1/jobs/" + id + "/artifacts/compressed.pt", bob_)->status, 404);

  const std::string path = parts_.blobs->PathOf(progress.artifacts[1].sha256).value();
  fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(kArtifactPieceBytes + 5));
    out << "damage";
  }
  httplib::Result damaged = Get("/api/v1/jobs/" + id + "/artifacts/compressed.pt", alice_);
  ASSERT_TRUE(damaged);
  EXPECT_EQ(damaged->status, 500);
  EXPECT_EQ(ErrorCode(damaged), "DATA_LOSS");
}

TEST_F(HttpGatewayTest, UploadsAnswerTheDigestWithinTheLimit) {
  httplib::Headers auth = {{"Authorization", "Bearer " + alice_}};
  const std::string model(80, 'm');
  httplib::Result r = Client().Post("/api/v1/uploads/model", auth, model, "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json reply = json::parse(r->body);
  EXPECT_EQ(reply["sha256"], Sha256Hex(model));
  EXPECT_EQ(reply["bytes"], "80");  // int64 is a string in protobuf's JSON mapping
  EXPECT_TRUE(parts_.blobs->PathOf(Sha256Hex(model)).ok());

  httplib::Result large = Client().Post("/api/v1/uploads/dataset", auth, std::string(101, 'd'), "text/plain");
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 429);
  EXPECT_EQ(ErrorCode(large), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(Client().Post("/api/v1/uploads/model", {}, model, "text/plain")->status, 401);
  httplib::Result worker =
      Client().Post("/api/v1/uploads/model", {{"Authorization", "Bearer " + worker_}}, model, "text/plain");
  EXPECT_EQ(worker->status, 403);

  httplib::Result unknown_field = Client().Post("/api/v1/jobs", auth, R"({"model": "x"})", "application/json");
  EXPECT_EQ(unknown_field->status, 400);
  EXPECT_EQ(ErrorCode(unknown_field), "INVALID_ARGUMENT");
}

TEST_F(HttpGatewayTest, PredictorEvaluationCarriesChartPoints) {
  const std::string path = "/api/v1/predictors/cpu-test/evaluation";
  EXPECT_EQ(ErrorCode(Get(path, alice_)), "FAILED_PRECONDITION");  // no measurements yet
  std::vector<predictors::KernelRecord> records;
  for (int i = 1; i <= 30; ++i) {
    predictors::KernelRecord r;
    r.device_class = "cpu-test";
    r.spec.in_channels = 8;
    r.spec.out_channels = 4 * i;
    r.spec.kernel = {3, 3};
    r.spec.input = {1, 8, 8, 8};
    r.median_us = 10.0 + i;
    r.source = i % 5 == 0 ? predictors::kHeldOutSource : "initial";
    records.push_back(r);
  }
  ASSERT_TRUE(parts_.measurements->AddKernels(records).ok());
  httplib::Result r = Get(path, alice_);
  ASSERT_EQ(r->status, 200) << r->body;
  const json body = json::parse(r->body);
  EXPECT_EQ(body["train_kernels"], 24);
  EXPECT_EQ(body["heldout_kernels"], 6);
  ASSERT_EQ(body["points"].size(), 30u);
  for (size_t i = 0; i < 30; ++i) {  // held-out kernels first, each with its prediction
    const json& p = body["points"][i];
    EXPECT_EQ(p["kind"], "conv2d");
    EXPECT_EQ(p["held_out"], i < 6) << p;
    EXPECT_GT(p["flops"].get<double>(), 0) << p;
    EXPECT_GT(p["measured_us"].get<double>(), 10) << p;
    EXPECT_EQ(p["predicted_us"].get<double>() > 0, i < 6) << p;
  }
}

TEST_F(HttpGatewayTest, MetricsCountJobsByStateAndRequests) {
  FinishedJob();
  StoredJob("bob", kJobQueued);
  StoredJob("bob", kJobQueued);
  ASSERT_EQ(Get("/api/v1/jobs", alice_)->status, 200);
  httplib::Result r = Get("/metrics", worker_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string& text = r->body;
  EXPECT_NE(text.find("acs_jobs{state=\"succeeded\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("acs_jobs{state=\"queued\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("acs_jobs{state=\"failed\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("acs_workers_online 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("acs_http_requests_total{route=\"jobs.list\",code=\"200\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("acs_http_request_duration_seconds_count{route=\"jobs.list\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("acs_http_request_duration_seconds_bucket{route=\"jobs.list\",le=\"+Inf\"} 1\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace acs::server
