// A job's predictions start refitted on what earlier jobs measured of the same model:
// EarlierMeasuredPolicies finds the verifications recorded for the model's sha256, input
// shape and threads on the device class, one median ratio per policy, the most recent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "server/jobs.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class EarlierPoliciesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("acs_earlier_policies_" + std::to_string(::getpid()) + ".db");
    fs::remove(path_);
    auto store = predictors::OpenSqliteStore(path_.string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    request_.model_sha256 = std::string(64, 'a');
    request_.input_shape = {1, 3, 16, 16};
    request_.threads = 1;
  }
  void TearDown() override {
    store_.reset();
    fs::remove(path_);
  }

  // A verification of policy `n` as RecordModelMeasurement stores it: runtime `ratio` x
  // dense; `job` overrides the record's job fields (null: none, as before jobs said whose).
  void Add(int n, double ratio, const json& job, int threads = 1, const std::string& device_class = "cpu") {
    predictors::ModelRecord r;
    r.device_class = device_class;
    r.model = "model-" + request_.model_sha256.substr(0, 12);
    r.policy_hash = "p" + std::to_string(n);
    r.policy_json = json{{"version", 1}, {"default", {{"sparsity", n / 100.0}}}}.dump();
    r.shape.threads = threads;
    r.median_us = 200 * ratio;
    json record = {{"runtime", {{"median_us", r.median_us}}}, {"dense", {{"median_us", 200.0}}}};
    if (!job.is_null()) record["job"] = job;
    r.record_json = record.dump();
    ASSERT_TRUE(store_->AddModel(r).ok());
  }
  json Job() const { return {{"model_sha256", request_.model_sha256}, {"input_shape", request_.input_shape}}; }

  fs::path path_;
  std::unique_ptr<predictors::MeasurementStore> store_;
  JobRequest request_;
};

TEST_F(EarlierPoliciesTest, MedianRatioPerPolicyOfTheSameModelOnly) {
  for (double ratio : {0.7, 0.5, 0.6}) Add(1, ratio, Job());  // three runs of one policy
  Add(2, 0.4, Job());
  json other_model = Job();
  other_model["model_sha256"] = std::string(64, 'b');
  Add(3, 0.9, other_model);
  json other_shape = Job();
  other_shape["input_shape"] = {1, 3, 32, 32};
  Add(4, 0.9, other_shape);
  Add(5, 0.9, Job(), /*threads=*/2);
  Add(6, 0.9, Job(), 1, "other-class");
  Add(7, 0.9, json());
  auto got = EarlierMeasuredPolicies(*store_, request_, "cpu");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_NE((*got)[0].first.find("0.01"), std::string::npos) << (*got)[0].first;
  EXPECT_DOUBLE_EQ((*got)[0].second, 0.6);
  EXPECT_NE((*got)[1].first.find("0.02"), std::string::npos) << (*got)[1].first;
  EXPECT_DOUBLE_EQ((*got)[1].second, 0.4);
}

TEST_F(EarlierPoliciesTest, KeepsTheMostRecentPoliciesOldestFirst) {
  const int n = static_cast<int>(kEarlierPoliciesMax) + 4;
  for (int i = 1; i <= n; ++i) Add(i, 0.5, Job());
  Add(1, 0.7, Job());  // a new run makes policy 1 the most recent; its ratio: the upper median of 0.5, 0.7
  auto got = EarlierMeasuredPolicies(*store_, request_, "cpu");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), kEarlierPoliciesMax);
  EXPECT_DOUBLE_EQ(got->back().second, 0.7);
  EXPECT_NE(got->back().first.find("0.01"), std::string::npos);
  const json oldest = json::parse(got->front().first);
  EXPECT_NEAR(oldest["default"]["sparsity"].get<double>(), (n - kEarlierPoliciesMax + 2) / 100.0, 1e-9);
  EXPECT_TRUE(EarlierMeasuredPolicies(*store_, request_, "no-such-class")->empty());
}

}  // namespace
}  // namespace acs::server
