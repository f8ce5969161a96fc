// The acs CLI's checked downloads (cli/job_transfers.h) from a fake artifact source: an
// in-process gRPC service whose DownloadArtifact streams given bytes under a given size
// and sha256. A mismatch is refused and nothing is left at the destination.
#include "cli/job_transfers.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "proto/acs.grpc.pb.h"
#include "tests/temp_dir.h"

namespace acs::cli {

// acs_cli_remote leaves Fail to the program it is linked into (cli/common.cc in acs);
// nothing these tests call fails a command.
int Fail(const std::string& command, const Status& status) {
  ADD_FAILURE() << "acs " << command << ": " << status.message();
  return 1;
}

}  // namespace acs::cli

namespace {

namespace fs = std::filesystem;
namespace v1 = acs::v1;

std::string Sha256Of(const std::string& bytes) {
  acs::Sha256 sha;
  sha.Update(bytes);
  return sha.HexDigest();
}

// Streams `bytes` in 1000-byte chunks, announcing `total_bytes` and `sha256` in the first.
class FakeArtifacts final : public v1::Acs::Service {
 public:
  std::string bytes, sha256;
  int64_t total_bytes = 0;

  grpc::Status DownloadArtifact(grpc::ServerContext*, const v1::DownloadArtifactRequest*,
                                grpc::ServerWriter<v1::ArtifactChunk>* writer) override {
    for (size_t at = 0; at == 0 || at < bytes.size(); at += 1000) {
      v1::ArtifactChunk chunk;
      if (at == 0) {
        chunk.set_total_bytes(total_bytes);
        chunk.set_sha256(sha256);
      }
      chunk.set_data(bytes.substr(at, 1000));
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }
};

class JobTransfersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    for (size_t i = 0; i < 5000; ++i) artifact_ += static_cast<char>(i * 7 % 251);
    fake_.bytes = artifact_;
    fake_.total_bytes = static_cast<int64_t>(artifact_.size());
    fake_.sha256 = Sha256Of(artifact_);
    grpc::ServerBuilder builder;
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    remote_.conn.stub = v1::Acs::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override { server_->Shutdown(); }

  // The names in the destination directory.
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_.path())) names.push_back(entry.path().filename().string());
    return names;
  }

  acs::ScopedTempDir dir_{"acs_job_transfers_"};
  std::string artifact_;
  FakeArtifacts fake_;
  std::unique_ptr<grpc::Server> server_;
  acs::cli::Remote remote_;
};

TEST_F(JobTransfersTest, AnArtifactThatMatchesItsSizeAndSha256IsWritten) {
  const acs::StatusOr<std::string> path = acs::cli::Download(remote_, "job1", "compressed.pt", dir_.path());
  ASSERT_TRUE(path.ok()) << path.status().message();
  EXPECT_EQ(*path, (fs::path(dir_.path()) / "compressed.pt").string());
  std::ifstream in(*path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), artifact_);
  EXPECT_EQ(Files(), std::vector<std::string>{"compressed.pt"});
}

TEST_F(JobTransfersTest, ASha256MismatchIsRefusedAndLeavesNoFile) {
  std::string wrong = fake_.sha256;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  fake_.sha256 = wrong;
  const acs::StatusOr<std::string> path = acs::cli::Download(remote_, "job1", "compressed.pt", dir_.path());
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), acs::StatusCode::kDataLoss);
  EXPECT_EQ(path.status().message(),
            "compressed.pt: the received bytes hash to " + Sha256Of(artifact_) + ", not to the artifact's " + wrong);
  EXPECT_TRUE(Files().empty());  // neither the file nor its .part

  // A file already at the destination is left as it was.
  const fs::path existing = fs::path(dir_.path()) / "compressed.pt";
  std::ofstream(existing) << "earlier";
  EXPECT_FALSE(acs::cli::Download(remote_, "job1", "compressed.pt", dir_.path()).ok());
  std::ifstream in(existing);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "earlier");
  EXPECT_EQ(Files(), std::vector<std::string>{"compressed.pt"});

  const acs::StatusOr<std::string> read = acs::cli::ReadArtifact(remote_, "job1", "report.json");
  EXPECT_EQ(read.status().code(), acs::StatusCode::kDataLoss);
}

TEST_F(JobTransfersTest, ASizeMismatchIsRefusedAndLeavesNoFile) {
  fake_.total_bytes += 1;
  const acs::StatusOr<std::string> path = acs::cli::Download(remote_, "job1", "compressed.pt", dir_.path());
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), acs::StatusCode::kDataLoss);
  EXPECT_EQ(path.status().message(), "compressed.pt: received 5000 of 5001 bytes");
  EXPECT_TRUE(Files().empty());
}

}  // namespace
