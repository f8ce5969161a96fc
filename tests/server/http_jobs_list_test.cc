// The job list over HTTP: AppendProtoJson (server/proto_json_writer.h) gives the JSON value
// protobuf's own writer gives (every field kind of the API's job messages), keeps only the
// named paths, refuses what it cannot write; GET /api/v1/jobs answers the same jobs as
// GET /api/v1/jobs/{id} (written by protobuf) and, with view=summary, only the jobs table's
// fields with the same values, also when kept from an earlier list (JobListWriter); an
// offset starts a page that many jobs in; a gzipped page kept is the page as it is now.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "proto/acs.pb.h"
#include "server/http_gateway.h"
#include "server/http_jobs_list.h"
#include "server/job_records.h"
#include "server/proto_json_writer.h"
#include "tests/server/gateway_fixture.h"

namespace acs::server {
namespace {

using nlohmann::json;

// As the gateway's protobuf JSON (every primitive field, proto names).
json ProtobufJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string text;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &text, options).ok());
  return json::parse(text);
}

json WriterJson(const google::protobuf::Message& m, const JsonFieldPaths* keep = nullptr) {
  std::string text;
  const Status s = AppendProtoJson(m, keep, &text);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return json::parse(text);
}

// A job with every kind of field set: strings that need escapes, negative and 64-bit
// integers, doubles that print long, repeated scalars and messages, an unset message
// (split.calibration), an unknown enum value's neighbour.
acs::v1::ListJobsReply FullReply() {
  acs::v1::ListJobsReply reply;
  acs::v1::Job* job = reply.add_jobs();
  job->set_id("job-\"quoted\"\\ and \n\t\x01 ünïcode");
  job->set_owner("alice");
  job->set_state(acs::v1::SUCCEEDED);
  acs::v1::SubmitJobRequest* r = job->mutable_request();
  r->set_model_sha256("ab12");
  r->add_input_shape(1);
  r->add_input_shape(3);
  r->add_input_shape(int64_t{1} << 40);
  r->mutable_budget()->set_kind("latency");
  r->mutable_budget()->set_ratio(0.6000000000000001);
  r->set_agent("amc");
  r->mutable_space()->add_patterns("channel");
  r->mutable_space()->add_block_sizes(-4);
  r->mutable_space()->set_max_sparsity(1e-300);
  r->set_episodes(200);
  r->set_seed(std::numeric_limits<uint64_t>::max());
  r->set_fine_tune(true);
  acs::v1::PreprocessStep* step = r->add_preprocess();
  step->set_op("normalize");
  step->add_mean(0.485);
  step->add_std(std::numeric_limits<double>::infinity());
  r->mutable_split()->mutable_validation()->set_fraction(0.1);
  r->set_time_limit_seconds(-7);
  job->set_episodes_done(17);
  job->set_best_accuracy(0.898103935079729);
  job->set_dense_measured_latency_us(958.7069875253128);
  job->set_eta_seconds(std::nan(""));
  job->set_test_samples(int64_t{9007199254740993});
  acs::v1::Artifact* a = job->add_artifacts();
  a->set_name("compressed.pt");
  a->set_sha256("ff");
  a->set_bytes(16676);
  reply.add_jobs()->set_id("job-2");  // every field at its default
  reply.set_next_page_token("job-2");
  return reply;
}

TEST(ProtoJsonWriterTest, WritesTheJsonValueProtobufWrites) {
  const acs::v1::ListJobsReply reply = FullReply();
  EXPECT_EQ(WriterJson(reply), ProtobufJson(reply));
  const json written = WriterJson(reply);
  EXPECT_EQ(written["jobs"][0]["request"]["seed"], "18446744073709551615");  // 64-bit as a string
  EXPECT_EQ(written["jobs"][0]["eta_seconds"], "NaN");
  EXPECT_FALSE(written["jobs"][0]["request"]["split"].contains("calibration"));  // unset message
  EXPECT_EQ(written["jobs"][1]["artifacts"], json::array());
  EXPECT_EQ(written["jobs"][1]["state"], "JOB_STATE_UNSPECIFIED");
  EXPECT_FALSE(written["jobs"][1].contains("request"));
}

TEST(ProtoJsonWriterTest, KeepsOnlyTheNamedPaths) {
  const JsonFieldPaths keep = {"jobs.id", "jobs.request.budget", "jobs.request.input_shape", "jobs.artifacts.name"};
  const json written = WriterJson(FullReply(), &keep);
  const json full = ProtobufJson(FullReply());
  EXPECT_FALSE(written.contains("next_page_token"));
  ASSERT_EQ(written["jobs"].size(), 2u);
  const json& job = written["jobs"][0];
  EXPECT_EQ(job.size(), 3u) << job.dump();  // id, request, artifacts
  EXPECT_EQ(job["id"], full["jobs"][0]["id"]);
  EXPECT_EQ(job["request"].size(), 2u);
  EXPECT_EQ(job["request"]["budget"], full["jobs"][0]["request"]["budget"]);  // named whole
  EXPECT_EQ(job["request"]["input_shape"], full["jobs"][0]["request"]["input_shape"]);
  EXPECT_EQ(job["artifacts"], json::parse(R"([{"name": "compressed.pt"}])"));
  // A path's prefix that is no field boundary keeps nothing.
  const JsonFieldPaths prefix = {"jobs.i", "next_page_token_x"};
  EXPECT_EQ(WriterJson(FullReply(), &prefix), json::parse(R"({"jobs": [{}, {}]})"));
}

TEST(ProtoJsonWriterTest, RefusesBytesFields) {
  acs::v1::UploadChunk chunk;
  chunk.set_data("xyz");
  std::string text;
  EXPECT_EQ(AppendProtoJson(chunk, nullptr, &text).code(), StatusCode::kInvalidArgument);
}

class HttpJobsListTest : public test::GatewayFixture {
 protected:
  HttpJobsListTest() : GatewayFixture("acs_http_jobs_list_") {}
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    StartGateway();
    if (HasFatalFailure()) return;
    alice_ = parts_.store->CreateToken("alice", Role::kUser).value();
  }
  // A job of alice's with a request and results, stored directly.
  std::string Job(int i) {
    JobRequest request;
    request.model_sha256 = "model-" + std::to_string(i);
    request.input_shape = {1, 3, 32, 32};
    request.dataset_name = "cifar10";
    request.agent = "random";
    JobProgress progress;
    progress.episodes_done = i;
    progress.best_accuracy = 0.5 + i / 100.0;
    progress.best_measured_us = 100.0 / 3;
    progress.artifacts = {{"compressed.pt", "ab", 12}, {"report.json", "cd", 34}};
    JobRecord job;
    job.owner = "alice";
    job.state = kJobSucceeded;
    job.request_json = request.ToJson().dump();
    job.progress_json = progress.ToJson().dump();
    StatusOr<JobRecord> created = parts_.store->CreateJob(job);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->id : "";
  }
  // The answer's status and body as JSON (null when not JSON).
  std::pair<int, json> Get(const std::string& path) {
    httplib::Client client("127.0.0.1", gateway_->port());
    httplib::Result r = client.Get(path.c_str(), {{"Authorization", "Bearer " + alice_}});
    if (!r) return {0, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  // The answer's Content-Encoding and body as the client decoded it, asked with `encoding`.
  std::pair<std::string, std::string> GetEncoded(const std::string& path, const std::string& encoding) {
    httplib::Client client("127.0.0.1", gateway_->port());
    httplib::Result r =
        client.Get(path.c_str(), {{"Authorization", "Bearer " + alice_}, {"Accept-Encoding", encoding}});
    if (!r || r->status != 200) return {"no answer", ""};
    return {r->get_header_value("Content-Encoding"), r->body};
  }

  std::string alice_;
};

TEST_F(HttpJobsListTest, ListedJobsAreTheJobsAsGetAnswersThem) {
  const std::vector<std::string> ids = {Job(1), Job(2), Job(3)};
  const auto [status, first] = Get("/api/v1/jobs?page_size=2");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(first["jobs"].size(), 2u);
  EXPECT_EQ(first["next_page_token"], ids[1]);
  const auto [status2, second] = Get("/api/v1/jobs?view=full&page_size=2&page_token=" + ids[1]);
  ASSERT_EQ(status2, 200);
  ASSERT_EQ(second["jobs"].size(), 1u);
  EXPECT_EQ(second["next_page_token"], "");
  const json listed = {first["jobs"][0], first["jobs"][1], second["jobs"][0]};
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto [got, job] = Get("/api/v1/jobs/" + ids[i]);
    ASSERT_EQ(got, 200);
    EXPECT_EQ(listed[i], job);
  }
}

TEST_F(HttpJobsListTest, SummaryViewHasTheTablesFieldsWithTheSameValues) {
  Job(1);
  Job(2);
  const auto [status, full] = Get("/api/v1/jobs");
  const auto [summary_status, summary] = Get("/api/v1/jobs?view=summary");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(summary_status, 200);
  ASSERT_EQ(summary["jobs"].size(), 2u);
  EXPECT_EQ(summary["next_page_token"], "");
  for (size_t i = 0; i < 2; ++i) {
    const json& s = summary["jobs"][i];
    const json& f = full["jobs"][i];
    for (const char* field :
         {"id", "owner", "state", "episodes_done", "best_accuracy", "exported_accuracy", "test_accuracy",
          "test_samples", "best_predicted_latency_us", "dense_predicted_latency_us", "best_measured_latency_us",
          "dense_measured_latency_us", "created"}) {
      EXPECT_EQ(s[field], f[field]) << field;
    }
    for (const char* field :
         {"model_sha256", "input_shape", "dataset_name", "device_class", "budget", "agent", "episodes"}) {
      EXPECT_EQ(s["request"][field], f["request"][field]) << field;
    }
    EXPECT_EQ(s["artifacts"], json::parse(R"([{"name": "compressed.pt"}, {"name": "report.json"}])"));
    // What the table does not show is left out.
    EXPECT_EQ(s.size(), 15u) << s.dump();
    EXPECT_EQ(s["request"].size(), 7u) << s["request"].dump();
    EXPECT_FALSE(s.contains("error"));
    EXPECT_FALSE(s["request"].contains("space"));
  }
  EXPECT_EQ(Get("/api/v1/jobs?view=everything").first, 400);
}

TEST_F(HttpJobsListTest, AnOffsetStartsThePageThatManyJobsIn) {
  JobRecord bobs;  // not alice's: not counted in her offsets
  bobs.owner = "bob";
  bobs.state = kJobSucceeded;
  ASSERT_TRUE(parts_.store->CreateJob(bobs).ok());
  const std::vector<std::string> ids = {Job(1), Job(2), Job(3), Job(4), Job(5)};
  const auto ids_of = [](const json& reply) {
    std::vector<std::string> out;
    for (const json& j : reply["jobs"]) out.push_back(j["id"]);
    return out;
  };
  // Pages asked at once by offset are the pages the tokens give, with the same next token.
  const auto [status, second] = Get("/api/v1/jobs?view=summary&page_size=2&offset=2");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(ids_of(second), std::vector<std::string>({ids[2], ids[3]}));
  EXPECT_EQ(second["next_page_token"], ids[3]);
  const auto [last_status, last] = Get("/api/v1/jobs?page_size=2&offset=4");
  ASSERT_EQ(last_status, 200);
  EXPECT_EQ(ids_of(last), std::vector<std::string>({ids[4]}));
  EXPECT_EQ(last["next_page_token"], "");
  EXPECT_EQ(ids_of(Get("/api/v1/jobs?page_size=2&offset=0").second), std::vector<std::string>({ids[0], ids[1]}));
  // Past the end: no jobs, no next page.
  for (const char* offset : {"5", "6", "1000000"}) {
    const auto [past_status, past] = Get(std::string("/api/v1/jobs?page_size=2&offset=") + offset);
    ASSERT_EQ(past_status, 200) << offset;
    EXPECT_TRUE(ids_of(past).empty()) << offset;
    EXPECT_EQ(past["next_page_token"], "") << offset;
  }
  // The offset counts within the state filter too.
  EXPECT_EQ(ids_of(Get("/api/v1/jobs?state=SUCCEEDED&page_size=10&offset=4").second),
            std::vector<std::string>({ids[4]}));
  const auto [queued_status, queued] = Get("/api/v1/jobs?state=QUEUED&offset=1");
  EXPECT_EQ(queued_status, 200);
  EXPECT_TRUE(ids_of(queued).empty());
  // Refused: a negative or non-numeric offset, an offset with a page token.
  EXPECT_EQ(Get("/api/v1/jobs?offset=-1").first, 400);
  EXPECT_EQ(Get("/api/v1/jobs?offset=two").first, 400);
  EXPECT_EQ(Get("/api/v1/jobs?offset=1&page_token=" + ids[0]).first, 400);
}

TEST_F(HttpJobsListTest, ASummaryKeptFromAnEarlierListFollowsTheJobsChanges) {
  const std::string id = Job(1);
  const auto [status, before] = Get("/api/v1/jobs?view=summary");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(before["jobs"][0]["episodes_done"], 1);
  EXPECT_EQ(Get("/api/v1/jobs?view=summary").second, before);  // unchanged: the same answer
  JobProgress progress;
  progress.episodes_done = 7;
  progress.best_accuracy = 0.25;
  ASSERT_TRUE(parts_.store->UpdateJobProgress(id, progress.ToJson().dump()).ok());
  const auto [after_status, after] = Get("/api/v1/jobs?view=summary");
  ASSERT_EQ(after_status, 200);
  EXPECT_EQ(after["jobs"][0]["episodes_done"], 7);
  EXPECT_EQ(after["jobs"][0]["best_accuracy"], 0.25);
  EXPECT_EQ(after["jobs"][0]["artifacts"], json::array());
  EXPECT_EQ(after["jobs"][0]["request"], before["jobs"][0]["request"]);
}

TEST_F(HttpJobsListTest, AGzippedPageKeptFromAnEarlierListFollowsTheJobsChanges) {
  const std::string id = Job(1);
  Job(2);
  for (const char* view : {"summary", "full"}) {
    const std::string path = std::string("/api/v1/jobs?view=") + view;
    const auto [plain_encoding, plain] = GetEncoded(path, "identity");
    EXPECT_EQ(plain_encoding, "");
    for (int i = 0; i < 2; ++i) {  // the second from the kept page
      const auto [encoding, body] = GetEncoded(path, "br, gzip, deflate");
      EXPECT_EQ(encoding, "gzip") << view;
      EXPECT_EQ(body, plain) << view;
    }
  }
  JobProgress progress;
  progress.episodes_done = 9;
  ASSERT_TRUE(parts_.store->UpdateJobProgress(id, progress.ToJson().dump()).ok());
  const auto [encoding, body] = GetEncoded("/api/v1/jobs?view=summary", "gzip");
  EXPECT_EQ(encoding, "gzip");
  EXPECT_EQ(body, GetEncoded("/api/v1/jobs?view=summary", "identity").second);
  EXPECT_EQ(json::parse(body)["jobs"][0]["episodes_done"], 9);
}

TEST(JobListWriterTest, KeepsGzippedPagesWithinItsBound) {
  JobPage page;
  for (int i = 0; i < 2; ++i) {
    JobRecord j;
    j.id = "job-" + std::to_string(i);
    j.state = kJobQueued;
    j.request_json = R"({"agent": "amc"})";
    j.progress_json = "{}";
    page.jobs.push_back(j);
  }
  JobListWriter writer;
  const std::string plain = writer.Body(page, true, false).value();
  EXPECT_EQ(plain, writer.Json(page, true).value() + "\n");
  const std::string packed = writer.Body(page, true, true).value();
  ASSERT_GE(packed.size(), 18u);
  EXPECT_EQ(packed.substr(0, 2), "\x1f\x8b");  // gzip's magic
  EXPECT_EQ(writer.kept_gzipped(), 1u);
  EXPECT_EQ(writer.Body(page, true, true).value(), packed);
  EXPECT_EQ(writer.kept_gzipped(), 1u);
  page.jobs.pop_back();  // another page: kept beside the first
  EXPECT_NE(writer.Body(page, true, true).value(), packed);
  EXPECT_EQ(writer.kept_gzipped(), 2u);
  // A bound smaller than one page keeps none, and still gzips.
  JobListWriter tiny(50000, 16);
  EXPECT_EQ(tiny.Body(page, true, true).value().substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(tiny.kept_gzipped(), 0u);
}

TEST(JobListWriterTest, WritesWhatTheReplysWriterWritesAndKeepsAtMostItsBound) {
  JobListWriter writer(2);
  JobPage page;
  for (int i = 0; i < 3; ++i) {
    JobRecord j;
    j.id = "job-" + std::to_string(i);
    j.owner = "alice \"a\"";
    j.state = kJobQueued;
    j.request_json = R"({"model_sha256": "m", "input_shape": [1, 3], "agent": "amc"})";
    j.progress_json = R"({"episodes_done": )" + std::to_string(i) + "}";
    page.jobs.push_back(j);
  }
  page.next_page_token = "job-2";
  const StatusOr<std::string> summary = writer.Json(page, true);
  const StatusOr<std::string> full = writer.Json(page, false);
  ASSERT_TRUE(summary.ok() && full.ok());
  EXPECT_LE(writer.kept(), 2u);
  EXPECT_EQ(writer.Json(page, true).value(), *summary);
  const json s = json::parse(*summary), f = json::parse(*full);
  ASSERT_EQ(s["jobs"].size(), 3u);
  EXPECT_EQ(s["next_page_token"], "job-2");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s["jobs"][i]["owner"], "alice \"a\"");
    EXPECT_EQ(s["jobs"][i]["episodes_done"], f["jobs"][i]["episodes_done"]);
    EXPECT_EQ(s["jobs"][i]["request"]["input_shape"], f["jobs"][i]["request"]["input_shape"]);
  }
  // An empty page as protobuf's writer gives an empty reply.
  EXPECT_EQ(json::parse(writer.Json(JobPage{}, true).value()), ProtobufJson(acs::v1::ListJobsReply()));
}

}  // namespace
}  // namespace acs::server
