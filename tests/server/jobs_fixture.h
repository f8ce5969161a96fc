// The real acs-server and acs-worker processes on loopback for the job tests: a fresh
// data dir with admin, worker and user tokens, and the client API calls the tests make
// (upload, submit, get, watch, download).
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "process_util.h"
#include "proto/acs.grpc.pb.h"
#include "tests/core/test_models.h"

namespace acs::test_jobs {

using namespace acs::test_process;
namespace v1 = acs::v1;

class JobsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / (DirPrefix() + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string bin = ACS_BINARY_DIR;
    server_ = bin + "/server/acs-server";
    worker_ = bin + "/devices/acs-worker";
    data_ = (dir_ / "data").string();
    address_ = "127.0.0.1:" + std::to_string(FreePort());
    Output init = Command(server_ + " --init --data-dir " + data_, dir_);
    ASSERT_EQ(init.code, 0) << init.out;
    const std::string marker = "admin token (shown once): ";
    admin_ = init.out.substr(init.out.find(marker) + marker.size());
    admin_ = admin_.substr(0, admin_.find('\n'));
    worker_token_ = Token("fleet", "worker");
    user_token_ = Token("alice", "user");
    model_ = acs::test_models::BuildTestModel("plain", 3);
    ASSERT_FALSE(model_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The data dir's name before the process id.
  virtual std::string DirPrefix() const { return "acs_jobs_it_"; }

  std::string Token(const std::string& name, const std::string& role) {
    Output t = Command(server_ + " token --data-dir " + data_ + " --name " + name + " --role " + role, dir_);
    EXPECT_EQ(t.code, 0) << t.out;
    return t.out.substr(0, t.out.find('\n'));
  }
  std::unique_ptr<Process> StartServer(const std::string& log, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {server_, "--data-dir", data_, "--listen", address_, "--lease-seconds", "3",
                                     "--offline-seconds", "4", "--checkpoint-seconds", "0", "--max-jobs", "2",
                                     "--campaign-samples", "48", "--max-upload-mb", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Process>(args, dir_ / log);
    stub_ = v1::Acs::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    return p;
  }
  std::unique_ptr<Process> StartWorker(const std::string& name) {
    return std::make_unique<Process>(std::vector<std::string>{worker_, "serve", "--server", address_, "--token",
                                                              worker_token_, "--name", name, "--min-seconds", "0.02",
                                                              "--min-repeats", "5"},
                                     dir_ / (name + ".log"));
  }
  void Auth(grpc::ClientContext* ctx, const std::string& token) {
    ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_wait_for_ready(true);  // a restarted server may still be starting
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  }
  grpc::Status Upload(const std::string& bytes, v1::UploadReply* reply, const std::string& token, bool dataset = false) {
    grpc::ClientContext ctx;
    Auth(&ctx, token);
    auto writer = dataset ? stub_->UploadDataset(&ctx, reply) : stub_->UploadModel(&ctx, reply);
    for (size_t at = 0; at == 0 || at < bytes.size(); at += 256 << 10) {
      v1::UploadChunk chunk;
      if (at == 0) {
        chunk.set_name("upload");
        chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
      }
      chunk.set_data(bytes.substr(at, 256 << 10));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }
  v1::SubmitJobRequest Request(const std::string& model_sha, const std::string& agent, int episodes,
                               const std::string& budget = "flops") {
    v1::SubmitJobRequest r;
    r.set_model_sha256(model_sha);
    for (int64_t d : {1, 3, 16, 16}) r.add_input_shape(d);
    r.set_dataset_name("fashion-mnist");
    r.mutable_budget()->set_kind(budget);
    r.mutable_budget()->set_ratio(0.5);
    r.set_agent(agent);
    r.set_episodes(episodes);
    r.set_seed(7);
    r.set_top_k(2);
    return r;
  }
  grpc::Status Submit(const v1::SubmitJobRequest& r, v1::Job* job, const std::string& token) {
    grpc::ClientContext ctx;
    Auth(&ctx, token);
    return stub_->SubmitJob(&ctx, r, job);
  }
  v1::Job Get(const std::string& id, const std::string& token, grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    Auth(&ctx, token);
    v1::GetJobRequest req;
    req.set_id(id);
    v1::Job job;
    grpc::Status s = stub_->GetJob(&ctx, req, &job);
    if (status) *status = s;
    return job;
  }
  // Every event until the job ends.
  std::vector<v1::JobEvent> Watch(const std::string& id, const std::string& token) {
    grpc::ClientContext ctx;
    Auth(&ctx, token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(600));
    v1::WatchJobRequest req;
    req.set_id(id);
    auto reader = stub_->WatchJob(&ctx, req);
    std::vector<v1::JobEvent> events;
    for (v1::JobEvent e; reader->Read(&e);) events.push_back(e);
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return events;
  }
  std::string Download(const std::string& id, const std::string& name, const std::string& token,
                       grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    Auth(&ctx, token);
    v1::DownloadArtifactRequest req;
    req.set_job_id(id);
    req.set_name(name);
    auto reader = stub_->DownloadArtifact(&ctx, req);
    std::string bytes;
    for (v1::ArtifactChunk c; reader->Read(&c);) bytes += c.data();
    grpc::Status s = reader->Finish();
    if (status) *status = s;
    return bytes;
  }
  bool WaitForWorkers(int n) {
    return WaitFor(
        [&] {
          grpc::ClientContext ctx;
          Auth(&ctx, admin_);
          v1::ListDevicesReply reply;
          if (!stub_->ListDevices(&ctx, v1::ListDevicesRequest(), &reply).ok()) return false;
          int online = 0;
          for (const auto& d : reply.devices()) online += d.online();
          return online >= n;
        },
        60);
  }

  fs::path dir_;
  std::string server_, worker_, data_, address_, admin_, worker_token_, user_token_, model_;
  std::unique_ptr<v1::Acs::Stub> stub_;
};

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<std::string> States(const std::vector<v1::JobEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    const std::string s = v1::JobState_Name(e.state());
    if (e.kind() == v1::JobEvent::STATE && (out.empty() || out.back() != s)) out.push_back(s);
  }
  return out;
}

}  // namespace acs::test_jobs
