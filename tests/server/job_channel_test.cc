// The channel between the server and a job runner child (server/job_channel.h): an honest
// child's calls round-trip over a real socket pair and land in the store; garbage, an
// oversized message, and calls about another job, another job's task, another model or a
// file outside the job's directory are protocol violations that change nothing. Exports
// are streamed into the blob store within a size cap; model measurements are stored only
// as a finished task of the job measured them.
#include "server/job_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "../temp_dir.h"
#include "core/policy.h"
#include "core/sha256.h"
#include "core/sqlite_db.h"
#include "server/job_channel_codec.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class JobChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    const std::string db = dir_.path() + "/acs.db";
    store_ = ServerStore::Open(db).value();
    measurements_ = predictors::OpenSqliteStore(db).value();
    blobs_ = BlobStore::Open(dir_.path()).value();
    farm_ = std::make_unique<Farm>(store_.get(), measurements_.get(), FarmOptions{});
    campaigns_ = std::make_unique<MeasurementCampaigns>(farm_.get(), store_.get(), measurements_.get(), false);
    host_ = std::make_unique<LocalJobHost>(store_.get(), blobs_.get(), farm_.get(), campaigns_.get());
    model_sha_ = blobs_->Put("the job's model").value().sha256;
    other_sha_ = blobs_->Put("another user's model").value().sha256;
    request_.model_sha256 = model_sha_;
    request_.device_class = "m1";
    job_ = MakeJob("alice");
    other_ = MakeJob("bob");
    job_dir_ = dir_.path() + "/work/" + job_.id;
    fs::create_directories(job_dir_);
    server_ = std::make_unique<JobChannelServer>(job_.id, request_, job_dir_, host_.get(), measurements_.get(),
                                                 MeasurementCampaignOptions{});
  }

  JobRecord MakeJob(const std::string& owner) {
    JobRecord j;
    j.owner = owner;
    j.state = kJobSearching;
    j.request_json = request_.ToJson().dump();
    return store_->CreateJob(j).value();
  }

  static std::string Frame(const json& message) {
    const std::vector<uint8_t> packed = json::to_msgpack(message);
    return std::string(packed.begin(), packed.end());
  }
  // One call handled by `server`: the answer, or the violation.
  StatusOr<json> Call(JobChannelServer& server, const std::string& op, const json& args) {
    StatusOr<std::string> answer = server.Handle(Frame({{"op", op}, {"args", args}}));
    if (!answer.ok()) return answer.status();
    return json::from_msgpack(*answer);
  }
  StatusOr<json> Call(const std::string& op, const json& args) { return Call(*server_, op, args); }

  static json JobJson(const JobRecord& j) {
    return {{"id", j.id},   {"owner", j.owner}, {"state", j.state}, {"request_json", j.request_json},
            {"progress_json", j.progress_json}, {"checkpoint", j.checkpoint}, {"error", j.error},
            {"created", j.created}, {"updated", j.updated}};
  }

  ScopedTempDir dir_{"acs_job_channel_"};
  std::unique_ptr<ServerStore> store_;
  std::unique_ptr<predictors::MeasurementStore> measurements_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<Farm> farm_;
  std::unique_ptr<MeasurementCampaigns> campaigns_;
  std::unique_ptr<LocalJobHost> host_;
  std::unique_ptr<JobChannelServer> server_;
  JobRequest request_;
  JobRecord job_, other_;
  std::string job_dir_, model_sha_, other_sha_;
};

TEST_F(JobChannelTest, AnHonestChildsCallsRoundTripAndLandInTheStore) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  std::thread serving([&] {
    std::string frame;
    while (ReadFrame(pair[0], kMaxChildMessageBytes, 10, &frame).ok()) {
      StatusOr<std::string> answer = server_->Handle(frame);
      ASSERT_TRUE(answer.ok()) << answer.status().ToString();
      ASSERT_TRUE(WriteFrame(pair[0], *answer, 10).ok());
    }
  });
  {
    RemoteJobHost remote(pair[1], job_dir_);
    StatusOr<JobRecord> job = remote.GetJob(job_.id);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    EXPECT_EQ(job->owner, "alice");
    job->state = kJobVerifying;
    job->checkpoint = std::string("\x00\xff\xfe binary", 10);  // not UTF-8: MessagePack keeps it
    job->progress_json = R"({"episodes_done": 3})";
    ASSERT_TRUE(remote.UpdateJob(*job).ok());
    ASSERT_TRUE(remote.AddEvent(job_.id, "state", R"({"state": "verifying"})").ok());
    ASSERT_TRUE(remote.PutJobEpisodes(job_.id, 0, {"{}", R"({"reward": 1})"}).ok());
    EXPECT_EQ(remote.JobEpisodes(job_.id, 10).value().size(), 2u);
    TaskRecord t;
    t.job_id = job_.id;
    t.kind = kTaskMeasureModel;
    t.machine_id = "m1";
    t.spec_json = json{{"model_sha256", model_sha_}}.dump();
    StatusOr<TaskRecord> task = remote.EnqueueTask(t);
    ASSERT_TRUE(task.ok()) << task.status().ToString();
    EXPECT_EQ(remote.GetTask(task->id).value().job_id, job_.id);
    EXPECT_EQ(remote.TasksOfJob(job_.id).value().size(), 1u);
    // An export enters the blob store from a file of the job's directory; the job reads it back.
    StatusOr<BlobWriter::Committed> put = remote.PutBlob(job_.id, "report of the job");
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_EQ(blobs_->Read(put->sha256).value(), "report of the job");
    // It counts for the job's owner at once, listed by the progress or not.
    EXPECT_EQ(store_->StoredBytes("alice").value(), put->bytes);
    EXPECT_EQ(store_->StoredBytes("bob").value(), 0);
    EXPECT_EQ(remote.ReadBlob(put->sha256).value(), "report of the job");
    EXPECT_EQ(remote.ReadBlob(model_sha_).value(), "the job's model");
    EXPECT_TRUE(remote.Devices().ok());
    EXPECT_FALSE(remote.LatestPredictor("m1", "xgboost").value().has_value());
    EXPECT_TRUE(remote.ModelsOfModel("m1", model_sha_).value().empty());
    EXPECT_EQ(remote.ModelOfTask("m1", task->id).status().code(), StatusCode::kPermissionDenied);
    // Errors of an operation come back as the operation's, not as violations.
    EXPECT_EQ(remote.GetTask("task-missing").status().code(), StatusCode::kNotFound);
  }  // closes the child's end: the serving loop ends
  serving.join();
  close(pair[0]);
  const JobRecord stored = store_->GetJob(job_.id).value();
  EXPECT_EQ(stored.state, kJobVerifying);
  EXPECT_EQ(stored.checkpoint, std::string("\x00\xff\xfe binary", 10));
  EXPECT_EQ(store_->EventsAfter(job_.id, 0).value().size(), 1u);
}

TEST_F(JobChannelTest, GarbageAndOversizedMessagesAreViolations) {
  for (const std::string& garbage : {std::string("\xc1\xc1\xc1 not msgpack"), std::string(),
                                     Frame(json::array({1, 2, 3})), Frame({{"op", 7}, {"args", json::object()}}),
                                     Frame({{"op", "update_job"}}),
                                     // A million nested one-element arrays: read without a depth
                                     // limit they overflow the server's stack.
                                     std::string(1 << 20, '\x91') + '\xc0'}) {
    StatusOr<std::string> answer = server_->Handle(garbage);
    EXPECT_EQ(answer.status().code(), StatusCode::kInvalidArgument) << answer.status().ToString();
  }
  EXPECT_EQ(Call("drop_tables", json::object()).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("update_job", {{"job", {{"id", job_.id}}}}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("add_event", {{"id", job_.id}, {"kind", "state"}, {"json", "{not json"}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("add_event", {{"id", job_.id}, {"kind", "tokens"}, {"json", "{}"}}).status().code(),
            StatusCode::kPermissionDenied);

  // A message past the limit is refused by its length, before its bytes are read.
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const uint32_t huge = kMaxChildMessageBytes + 1;
  const char header[4] = {static_cast<char>(huge & 0xff), static_cast<char>(huge >> 8 & 0xff),
                          static_cast<char>(huge >> 16 & 0xff), static_cast<char>(huge >> 24 & 0xff)};
  ASSERT_EQ(write(pair[1], header, 4), 4);
  std::string frame;
  const Status s = ReadFrame(pair[0], kMaxChildMessageBytes, 1, &frame);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_TRUE(frame.empty());
  // A message that starts and stalls is a violation too (a timeout, not a hung server).
  const char partial[6] = {10, 0, 0, 0, 'a', 'b'};
  ASSERT_EQ(write(pair[1], partial, 6), 6);
  EXPECT_EQ(ReadFrame(pair[0], kMaxChildMessageBytes, 0.2, &frame).code(), StatusCode::kAborted);
  close(pair[0]);
  close(pair[1]);
  const std::string oversized(kMaxChildMessageBytes + 1, 'x');
  EXPECT_EQ(server_->Handle(oversized).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->calls(), 0);
  EXPECT_EQ(store_->GetJob(job_.id).value().state, kJobSearching);
  EXPECT_TRUE(store_->EventsAfter(job_.id, 0).value().empty());
}

TEST_F(JobChannelTest, CallsAboutAnotherJobOrItsDataAreViolationsThatChangeNothing) {
  JobRecord forged = other_;
  forged.state = kJobFailed;
  forged.error = "forged";
  StatusOr<json> r = Call("update_job", {{"job", JobJson(forged)}});
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("not its own " + job_.id), std::string::npos) << r.status().message();
  EXPECT_EQ(Call("get_job", {{"id", other_.id}}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("add_event", {{"id", other_.id}, {"kind", "state"}, {"json", "{}"}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("update_progress", {{"id", other_.id}, {"progress_json", "{}"}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("put_episodes", {{"id", other_.id}, {"first_seq", 0}, {"rows", {"{}"}}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("fail_open_tasks", {{"id", other_.id}, {"error", "x"}}).status().code(),
            StatusCode::kPermissionDenied);
  std::ofstream(job_dir_ + "/export.pt") << "an export";
  EXPECT_EQ(Call("put_blob_file", {{"id", other_.id}, {"path", job_dir_ + "/export.pt"}}).status().code(),
            StatusCode::kPermissionDenied);
  // Another job's task, a task measuring another model or on another class.
  TaskRecord theirs;
  theirs.job_id = other_.id;
  theirs.kind = kTaskMeasureModel;
  theirs.machine_id = "m1";
  theirs.spec_json = "{}";
  theirs = store_->EnqueueTask(theirs).value();
  EXPECT_EQ(Call("get_task", {{"id", theirs.id}}).status().code(), StatusCode::kPermissionDenied);
  auto task = [&](const std::string& job, const std::string& kind, const std::string& machine,
                  const std::string& model) {
    return json{{"task",
                 {{"id", ""}, {"job_id", job}, {"kind", kind}, {"machine_id", machine},
                  {"spec_json", json{{"model_sha256", model}}.dump()}, {"state", ""}, {"worker_id", ""},
                  {"lease_expires_ms", 0}, {"attempts", 0}, {"result_json", ""}, {"error", ""}}}};
  };
  EXPECT_EQ(Call("enqueue_task", task(other_.id, kTaskMeasureModel, "m1", model_sha_)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("enqueue_task", task(job_.id, kTaskMeasureModel, "m1", other_sha_)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("enqueue_task", task(job_.id, kTaskMeasureKernel, "m1", model_sha_)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("enqueue_task", task(job_.id, kTaskMeasureModel, "m2", model_sha_)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(Call("enqueue_task", task(job_.id, kTaskMeasureModel, "m1", model_sha_)).ok());
  EXPECT_EQ(Call("poll_campaign", {{"machine_id", "m2"}}).status().code(), StatusCode::kPermissionDenied);
  // Blobs: only files of its own directory go in; only its request's and its own come out.
  const std::string outside = dir_.path() + "/outside";
  std::ofstream(outside) << "planted";
  EXPECT_EQ(Call("put_blob_file", {{"id", job_.id}, {"path", outside}}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("put_blob_file", {{"id", job_.id}, {"path", job_dir_ + "/../../outside"}}).status().code(),
            StatusCode::kPermissionDenied);
  fs::create_symlink(outside, job_dir_ + "/link");
  EXPECT_EQ(Call("put_blob_file", {{"id", job_.id}, {"path", job_dir_ + "/link"}}).status().code(),
            StatusCode::kPermissionDenied);
  // A hard link to a file of the server's is a file of one more link, not one of the job's.
  fs::create_hard_link(outside, job_dir_ + "/hard");
  EXPECT_EQ(Call("put_blob_file", {{"id", job_.id}, {"path", job_dir_ + "/hard"}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("read_blob", {{"sha256", other_sha_}}).status().code(), StatusCode::kPermissionDenied);
  // The progress cannot name another job's blob as an artifact (downloads serve artifacts),
  // nor reset how often the job's runners died (what stops a crash loop) or how long they
  // ran (what its time limit counts): the server writes the stored time plus this runner's.
  const json forged_progress = {
      {"artifacts", json::array({{{"name", "compressed.pt"}, {"sha256", other_sha_}, {"bytes", 1}}})}};
  EXPECT_EQ(Call("update_progress", {{"id", job_.id}, {"progress_json", forged_progress.dump()}}).status().code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(store_->UpdateJobProgress(job_.id, R"({"runner_deaths": 1, "run_seconds": 50})").ok());
  JobChannelServer resumed(job_.id, request_, job_dir_, host_.get(), measurements_.get(), MeasurementCampaignOptions{});
  EXPECT_TRUE(Call(resumed, "update_progress",
                   {{"id", job_.id}, {"progress_json", R"({"runner_deaths": 0, "run_seconds": 0})"}})
                  .ok());
  const JobProgress kept = JobProgress::FromJson(store_->GetJob(job_.id).value().progress_json);
  EXPECT_EQ(kept.runner_deaths, 1);
  EXPECT_GE(kept.run_seconds, 50);
  EXPECT_LT(kept.run_seconds, 50 + 3600);
  EXPECT_EQ(Call("models", {{"device_class", "m2"}}).status().code(), StatusCode::kPermissionDenied);

  const JobRecord untouched = store_->GetJob(other_.id).value();
  EXPECT_EQ(untouched.state, kJobSearching);
  EXPECT_TRUE(untouched.error.empty());
  EXPECT_TRUE(store_->EventsAfter(other_.id, 0).value().empty());
  EXPECT_EQ(store_->TasksOfJob(other_.id).value().size(), 1u);
  EXPECT_EQ(store_->StoredBytes("bob").value(), 0);

  // A model check's child (no job) may only read devices and predictors.
  JobChannelServer check("", request_, job_dir_, host_.get(), measurements_.get(), MeasurementCampaignOptions{});
  EXPECT_TRUE(Call(check, "devices", json::object()).ok());
  EXPECT_EQ(Call(check, "get_job", {{"id", job_.id}}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Call(check, "update_job", {{"job", JobJson(job_)}}).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(JobChannelTest, AnExportIsStreamedWithItsSha256AndOneLargerThanTheCapIsNotStored) {
  // More than one chunk, not a repeated byte: the digest covers every chunk in order.
  std::string content(BlobStore::kStreamChunkBytes * 3 / 2 + 7, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i * 7 % 26);
  const std::string path = job_dir_ + "/compressed.pt";
  std::ofstream(path, std::ios::binary) << content;
  StatusOr<json> put = Call("put_blob_file", {{"id", job_.id}, {"path", path}});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_EQ((*put)["code"], 0) << put->dump();
  EXPECT_EQ((*put)["value"]["sha256"], Sha256Hex(content));
  EXPECT_EQ((*put)["value"]["bytes"], static_cast<int64_t>(content.size()));
  EXPECT_EQ(blobs_->Read(Sha256Hex(content)).value(), content);
  EXPECT_EQ(store_->StoredBytes("alice").value(), static_cast<int64_t>(content.size()));

  // Past the cap: the operation's error (the job fails with it), naming the file and the
  // limit; no blob, no temporary file left.
  server_->set_max_export_bytes(1000);
  const std::string big(1001, 'b'), big_path = job_dir_ + "/big.pt";
  std::ofstream(big_path, std::ios::binary) << big;
  StatusOr<json> refused = Call("put_blob_file", {{"id", job_.id}, {"path", big_path}});
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ((*refused)["code"], static_cast<int>(StatusCode::kResourceExhausted));
  const std::string message = (*refused)["message"].get<std::string>();
  EXPECT_NE(message.find("'" + big_path + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("1000 bytes"), std::string::npos) << message;
  EXPECT_FALSE(blobs_->Has(Sha256Hex(big)));
  EXPECT_TRUE(fs::is_empty(dir_.path() + "/tmp"));
  EXPECT_EQ(store_->StoredBytes("alice").value(), static_cast<int64_t>(content.size()));  // nothing stored
  // The same cap while the bytes stream (a file that grows after its size was read).
  const int fd = open(big_path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(blobs_->PutFromFd(fd, 1000).status().code(), StatusCode::kResourceExhausted);
  close(fd);
  EXPECT_FALSE(blobs_->Has(Sha256Hex(big)));
  EXPECT_TRUE(fs::is_empty(dir_.path() + "/tmp"));

  // A sparse file past the default cap costs the child nothing: refused by its size.
  server_->set_max_export_bytes(kMaxArtifactBytes);
  const std::string sparse = job_dir_ + "/sparse.pt";
  std::ofstream(sparse).close();
  fs::resize_file(sparse, static_cast<uintmax_t>(kMaxArtifactBytes) + 1);
  StatusOr<json> sparse_refused = Call("put_blob_file", {{"id", job_.id}, {"path", sparse}});
  ASSERT_TRUE(sparse_refused.ok()) << sparse_refused.status().ToString();
  EXPECT_EQ((*sparse_refused)["code"], static_cast<int>(StatusCode::kResourceExhausted));
  EXPECT_TRUE(fs::is_empty(dir_.path() + "/tmp"));
}

TEST_F(JobChannelTest, AModelMeasurementIsStoredOnlyAsAFinishedTaskOfTheJobMeasuredIt) {
  Policy policy;
  policy.layers["conv1"].pattern = Pattern::kUnstructured;
  policy.layers["conv1"].sparsity = 0.5;
  const json result = {{"runtime", {{"median_us", 120.5}, {"iqr_us", 3.25}, {"min_us", 118.0}}},
                       {"dense", {{"median_us", 200.0}}}};
  TaskRecord t;
  t.job_id = job_.id;
  t.kind = kTaskMeasureModel;
  t.machine_id = "m1";
  t.spec_json = json{
      {"policy", json::parse(policy.ToJson(-1))},
      {"input_shape", request_.input_shape},
      {"threads", request_.threads},
      {"model_sha256", model_sha_},
      {"rank", 0},
      {"policy_hash", "ph-measured"},
      {"profile_runs",
       0}}.dump();
  t = store_->EnqueueTask(t).value();
  // What an honest runner sends (JobScheduler::RecordModelMeasurement).
  predictors::ModelRecord honest;
  honest.device_class = "m1";
  honest.model = "model-" + model_sha_.substr(0, 12);
  honest.policy_hash = "ph-measured";
  honest.policy_json = policy.ToJson(-1);
  honest.shape.threads = request_.threads;
  honest.median_us = 120.5;
  honest.iqr_us = 3.25;
  honest.min_us = 118.0;
  json record = result;
  record["job"] = {{"model_sha256", model_sha_}, {"input_shape", request_.input_shape}};
  honest.record_json = record.dump();
  auto add = [&](const predictors::ModelRecord& r) { return Call("add_model", {{"record", channel::ModelToJson(r)}}); };
  auto stored = [&] { return measurements_->Models("m1").value(); };

  // Not finished yet: nothing it could be the measurement of.
  StatusOr<json> early = add(honest);
  EXPECT_EQ(early.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(early.status().message().find("matches no finished measure-model task"), std::string::npos)
      << early.status().message();
  const std::vector<TaskRecord> leased = store_->LeaseTasks("w1", "m1", 1, 0, 60000).value();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(store_->ReportTask("w1", t.id, true, result.dump(), "", 3).value());

  // Forged figures (in the record, or in both the record and its result), another policy.
  predictors::ModelRecord faster = honest;
  faster.median_us = 60;
  json forged_result = record;
  forged_result["runtime"]["median_us"] = 60.0;
  predictors::ModelRecord both = faster;
  both.record_json = forged_result.dump();
  predictors::ModelRecord other_policy = honest;
  other_policy.policy_hash = "ph-never-measured";
  predictors::ModelRecord other_class = honest;
  other_class.device_class = "m2";
  for (const predictors::ModelRecord& forged : {faster, both, other_policy, other_class}) {
    StatusOr<json> r = add(forged);
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << forged.median_us << " " << forged.policy_hash;
  }
  EXPECT_TRUE(stored().empty());

  // The honest one is stored as the server built it, once however often sent.
  StatusOr<json> added = add(honest);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  ASSERT_EQ((*added)["code"], 0) << added->dump();
  StatusOr<json> again = add(honest);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)["value"], (*added)["value"]);
  // So does a runner resumed after recording it (a new channel for the same job).
  JobChannelServer resumed(job_.id, request_, job_dir_, host_.get(), measurements_.get(), MeasurementCampaignOptions{});
  StatusOr<json> after_resume = Call(resumed, "add_model", {{"record", channel::ModelToJson(honest)}});
  ASSERT_TRUE(after_resume.ok()) << after_resume.status().ToString();
  EXPECT_EQ((*after_resume)["value"], (*added)["value"]);
  const std::vector<predictors::ModelRecord> records = stored();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].median_us, 120.5);
  EXPECT_EQ(records[0].min_us, 118.0);
  EXPECT_EQ(json::parse(records[0].record_json)["job"]["task"], t.id);
}

TEST_F(JobChannelTest, TheModelsOpAnswersExactlyThisModelsRecordsAlsoFromADatabaseWrittenBeforeTheLookup) {
  auto add = [&](const std::string& device_class, const std::string& model_sha) {
    predictors::ModelRecord m;
    m.device_class = device_class;
    m.model = "m";
    m.policy_hash = "ph";
    m.policy_json = "{}";
    m.median_us = 10;
    m.record_json = json{{"job", {{"model_sha256", model_sha}}}}.dump();
    EXPECT_TRUE(measurements_->AddModel(m).ok());
    return m.id;
  };
  const std::vector<int64_t> rows = {add("m1", model_sha_), add("m1", other_sha_), add("m2", model_sha_),
                                     add("m1", model_sha_)};
  predictors::ModelRecord unowned;  // recorded before jobs said whose
  unowned.device_class = "m1";
  unowned.record_json = "{}";
  ASSERT_TRUE(measurements_->AddModel(unowned).ok());
  auto ids = [&](JobChannelServer& server, const json& args) {
    StatusOr<json> r = Call(server, "models", args);
    std::vector<int64_t> out;
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    EXPECT_EQ((*r)["code"], 0) << r->dump();
    for (const json& m : (*r)["value"]) out.push_back(channel::ModelFromJson(m).id);
    return out;
  };
  const std::vector<int64_t> expected = {rows[0], rows[3]};
  EXPECT_EQ(ids(*server_, {{"device_class", "m1"}}), expected);
  EXPECT_EQ(ids(*server_, {{"device_class", "m1"}, {"model_sha256", model_sha_}}), expected);
  EXPECT_EQ(Call("models", {{"device_class", "m1"}, {"model_sha256", other_sha_}}).status().code(),
            StatusCode::kPermissionDenied);

  // The same rows as a build before the lookup left them (no model_sha256 column, schema
  // 3), opened again: the migration fills the column from each record.
  {
    auto db = Db::Open(dir_.path() + "/acs.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("DROP INDEX model_measurements_by_model; ALTER TABLE model_measurements DROP COLUMN "
                           "model_sha256; UPDATE schema_migrations SET version = 3 WHERE component = 'measurements'")
                    .ok());
  }
  std::unique_ptr<predictors::MeasurementStore> migrated = predictors::OpenSqliteStore(dir_.path() + "/acs.db").value();
  JobChannelServer after(job_.id, request_, job_dir_, host_.get(), migrated.get(), MeasurementCampaignOptions{});
  EXPECT_EQ(ids(after, {{"device_class", "m1"}}), expected);
}

}  // namespace
}  // namespace acs::server
