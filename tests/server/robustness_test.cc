// One user's bad job never takes the real acs-server down: jobs run in child processes
// under memory and wall-clock limits, Submit checks a model in a child too, a runner that
// dies is resumed once and then failed, and a server restarted after that stays up.
// Nothing half-received is stored, nothing damaged is served, and one worker's token
// cannot speak for another's worker. Per-user limits answer RESOURCE_EXHAUSTED.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <png.h>

#include "core/tar.h"
#include "jobs_fixture.h"
#include "proto/farm.grpc.pb.h"
#include "robustness_fixture.h"

namespace {

using namespace acs::test_process;
namespace v1 = acs::v1;
using acs::test_jobs::ReadBytes;
using acs::test_jobs::States;

using acs::test_robustness::RobustnessTest;

TEST_F(RobustnessTest, HostileJobsFailAloneWhileAnotherUsersJobCompletes) {
  auto server = StartServer("server.log", {"--max-jobs", "3", "--job-memory-mb", "4096", "--job-wall-seconds", "45",
                                           "--check-seconds", "20"});
  auto worker = StartWorker("a");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  const std::string bob = Token("bob", "user");
  const std::string plain = UploadModel("plain", bob);
  const std::string loop = UploadModel("loop_forever", user_token_);
  // Models ordinary at batch 1 (Submit accepts them) that blow up in the search's batches;
  // they and the good job run while the refusals below are checked.
  const v1::Job hog = SubmitOk(Request(UploadModel("hog_memory", user_token_), "random", 2), user_token_);
  const v1::Job looping = SubmitOk(Request(loop, "random", 2), user_token_);
  // The good job prepares its data by a spec, which its report shows.
  v1::SubmitJobRequest prepared = Request(plain, "random", 3);
  v1::PreprocessStep* resize = prepared.add_preprocess();
  resize->set_op("resize");
  resize->add_size(16);
  prepared.add_preprocess()->set_op("grayscale_to_rgb");
  prepared.add_preprocess()->set_op("to_tensor");
  v1::PreprocessStep* normalize = prepared.add_preprocess();
  normalize->set_op("normalize");
  normalize->add_mean(0.286);
  normalize->add_std(0.353);
  // ... and names its split, shuffled, and a test set: the report and the job give the
  // test accuracy of the model downloaded.
  prepared.mutable_split()->mutable_calibration()->set_samples(32);
  prepared.mutable_split()->mutable_validation()->set_fraction(0.005);  // 300 of the 60000
  prepared.mutable_split()->set_shuffle_seed(5);
  prepared.set_test_dataset_name("fashion-mnist");
  const v1::Job good = SubmitOk(prepared, bob);
  ASSERT_EQ(good.request().preprocess_size(), 4);
  EXPECT_EQ(good.request().preprocess(0).size(0), 16);
  EXPECT_EQ(good.request().split().validation().fraction(), 0.005);

  // An input shape far beyond the server's cap is refused at Submit.
  v1::SubmitJobRequest huge = Request(plain, "random", 2);
  huge.clear_input_shape();
  for (int64_t d : {1, 1, 4096, 4096}) huge.add_input_shape(d);
  v1::Job refused;
  grpc::Status s = Submit(huge, &refused, bob);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("elements per input"), std::string::npos) << s.error_message();
  // One within the cap whose calibration and validation samples would not decode within
  // the dataset limit: refused at Submit too, not at the start of the search.
  v1::SubmitJobRequest wide = Request(UploadModel("grouped", bob), "random", 2);
  wide.clear_input_shape();
  for (int64_t d : {1, 3, 1100, 1100}) wide.add_input_shape(d);
  s = Submit(wide, &refused, bob);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("past this server's limit of 4 GiB (acs-server --max-dataset-gb"),
            std::string::npos)
      << s.error_message();

  // A preprocessing spec that is malformed, or does not make the input shape.
  v1::SubmitJobRequest blurred = Request(plain, "random", 2);
  blurred.add_preprocess()->set_op("blur");
  s = Submit(blurred, &refused, bob);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("preprocessing step 1 (blur): unknown op"), std::string::npos) << s.error_message();
  v1::SubmitJobRequest too_big = Request(plain, "random", 2);
  too_big.add_preprocess()->set_op("grayscale_to_rgb");
  s = Submit(too_big, &refused, bob);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("makes images of 3x28x28, but the model's input is 3x16x16"), std::string::npos)
      << s.error_message();

  // An image folder's archive with an entry that climbs out of it: refused, the entry named.
  {
    const fs::path image = fs::path(data_) / ".." / "climb.png";
    std::ofstream(image, std::ios::binary) << "png";
    const fs::path archive = fs::path(data_) / ".." / "climb.tar";
    ASSERT_TRUE(acs::WriteTar({{"coat/x.png", image.string()}}, archive.string()).ok());
    std::string bytes = ReadBytes(archive.string());
    std::memcpy(bytes.data(), "../../x.png", 12);  // the name field, NUL-terminated
    std::memset(bytes.data() + 148, ' ', 8);       // the checksum made right again
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bytes[i]);
    std::snprintf(bytes.data() + 148, 8, "%06o", sum);
    v1::UploadReply climbing;
    ASSERT_TRUE(Upload(bytes, &climbing, bob, /*dataset=*/true).ok());
    v1::SubmitJobRequest r = Request(plain, "random", 2);
    r.clear_dataset_name();
    r.set_dataset_sha256(climbing.sha256());
    s = Submit(r, &refused, bob);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("(a tar archive of an image folder): entry '../../x.png' points outside"),
              std::string::npos)
        << s.error_message();
  }

  // A model that never returns at Submit's input shape: its check is stopped at the limit.
  v1::SubmitJobRequest looping_check = Request(loop, "random", 2);
  looping_check.set_input_shape(0, 2);
  s = Submit(looping_check, &refused, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("exceeded the 20 s wall-clock limit"), std::string::npos) << s.error_message();
  {  // A split the data cannot hold is refused, naming it.
    v1::SubmitJobRequest oversplit = prepared;
    oversplit.mutable_split()->mutable_calibration()->set_samples(70000);
    s = Submit(oversplit, &refused, bob);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("holds 60000 samples, too few for the split (calibration 70000"),
              std::string::npos)
        << s.error_message();
    oversplit.mutable_split()->mutable_validation()->set_fraction(1.5);
    s = Submit(oversplit, &refused, bob);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("validation's fraction must be in (0, 1]"), std::string::npos)
        << s.error_message();
  }

  EXPECT_EQ(FinalState(good.id(), bob), "SUCCEEDED") << server->Log();
  const nlohmann::json report = nlohmann::json::parse(Download(good.id(), "report.json", bob));
  EXPECT_EQ(report["data"]["preprocess"],
            nlohmann::json::parse(R"([{"op": "resize", "size": [16]}, {"op": "grayscale_to_rgb"}, {"op": "to_tensor"},)"
                                  R"( {"op": "normalize", "mean": [0.286], "std": [0.353]}])"))
      << report["data"].dump();
  EXPECT_EQ(report["data"]["calibration"], 32);
  EXPECT_EQ(report["data"]["validation"], 300);
  EXPECT_EQ(report["data"]["shuffle_seed"], 5);
  const v1::Job good_done = Get(good.id(), bob);
  ASSERT_TRUE(report.contains("test")) << report.dump().substr(0, 2000);
  EXPECT_EQ(report["test"]["samples"], 10000);
  EXPECT_EQ(good_done.test_samples(), 10000);
  EXPECT_DOUBLE_EQ(good_done.test_accuracy(), report["test"]["exported_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(good_done.dense_test_accuracy(), report["test"]["dense_accuracy"].get<double>());
  EXPECT_EQ(FinalState(hog.id(), user_token_), "FAILED");
  const v1::Job hog_done = Get(hog.id(), user_token_);
  EXPECT_NE(hog_done.error().find("ran out of memory"), std::string::npos) << hog_done.error();
  EXPECT_NE(hog_done.error().find("4 GiB"), std::string::npos) << hog_done.error();
  EXPECT_EQ(FinalState(looping.id(), user_token_), "FAILED");
  const v1::Job loop_done = Get(looping.id(), user_token_);
  EXPECT_NE(loop_done.error().find("exceeded the 45 s wall-clock limit"), std::string::npos) << loop_done.error();

  // The server lived through all of it and still serves.
  grpc::Status alive;
  EXPECT_EQ(Get(good.id(), bob, &alive).state(), v1::SUCCEEDED);
  EXPECT_TRUE(alive.ok()) << alive.error_message();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(RobustnessTest, ARunnerThatDiesIsResumedUpToItsDeathLimitThenFailedAndTheRestartedServerStaysUp) {
  auto server = StartServer("server1.log", {"--max-runner-deaths", "3"});
  const v1::Job job = SubmitOk(Request(UploadModel("plain", user_token_), "random", 5000), user_token_);
  // Kills the job's runner once it has run an episode; the runner's pid.
  auto kill_runner = [&](pid_t previous) {
    pid_t runner = -1;
    EXPECT_TRUE(WaitFor(
        [&] {
          const std::vector<pid_t> children = ChildrenOf(server->pid());
          if (children.empty() || children.front() == previous) return false;
          runner = children.front();
          return Get(job.id(), user_token_).episodes_done() > 0;
        },
        120))
        << server->Log();
    if (runner > 0) ::kill(runner, SIGKILL);
    return runner;
  };
  const pid_t first = kill_runner(-1);
  ASSERT_GT(first, 0);
  const pid_t second = kill_runner(first);
  ASSERT_GT(second, 0);
  const pid_t third = kill_runner(second);  // --max-runner-deaths 3: resumed twice
  ASSERT_GT(third, 0);
  const std::vector<v1::JobEvent> events = Watch(job.id(), user_token_);
  ASSERT_FALSE(events.empty());
  bool resumed = false;
  for (const auto& e : events) resumed |= e.message().find("resuming from its last checkpoint") != std::string::npos;
  EXPECT_TRUE(resumed);
  EXPECT_EQ(States(events).back(), "FAILED") << server->Log();
  const v1::Job failed = Get(job.id(), user_token_);
  EXPECT_NE(failed.error().find("killed by signal 9"), std::string::npos) << failed.error();
  EXPECT_NE(failed.error().find("died 3 times"), std::string::npos) << failed.error();

  // A restarted server does not run the failed job again, and serves.
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
  server = StartServer("server2.log");
  grpc::Status s;
  EXPECT_EQ(Get(job.id(), user_token_, &s).state(), v1::FAILED);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(ChildrenOf(server->pid()).empty());
}

TEST_F(RobustnessTest, UploadsAreWholeOrNotStoredAndDamagedArtifactsAreRefused) {
  auto server = StartServer("server.log");
  const std::string bytes = ReadBytes(model_);
  ASSERT_GT(bytes.size(), 2000u);
  // Starts an upload and sends the first 1000 bytes; `announce` states the whole size.
  auto send_head = [&](grpc::ClientContext* ctx, v1::UploadReply* reply, bool announce) {
    Auth(ctx, user_token_);
    auto writer = stub_->UploadModel(ctx, reply);
    v1::UploadChunk chunk;
    chunk.set_name("partial");
    if (announce) chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
    chunk.set_data(bytes.substr(0, 1000));
    EXPECT_TRUE(writer->Write(chunk));
    return writer;
  };
  {  // fewer bytes than announced
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto writer = send_head(&ctx, &reply, true);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("announced"), std::string::npos) << s.error_message();
  }
  {  // abandoned by the client midway
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto writer = send_head(&ctx, &reply, false);
    ctx.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Neither stored a blob: their first 1000 bytes arrive as new.
  v1::UploadReply head;
  ASSERT_TRUE(Upload(bytes.substr(0, 1000), &head, user_token_).ok());
  EXPECT_FALSE(head.deduplicated());

  // A finished job's artifact damaged on the server's disk is refused at download.
  v1::UploadReply model;
  ASSERT_TRUE(Upload(bytes, &model, user_token_).ok());
  v1::SubmitJobRequest request = Request(model.sha256(), "random", 2);
  request.set_top_k(0);
  const v1::Job job = SubmitOk(request, user_token_);
  ASSERT_EQ(FinalState(job.id(), user_token_), "SUCCEEDED") << server->Log();
  grpc::Status s;
  const std::string whole = Download(job.id(), "compressed.pt", user_token_, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::string sha;
  const v1::Job done = Get(job.id(), user_token_);
  for (const auto& a : done.artifacts()) {
    if (a.name() == "compressed.pt") sha = a.sha256();
  }
  ASSERT_EQ(sha.size(), 64u);
  const fs::path blob = fs::path(data_) / "blobs" / sha.substr(0, 2) / sha;
  ASSERT_TRUE(fs::exists(blob));
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(whole.size() / 2));
    f.put(static_cast<char>(whole[whole.size() / 2] ^ 0x5a));
  }
  const std::string damaged = Download(job.id(), "compressed.pt", user_token_, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(s.error_message().find("damaged on the server"), std::string::npos) << s.error_message();
  EXPECT_TRUE(damaged.empty());
}

TEST_F(RobustnessTest, PerUserLimitsAnswerResourceExhausted) {
  auto server =
      StartServer("server.log", {"--max-user-jobs", "1", "--max-watchers", "1", "--max-checks", "1", "--check-seconds",
                                 "20", "--max-user-storage-mb", "1", "--max-episodes", "6000", "--max-top-k", "4"});
  const std::string model = UploadModel("plain", user_token_);
  {  // the server's caps on a request, from its flags
    v1::Job refused;
    grpc::Status s = Submit(Request(model, "random", 6001), &refused, user_token_);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("episodes must be in [1, 6000]"), std::string::npos) << s.error_message();
    v1::SubmitJobRequest many = Request(model, "random", 2);
    many.set_top_k(5);
    s = Submit(many, &refused, user_token_);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("top_k must be in [0, 4]"), std::string::npos) << s.error_message();
  }
  // A quota of 1 MiB stored per user: alice's second 600 KB blob would pass it.
  const std::string first_blob(600 << 10, 'a'), second_blob(600 << 10, 'b');
  v1::UploadReply uploaded;
  ASSERT_TRUE(Upload(first_blob, &uploaded, user_token_, /*dataset=*/true).ok());
  grpc::Status quota = Upload(second_blob, &uploaded, user_token_, true);
  EXPECT_EQ(quota.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(quota.error_message().find("of a quota of 1048576"), std::string::npos) << quota.error_message();
  const std::string bob = Token("bob", "user");
  EXPECT_TRUE(Upload(second_blob, &uploaded, bob, true).ok());  // bob's quota is his own
  const v1::Job running = SubmitOk(Request(model, "random", 5000), user_token_);
  v1::Job refused;
  grpc::Status s = Submit(Request(model, "random", 2), &refused, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("limit per user"), std::string::npos) << s.error_message();
  // Another user is not held back by alice's jobs.
  const v1::Job bobs = SubmitOk(Request(UploadModel("plain", bob), "random", 5000), bob);

  // One watch of alice's is open; a second is refused while it lasts.
  grpc::ClientContext first;
  Auth(&first, user_token_);
  v1::WatchJobRequest watch;
  watch.set_id(running.id());
  auto reader = stub_->WatchJob(&first, watch);
  v1::JobEvent event;
  ASSERT_TRUE(reader->Read(&event));  // the stream is open on the server
  {
    grpc::ClientContext second;
    Auth(&second, user_token_);
    auto refused_reader = stub_->WatchJob(&second, watch);
    while (refused_reader->Read(&event)) {
    }
    s = refused_reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(s.error_message().find("watching"), std::string::npos) << s.error_message();
  }
  first.TryCancel();
  reader->Finish();

  // One Submit check at a time: while a model that never returns holds the slot (20 s),
  // others' submissions are refused; if one of theirs held it first, the looping one is.
  const std::string dave = Token("dave", "user");
  const std::string loop = UploadModel("loop_forever", dave);
  v1::SubmitJobRequest looping_check = Request(loop, "random", 2);
  looping_check.set_input_shape(0, 2);
  grpc::Status looping_status;
  std::thread looping([&] {
    v1::Job unused;
    looping_status = Submit(looping_check, &unused, dave);
  });
  std::vector<v1::Job> accepted;
  bool refused_for_checks = false;
  std::string other = Token("carol0", "user");
  std::string others_model = UploadModel("plain", other);  // a job names its owner's blobs
  for (int attempt = 0; attempt < 40 && !refused_for_checks; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    v1::Job job;
    s = Submit(Request(others_model, "random", 5000), &job, other);
    if (s.ok()) {  // the slot was free: the next try as another user (one job each)
      accepted.push_back(job);
      other = Token("carol" + std::to_string(accepted.size()), "user");
      others_model = UploadModel("plain", other);
    }
    refused_for_checks = s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                         s.error_message().find("being checked") != std::string::npos;
  }
  looping.join();
  refused_for_checks = refused_for_checks || (looping_status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                                              looping_status.error_message().find("being checked") != std::string::npos);
  EXPECT_TRUE(refused_for_checks) << s.error_message() << " / " << looping_status.error_message();
  accepted.push_back(running);
  accepted.push_back(bobs);
  for (const v1::Job& j : accepted) {
    grpc::ClientContext ctx;
    Auth(&ctx, admin_);
    v1::CancelJobRequest cancel;
    cancel.set_id(j.id());
    v1::Job reply;
    EXPECT_TRUE(stub_->CancelJob(&ctx, cancel, &reply).ok());
  }
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

// A job whose artifacts take its owner past the storage quota still succeeds with them;
// only the owner's next upload and submit are refused, another user's are not.
TEST_F(RobustnessTest, AJobPastItsOwnersStorageQuotaSucceedsAndOnlyTheirNextUploadAndSubmitAreRefused) {
  auto server = StartServer("server.log", {"--max-user-storage-mb", "1"});
  v1::UploadReply model, filler;
  ASSERT_TRUE(Upload(ReadBytes(acs::test_models::BuildTestModel("plain", 5)), &model, user_token_).ok());
  // Alice stores exactly her 1 MiB: her job's artifacts (new blobs) pass it.
  ASSERT_TRUE(Upload(std::string((1 << 20) - model.bytes(), 'f'), &filler, user_token_, /*dataset=*/true).ok());
  v1::SubmitJobRequest request = Request(model.sha256(), "random", 3);
  request.set_top_k(0);
  const v1::Job job = SubmitOk(request, user_token_);
  EXPECT_EQ(FinalState(job.id(), user_token_), "SUCCEEDED") << server->Log();
  EXPECT_GT(Get(job.id(), user_token_).artifacts_size(), 0);
  grpc::Status s;
  EXPECT_FALSE(Download(job.id(), "compressed.pt", user_token_, &s).empty());
  EXPECT_TRUE(s.ok()) << s.error_message();

  v1::UploadReply more;
  s = Upload("more", &more, user_token_, true);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("(uploads and job artifacts) of a quota of 1048576"), std::string::npos)
      << s.error_message();
  v1::Job refused;
  s = Submit(request, &refused, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("over it: no new job until an admin raises --max-user-storage-mb"),
            std::string::npos)
      << s.error_message();
  const std::string bob = Token("bob", "user");
  EXPECT_TRUE(Upload("more", &more, bob, true).ok());
  v1::UploadReply bobs_model;  // the same model, his own upload (a job names its owner's blobs)
  ASSERT_TRUE(Upload(ReadBytes(acs::test_models::BuildTestModel("plain", 5)), &bobs_model, bob).ok());
  SubmitOk(request, bob);
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(RobustnessTest, AWorkersTokenCannotSpeakForAnotherWorker) {
  auto server = StartServer("server.log");
  auto worker = StartWorker("a");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  grpc::ClientContext list_ctx;
  Auth(&list_ctx, admin_);
  v1::ListDevicesReply devices;
  ASSERT_TRUE(stub_->ListDevices(&list_ctx, v1::ListDevicesRequest(), &devices).ok());
  ASSERT_EQ(devices.devices_size(), 1);
  const std::string victim = devices.devices(0).worker_id();

  const std::string mallory = Token("mallory", "worker");
  auto farm = acs::farm::v1::Farm::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    Auth(&ctx, mallory);
    acs::farm::v1::ReportRequest forged;
    forged.set_worker_id(victim);
    forged.set_task_id("task-0000");
    forged.set_ok(true);
    forged.set_result_json(R"({"median_us": 1})");
    acs::farm::v1::ReportReply reply;
    grpc::Status s = farm->Report(&ctx, forged, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(s.error_message().find("another token"), std::string::npos) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    Auth(&ctx, mallory);
    acs::farm::v1::LeaseRequest lease;
    lease.set_worker_id(victim);
    lease.set_max_tasks(1);
    acs::farm::v1::LeaseReply reply;
    EXPECT_EQ(farm->Lease(&ctx, lease, &reply).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // The real worker still works for its token.
  EXPECT_TRUE(WaitForWorkers(1));
}

// An uploaded image folder is extracted by each process that reads it (Submit's check, the
// job's runner) inside its own directory, removed with it: nothing is left where another
// job's runner could change it.
TEST_F(RobustnessTest, AnUploadedImageFolderIsExtractedOnlyInsideTheProcessesOwnDirectory) {
  auto server = StartServer("server.log");
  auto worker = StartWorker("a");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  const fs::path folder = fs::path(data_) / ".." / "folder";
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 12; ++i) {
    const std::string name = std::string(i % 2 ? "coat" : "shirt") + "/" + std::to_string(i) + ".png";
    fs::create_directories(folder / (i % 2 ? "coat" : "shirt"));
    std::vector<uint8_t> pixels(16 * 16 * 3, static_cast<uint8_t>(20 * i));
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = 16;
    image.height = 16;
    image.format = PNG_FORMAT_RGB;
    ASSERT_TRUE(png_image_write_to_file(&image, (folder / name).c_str(), 0, pixels.data(), 0, nullptr));
    entries.push_back({name, (folder / name).string()});
  }
  const fs::path archive = fs::path(data_) / ".." / "folder.tar";
  ASSERT_TRUE(acs::WriteTar(entries, archive.string()).ok());
  v1::UploadReply uploaded;
  ASSERT_TRUE(Upload(ReadBytes(archive.string()), &uploaded, user_token_, /*dataset=*/true).ok());
  v1::SubmitJobRequest r = Request(UploadModel("plain", user_token_), "random", 2);
  r.clear_dataset_name();
  r.set_dataset_sha256(uploaded.sha256());
  r.mutable_split()->mutable_calibration()->set_samples(4);
  r.mutable_split()->mutable_validation()->set_samples(6);
  const v1::Job job = SubmitOk(r, user_token_);
  EXPECT_EQ(FinalState(job.id(), user_token_), "SUCCEEDED") << server->Log();
  EXPECT_FALSE(fs::exists(fs::path(data_) / "work" / "datasets"));
  // The server removes the runner's directory once it has reaped the runner, which may be
  // just after the runner stored the job's last event.
  const fs::path job_dir = fs::path(data_) / "work" / job.id();
  for (int i = 0; i < 600 && fs::exists(job_dir); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(fs::exists(job_dir));
}

}  // namespace
