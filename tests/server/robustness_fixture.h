// The fixture of the robustness integration tests (robustness_test.cc,
// confinement_test.cc): a real acs-server and workers (JobsServerTest) and a few calls
// that expect success.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "jobs_fixture.h"

namespace acs::test_robustness {

// Tests name it through `using acs::test_robustness::RobustnessTest`.
class RobustnessTest : public acs::test_jobs::JobsServerTest {
 protected:
  std::string DirPrefix() const override { return "acs_robust_it_"; }

  // Uploads a test model as `token`; its sha256.
  std::string UploadModel(const std::string& name, const std::string& token) {
    const std::string path = acs::test_models::BuildTestModel(name, 5);
    EXPECT_FALSE(path.empty()) << name;
    v1::UploadReply reply;
    grpc::Status s = Upload(acs::test_jobs::ReadBytes(path), &reply, token);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply.sha256();
  }
  v1::Job SubmitOk(const v1::SubmitJobRequest& r, const std::string& token) {
    v1::Job job;
    grpc::Status s = Submit(r, &job, token);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }
  // The job's final state once its events end.
  std::string FinalState(const std::string& id, const std::string& token) {
    const std::vector<std::string> states = acs::test_jobs::States(Watch(id, token));
    return states.empty() ? "" : states.back();
  }
};

}  // namespace acs::test_robustness
