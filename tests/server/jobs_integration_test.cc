// Jobs through the real acs-server with two real acs-worker processes on loopback, over
// the gRPC client API: upload -> submit -> watch -> download; two jobs at once (one
// fine-tuned); cancel; a
// latency job on a device class without predictor (a campaign first); the server killed
// mid-job and restarted (the job resumes from its checkpoint and completes); a predictor
// made optimistic for one pattern corrected by the closed loop; bad uploads,
// bad requests, tokens and unknown ids each get a clear status; TLS.
#include <dlfcn.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/sandbox.h"
#include "jobs_fixture.h"
#include "predictors/features.h"
#include "predictors/predictor.h"
#include "predictors/sampling.h"
#include "predictors/store.h"

namespace {

using namespace acs::test_process;
namespace v1 = acs::v1;

using JobsIntegrationTest = acs::test_jobs::JobsServerTest;
using acs::test_jobs::ReadBytes;
using acs::test_jobs::States;

TEST_F(JobsIntegrationTest, SubmitWatchDownloadTwoAtOnceAndCancel) {
  auto server = StartServer("server.log");
  auto a = StartWorker("a");
  auto b = StartWorker("b");
  ASSERT_TRUE(WaitForWorkers(2)) << server->Log();

  v1::UploadReply model;
  ASSERT_TRUE(Upload(ReadBytes(model_), &model, user_token_).ok());
  v1::UploadReply again;
  ASSERT_TRUE(Upload(ReadBytes(model_), &again, user_token_).ok());
  EXPECT_EQ(again.sha256(), model.sha256());
  EXPECT_TRUE(again.deduplicated());

  v1::Job first, second, long_job;
  ASSERT_TRUE(Submit(Request(model.sha256(), "random", 5), &first, user_token_).ok());
  v1::SubmitJobRequest tuned = Request(model.sha256(), "evo", 5);
  tuned.set_fine_tune(true);
  ASSERT_TRUE(Submit(tuned, &second, user_token_).ok());
  ASSERT_TRUE(Submit(Request(model.sha256(), "random", 5000), &long_job, user_token_).ok());
  EXPECT_EQ(first.state(), v1::QUEUED);

  const std::vector<v1::JobEvent> events = Watch(first.id(), user_token_);
  const std::vector<v1::JobEvent> events2 = Watch(second.id(), user_token_);
  EXPECT_EQ(States(events), (std::vector<std::string>{"QUEUED", "SEARCHING", "VERIFYING", "SUCCEEDED"}))
      << server->Log();
  EXPECT_EQ(States(events2).back(), "SUCCEEDED") << server->Log();
  bool fine_tuned = false;
  for (const auto& e : events2) fine_tuned |= e.message().find("fine-tuned from") != std::string::npos;
  EXPECT_TRUE(fine_tuned);
  const nlohmann::json tuned_report = nlohmann::json::parse(Download(second.id(), "report.json", user_token_));
  ASSERT_TRUE(tuned_report.contains("fine_tune")) << tuned_report.dump().substr(0, 500);
  EXPECT_GT(tuned_report["fine_tune"]["steps"].get<int>(), 0);
  // The job shows the accuracy of the model the user downloads, as its report does.
  const v1::Job& tuned_final = events2.back().job();
  EXPECT_GT(tuned_final.exported_accuracy(), 0);
  EXPECT_DOUBLE_EQ(tuned_final.exported_accuracy(), tuned_report["exported_accuracy"].get<double>());
  EXPECT_GE(tuned_final.exported_accuracy(), tuned_report["fine_tune"]["accuracy_before"].get<double>());
  EXPECT_NE(events2.back().message().find("compressed.pt scores"), std::string::npos) << events2.back().message();
  std::vector<int> episodes;
  int verified = 0;
  for (const auto& e : events) {
    if (e.kind() == v1::JobEvent::EPISODE) episodes.push_back(e.episode());
    if (e.kind() == v1::JobEvent::VERIFIED) {
      ++verified;
      EXPECT_NE(e.message().find("measured"), std::string::npos) << e.message();
    }
  }
  EXPECT_EQ(episodes, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(verified, 2 + 2);  // top 2, the exported one in 3 runs

  const v1::Job done = Get(first.id(), user_token_);
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_EQ(done.episodes_done(), 5);
  EXPECT_GT(done.best_measured_latency_us(), 0);
  EXPECT_GT(done.dense_measured_latency_us(), 0);
  // The downloaded file's own speed, in LibTorch without the acs kernels, beside the runtime's.
  EXPECT_GT(done.stock_measured_latency_us(), 0);
  EXPECT_EQ(done.request().device_class().empty(), false);
  // The acs runtime's own file, timed in the same tasks.
  EXPECT_NE(events.back().message().find("compressed.acs.pt with libacs_ops"), std::string::npos)
      << events.back().message();
  ASSERT_EQ(done.artifacts_size(), 4);
  for (const auto& art : done.artifacts()) {
    const std::string bytes = Download(first.id(), art.name(), user_token_);
    EXPECT_EQ(static_cast<int64_t>(bytes.size()), art.bytes()) << art.name();
    if (art.name() == "report.json") {
      const nlohmann::json report = nlohmann::json::parse(bytes);
      EXPECT_EQ(report["episodes"].size(), 5u);
      EXPECT_EQ(report["verification"].size(), 4u);
    }
    if (art.name() == "compressed.pt" || art.name() == "compressed.acs.pt") {
      const fs::path path = dir_ / art.name();
      std::ofstream(path, std::ios::binary) << bytes;
      if (art.name() == "compressed.acs.pt") {  // the acs_rt ops, as a user's program loads them
        ASSERT_NE(dlopen(ACS_OPS_LIBRARY, RTLD_NOW | RTLD_GLOBAL), nullptr) << dlerror();
      }
      torch::jit::Module loaded;
      ASSERT_NO_THROW(loaded = torch::jit::load(path.string())) << art.name();
      std::vector<int64_t> shape(done.request().input_shape().begin(), done.request().input_shape().end());
      const torch::Tensor y = loaded.forward({torch::rand(shape)}).toTensor();
      EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << art.name();
    }
  }

  // The long job ran beside them (two at once) and is cancelled mid-search.
  ASSERT_TRUE(WaitFor([&] { return Get(long_job.id(), user_token_).episodes_done() >= 2; }, 120)) << server->Log();
  {
    grpc::ClientContext ctx;
    Auth(&ctx, user_token_);
    v1::CancelJobRequest req;
    req.set_id(long_job.id());
    v1::Job reply;
    ASSERT_TRUE(stub_->CancelJob(&ctx, req, &reply).ok());
  }
  const std::vector<v1::JobEvent> cancelled = Watch(long_job.id(), user_token_);
  EXPECT_EQ(States(cancelled).back(), "CANCELLED");
  EXPECT_LT(Get(long_job.id(), user_token_).episodes_done(), 5000);
  {
    grpc::ClientContext ctx;
    Auth(&ctx, user_token_);
    v1::CancelJobRequest req;
    req.set_id(long_job.id());
    v1::Job reply;
    const grpc::Status twice = stub_->CancelJob(&ctx, req, &reply);
    EXPECT_EQ(twice.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  // Listing: the user's three jobs in submission order.
  grpc::ClientContext ctx;
  Auth(&ctx, user_token_);
  v1::ListJobsRequest list;
  v1::ListJobsReply jobs;
  ASSERT_TRUE(stub_->ListJobs(&ctx, list, &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 3);
  EXPECT_EQ(jobs.jobs(0).id(), first.id());
  EXPECT_EQ(jobs.jobs(2).state(), v1::CANCELLED);
  // All of it with the runners' writes confined, where the kernel can (docs/service.md).
  if (acs::WriteConfinementSupport().ok()) {
    EXPECT_NE(server->Log().find("job runners write only their own files"), std::string::npos) << server->Log();
    EXPECT_NE(server->Log().find("(writes confined)"), std::string::npos) << server->Log();
  }
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(JobsIntegrationTest, LatencyJobSurvivesAKilledServer) {
  auto server = StartServer("server1.log", {"--budget-rounds", "0"});
  auto a = StartWorker("a");
  auto b = StartWorker("b");
  ASSERT_TRUE(WaitForWorkers(2)) << server->Log();
  v1::UploadReply model;
  ASSERT_TRUE(Upload(ReadBytes(model_), &model, admin_).ok());
  v1::Job job;
  // No predictor for the workers' class yet: the job measures a campaign first.
  // The tiny model spends most of its time between its layers: only a loose budget is in
  // reach once its dense latency is measured.
  v1::SubmitJobRequest request = Request(model.sha256(), "amc", 20, "latency");
  request.mutable_budget()->set_ratio(1.0);
  grpc::Status submitted = Submit(request, &job, admin_);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  ASSERT_TRUE(WaitFor([&] { return Get(job.id(), admin_).episodes_done() >= 3; }, 300)) << server->Log();
  EXPECT_EQ(server->Kill(SIGKILL), -SIGKILL);
  server = StartServer("server2.log", {"--budget-rounds", "0"});
  const std::vector<v1::JobEvent> events = Watch(job.id(), admin_);
  ASSERT_FALSE(events.empty()) << server->Log();
  const std::vector<std::string> states = States(events);
  EXPECT_EQ(states.front(), "QUEUED");
  EXPECT_NE(std::find(states.begin(), states.end(), "PREPARING"), states.end());
  bool resumed = false, probed = false, repeated = false;
  std::set<int> episodes;
  for (const auto& e : events) {
    resumed |= e.message().find("resumed after episode") != std::string::npos;
    // Measured with the dense model: the policies that fit the own kernels' scale.
    probed |= e.message().find(" probe policies measured at ") != std::string::npos;
    // The dense model measured in as many tasks as a verified policy (--verify-runs 3).
    repeated |= e.message().find("median of 3 tasks") != std::string::npos;
    if (e.kind() == v1::JobEvent::EPISODE) episodes.insert(e.episode());
  }
  EXPECT_TRUE(resumed);
  EXPECT_TRUE(probed) << server->Log();
  EXPECT_TRUE(repeated) << server->Log();
  EXPECT_EQ(episodes.size(), 20u);  // every episode once in the log (re-run ones are the same numbers)
  const v1::Job done = Get(job.id(), admin_);
  EXPECT_EQ(done.episodes_done(), 20);
  EXPECT_GT(done.dense_predicted_latency_us(), 0);
  EXPECT_GT(done.best_predicted_latency_us(), 0);
  EXPECT_LE(done.best_predicted_latency_us(), 1.0 * done.dense_predicted_latency_us() * 1.0001);
  EXPECT_GT(done.best_measured_latency_us(), 0);
  // Success only at the budget as measured (+5%); otherwise the job says by how much it missed.
  const double measured_ratio = done.best_measured_latency_us() / done.dense_measured_latency_us();
  if (measured_ratio <= 1.0 * 1.05) {
    EXPECT_EQ(states.back(), "SUCCEEDED") << server->Log();
  } else {
    EXPECT_EQ(states.back(), "BUDGET_NOT_MET") << server->Log();
    EXPECT_NE(done.error().find("budget not met: measured"), std::string::npos) << done.error();
  }
  const nlohmann::json report = nlohmann::json::parse(Download(job.id(), "report.json", admin_));
  EXPECT_EQ(report["budget_outcome"]["met"].get<bool>(), states.back() == "SUCCEEDED") << report["budget_outcome"];
  EXPECT_NEAR(report["budget_outcome"]["measured_ratio"].get<double>(), measured_ratio, 1e-9);
  ASSERT_EQ(report["episodes"].size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(report["episodes"][i]["episode"].get<int>(), i);
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

// Forged kernel measurements: dense work at 20 GFLOP/s, and every block-sparse kernel 20x
// faster than that, which no CPU here runs.
std::vector<acs::predictors::KernelRecord> OptimisticForBlock(const std::string& device_class) {
  using namespace acs::predictors;
  KernelSampler sampler(ShapePrior::Builtin(), SampleSpace{}, 5);
  std::vector<KernelRecord> records;
  for (const acs::KernelSpec& spec : sampler.Sample(400)) {
    const acs::KernelSpec run = acs::AsRun(spec);
    double us = 1.0 + 2.0 * RunStats(run).macs_nonzero / 20e3;
    if (acs::KernelOf(spec).kind == acs::KernelKind::kBlockSparse) us /= 20;
    KernelRecord r;
    r.device_class = device_class;
    r.spec = spec;
    r.median_us = r.min_us = us;
    r.repeats = 1;
    r.source = "initial";
    r.record_json = "{}";
    records.push_back(r);
  }
  return records;
}

// The closed loop: the search trusts a predictor that finds block sparsity almost free, so
// its first result misses the budget as measured; the verified policies' layers are then
// measured, the predictor retrained on them and the search continued. The job ends within
// its budget as measured, or says by how much it missed; never a plain success over it.
TEST_F(JobsIntegrationTest, ClosedLoopRetrainsAnOptimisticPredictor) {
  auto server = StartServer("server.log", {"--no-model-measurement", "--budget-rounds", "1"});
  auto a = StartWorker("a");
  auto b = StartWorker("b");
  ASSERT_TRUE(WaitForWorkers(2)) << server->Log();
  std::string device_class;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, admin_);
    v1::ListDevicesReply devices;
    ASSERT_TRUE(stub_->ListDevices(&ctx, v1::ListDevicesRequest(), &devices).ok());
    ASSERT_GT(devices.devices_size(), 0);
    device_class = devices.devices(0).device_class();
  }
  {  // the forged predictor becomes the class's newest (the store is shared through SQLite)
    auto store = acs::predictors::OpenSqliteStore((fs::path(data_) / "acs.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<acs::predictors::KernelRecord> records = OptimisticForBlock(device_class);
    ASSERT_TRUE((*store)->AddKernels(records).ok());
    auto trained = acs::predictors::TrainForStore(device_class, records, {}, {{"forged", true}});
    ASSERT_TRUE(trained.ok()) << trained.status().ToString();
    ASSERT_TRUE((*store)->AddPredictor(trained->record).ok());
  }
  v1::UploadReply model;
  ASSERT_TRUE(Upload(ReadBytes(model_), &model, admin_).ok());
  v1::SubmitJobRequest request = Request(model.sha256(), "uniform", 6, "latency");
  request.mutable_space()->add_patterns("block");
  v1::Job job;
  grpc::Status submitted = Submit(request, &job, admin_);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  const std::vector<v1::JobEvent> events = Watch(job.id(), admin_);
  const v1::Job done = Get(job.id(), admin_);
  bool second_round = false, measured_layers = false, refitted = false;
  int verified_runs = 0, other_rank_runs_before_second_round = 0;
  for (const auto& e : events) {
    second_round |= e.message().find("searching again with latency predictor") != std::string::npos;
    measured_layers |= e.message().find("kernels of the verified policies' layers") != std::string::npos;
    refitted |= e.message().find("layers' predictions x") != std::string::npos;
    verified_runs += e.kind() == v1::JobEvent::VERIFIED && e.message().find("policy #1 (run ") != std::string::npos;
    other_rank_runs_before_second_round += !second_round && e.kind() == v1::JobEvent::VERIFIED &&
                                           e.message().find("policy #2 (run ") != std::string::npos;
  }
  EXPECT_TRUE(measured_layers) << server->Log();
  EXPECT_TRUE(second_round) << server->Log();
  EXPECT_GE(verified_runs, 2);  // the exported policy is measured in 3 tasks
  // The next round refits on each rank's median: the second policy got its 3 tasks too.
  EXPECT_EQ(other_rank_runs_before_second_round, 2) << server->Log();
  EXPECT_GE(done.episodes_done(), 6);  // 6, then 3 more if the budget is still in reach
  ASSERT_GT(done.best_measured_latency_us(), 0) << server->Log();
  const double measured_ratio = done.best_measured_latency_us() / done.dense_measured_latency_us();
  // A second search refits the layers' predictions on the policies measured in the first.
  if (done.episodes_done() == 9) {
    EXPECT_TRUE(refitted) << server->Log();
  }
  if (done.state() == v1::SUCCEEDED) {
    EXPECT_EQ(done.episodes_done(), 9);
    EXPECT_LE(measured_ratio, 0.5 * 1.05);
  } else {
    EXPECT_EQ(done.state(), v1::BUDGET_NOT_MET) << done.error() << "\n" << server->Log();
    EXPECT_NE(done.error().find("budget not met: measured"), std::string::npos) << done.error();
    const bool searched_again = done.error().find("after 2 search rounds") != std::string::npos;
    const bool out_of_reach = done.error().find("found the budget out of reach") != std::string::npos;
    EXPECT_TRUE(searched_again || out_of_reach) << done.error();
    if (searched_again) {
      EXPECT_GT(measured_ratio, 0.5 * 1.05);
    }
  }
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(JobsIntegrationTest, BadInputsGetClearStatuses) {
  auto server = StartServer("server.log");
  auto a = StartWorker("a");
  ASSERT_TRUE(WaitForWorkers(1)) << server->Log();
  v1::UploadReply reply;
  // Over the 1 MiB limit: announced, and streamed without announcing.
  const grpc::Status big = Upload(std::string(3 << 20, 'x'), &reply, user_token_);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << big.error_message();
  EXPECT_NE(big.error_message().find("limit"), std::string::npos);

  v1::UploadReply corrupt, model;
  ASSERT_TRUE(Upload("this is not a TorchScript file", &corrupt, user_token_).ok());
  ASSERT_TRUE(Upload(ReadBytes(model_), &model, user_token_).ok());
  v1::Job job;
  grpc::Status s = Submit(Request(corrupt.sha256(), "random", 3), &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("model"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest wrong_shape = Request(model.sha256(), "random", 3);
  wrong_shape.set_input_shape(1, 5);
  s = Submit(wrong_shape, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("input shape"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest unknown_model = Request(std::string(64, 'a'), "random", 3);
  s = Submit(unknown_model, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("not uploaded"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest agent = Request(model.sha256(), "sgd", 3);
  s = Submit(agent, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("unknown agent 'sgd'"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest dataset = Request(model.sha256(), "random", 3);
  dataset.set_dataset_name("no-such-data");
  s = Submit(dataset, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("no dataset named 'no-such-data'"), std::string::npos) << s.error_message();

  v1::UploadReply junk_data;
  ASSERT_TRUE(Upload("not a dataset", &junk_data, user_token_, true).ok());
  v1::SubmitJobRequest bad_data = Request(model.sha256(), "random", 3);
  bad_data.set_dataset_sha256(junk_data.sha256());
  s = Submit(bad_data, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("dataset"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest unmeetable = Request(model.sha256(), "random", 3);
  unmeetable.mutable_budget()->set_ratio(0.001);
  s = Submit(unmeetable, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("budget"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest device = Request(model.sha256(), "random", 3);
  device.set_device_class("riscv-phone");
  s = Submit(device, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("no worker of device class 'riscv-phone'"), std::string::npos) << s.error_message();

  // Unknown job, another user's job, tokens.
  grpc::Status get;
  Get("job-000000000000", user_token_, &get);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Submit(Request(model.sha256(), "random", 2), &job, admin_).ok());
  Get(job.id(), user_token_, &get);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::NOT_FOUND);
  Download(job.id(), "nothing.bin", admin_, &get);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::NOT_FOUND);
  Get(job.id(), "acs_not-a-token", &get);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  Get(job.id(), worker_token_, &get);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = Upload(ReadBytes(model_), &reply, worker_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(States(Watch(job.id(), admin_)).back(), "SUCCEEDED") << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(JobsIntegrationTest, ServesTlsWhenGivenCertificates) {
  const std::string key = (dir_ / "key.pem").string(), cert = (dir_ / "cert.pem").string();
  Output gen = Command("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
                       "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + key + " -out " + cert,
                       dir_);
  if (gen.code != 0) GTEST_SKIP() << "openssl cannot make a test certificate: " << gen.out;
  auto server = StartServer("server.log", {"--tls-cert", cert, "--tls-key", key});
  auto worker = std::make_unique<Process>(
      std::vector<std::string>{worker_, "serve", "--server", address_, "--token", worker_token_, "--tls-ca", cert},
      dir_ / "worker.log");
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadBytes(cert);
  stub_ = v1::Acs::NewStub(grpc::CreateChannel(address_, grpc::SslCredentials(ssl)));
  EXPECT_TRUE(WaitForWorkers(1)) << server->Log() << worker->Log();
  // A plain-text client does not get through.
  auto plain = v1::Acs::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + admin_);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListDevicesReply reply;
  EXPECT_FALSE(plain->ListDevices(&ctx, v1::ListDevicesRequest(), &reply).ok());
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

}  // namespace
