// The real acs-server's size limits from its flags: --max-dataset-gb reaches Submit's check
// and the job runner child, --max-request-mb refuses a unary call past it while uploads,
// streamed in parts, still pass it.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>

#include "core/sha256.h"
#include "robustness_fixture.h"

namespace {

namespace v1 = acs::v1;
using acs::test_robustness::RobustnessTest;

TEST_F(RobustnessTest, TheDatasetLimitIsCheckedAtSubmitAndInTheJobsRunner) {
  // 1/128 GiB: 8 MiB of float32, 2,730 samples of 3x16x16.
  auto server = StartServer("server.log", {"--max-dataset-gb", "0.0078125", "--check-seconds", "60"});
  const std::string model = UploadModel("plain", user_token_);

  // 256 calibration and 5000 validation samples decode to 15.4 MiB: refused by the check.
  v1::SubmitJobRequest wide = Request(model, "random", 2);
  wide.mutable_split()->mutable_validation()->set_samples(5000);
  v1::Job refused;
  grpc::Status s = Submit(wide, &refused, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("decode to 15 MiB of float32, past this server's limit of 8 MiB (acs-server "
                                   "--max-dataset-gb"),
            std::string::npos)
      << s.error_message();

  // 132 samples fit, and so does the test set's first sample, which is all the check reads
  // of it; the job reads all 10,000 (1x28x28 in the file: 29.9 MiB) after the search, and
  // its runner fails it there.
  v1::SubmitJobRequest tested = Request(model, "random", 2);
  tested.mutable_split()->mutable_calibration()->set_samples(32);
  tested.mutable_split()->mutable_validation()->set_samples(100);
  tested.set_test_dataset_name("fashion-mnist");
  const v1::Job job = SubmitOk(tested, user_token_);
  EXPECT_EQ(FinalState(job.id(), user_token_), "FAILED") << server->Log();
  const v1::Job failed = Get(job.id(), user_token_);
  EXPECT_NE(failed.error().find("10000 images of 1x28x28"), std::string::npos) << failed.error();
  EXPECT_NE(failed.error().find("past the limit of 8 MiB"), std::string::npos) << failed.error();
  EXPECT_NE(failed.error().find("acs-server --max-dataset-gb"), std::string::npos) << failed.error();

  // Within the limit the same model and data run to the end.
  v1::SubmitJobRequest small = tested;
  small.clear_test_dataset_name();
  EXPECT_EQ(FinalState(SubmitOk(small, user_token_).id(), user_token_), "SUCCEEDED") << server->Log();
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

TEST_F(RobustnessTest, TheRequestLimitRefusesALargeUnaryCallButNotALargeUpload) {
  auto server = StartServer("server.log", {"--max-request-mb", "1", "--max-upload-mb", "8"});
  // A SubmitJob message of 2 MiB (its device class): refused by gRPC before any handler.
  const std::string unknown(64, '0');
  v1::SubmitJobRequest huge = Request(unknown, "random", 2);
  huge.set_device_class(std::string(2 << 20, 'a'));
  v1::Job job;
  grpc::Status s = Submit(huge, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Under 1 MiB it reaches the service, which answers for the unknown model.
  huge.set_device_class(std::string(900 << 10, 'a'));
  s = Submit(huge, &job, user_token_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("model " + unknown + " was not uploaded"), std::string::npos) << s.error_message();

  // A following small call is served.
  grpc::ClientContext ctx;
  Auth(&ctx, user_token_);
  v1::ListJobsReply listed;
  s = stub_->ListJobs(&ctx, v1::ListJobsRequest(), &listed);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(listed.jobs_size(), 0);

  // A 3 MiB upload streams in 256 KiB parts: stored whole.
  std::string bytes(3 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  v1::UploadReply reply;
  s = Upload(bytes, &reply, user_token_, /*dataset=*/true);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reply.bytes(), static_cast<int64_t>(bytes.size()));
  acs::Sha256 sha;
  sha.Update(bytes);
  EXPECT_EQ(reply.sha256(), sha.HexDigest());
  EXPECT_EQ(server->Kill(SIGTERM), 0) << server->Log();
}

}  // namespace
