// How a job's verification is judged (server/job_records.h): the budget outcome of the
// exported policy's runs, the next step after it, and the progress record that keeps them.
#include <gtest/gtest.h>

#include "server/job_records.h"

namespace acs::server {
namespace {

// A latency job meets its budget only as measured: the exported policy (rank 0) against
// the dense model of its own task, with 5% tolerance; the message names the miss.
TEST(MeasuredBudgetOutcomeTest, JudgesTheExportedPolicyAsMeasured) {
  JobRequest request;
  request.budget_kind = "latency";
  request.budget_ratio = 0.5;
  JobProgress progress;
  progress.dense_predicted_us = 400;
  Verification exported, faster;
  exported.rank = 0;
  exported.accuracy = 0.888;
  exported.predicted_us = 200;
  exported.measured_us = 520;
  exported.dense_measured_us = 1000;
  faster.rank = 2;
  faster.accuracy = 0.85;
  faster.measured_us = 300;
  faster.dense_measured_us = 1000;
  progress.verifications = {exported, faster};

  nlohmann::json o = MeasuredBudgetOutcome(request, progress);  // 0.52x: within 5%
  EXPECT_TRUE(o["met"].get<bool>()) << o;
  EXPECT_DOUBLE_EQ(o["measured_ratio"].get<double>(), 0.52);
  EXPECT_DOUBLE_EQ(o["predicted_ratio"].get<double>(), 0.5);

  progress.verifications[0].measured_us = 830;  // 0.83x: missed
  o = MeasuredBudgetOutcome(request, progress);
  EXPECT_FALSE(o["met"].get<bool>()) << o;
  const std::string message = o["message"];
  EXPECT_NE(message.find("budget not met: measured 0.83x of dense latency at 88.80% (budget 0.50x, predicted 0.50x)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("fastest verified policy #3: 0.30x at 85.00%"), std::string::npos) << message;

  progress.verifications[0].measured_us = 526;  // just above 0.525x
  EXPECT_FALSE(MeasuredBudgetOutcome(request, progress)["met"].get<bool>());

  request.budget_kind = "flops";  // other budgets are not measured
  EXPECT_TRUE(MeasuredBudgetOutcome(request, progress)["met"].get<bool>());
  progress.verifications[0].measured_us = 0;  // not measured: nothing to judge for other budgets
  EXPECT_TRUE(MeasuredBudgetOutcome(request, progress)["met"].get<bool>());
  request.budget_kind = "latency";  // but a latency budget is not shown met
  o = MeasuredBudgetOutcome(request, progress);
  EXPECT_FALSE(o["met"].get<bool>()) << o;
  EXPECT_TRUE(o["unmeasured"].get<bool>()) << o;
  EXPECT_EQ(NextAfterVerification(progress, o, true), AfterVerification::kBudgetNotMet);
}

// The exported policy measured in several tasks: the budget is judged on the run with the
// median ratio, and the message gives the spread.
TEST(MeasuredBudgetOutcomeTest, JudgesTheMedianOfTheExportedPolicysRuns) {
  JobRequest request;
  request.budget_kind = "latency";
  request.budget_ratio = 0.5;
  JobProgress progress;
  Verification run;
  run.accuracy = 0.9;
  run.dense_measured_us = 1000;
  for (double measured : {500.0, 600.0, 510.0}) {
    run.measured_us = measured;
    progress.verifications.push_back(run);
    run.run += 1;
  }
  ASSERT_NE(MedianRun(progress, 0), nullptr);
  EXPECT_DOUBLE_EQ(MedianRun(progress, 0)->measured_us, 510.0);
  EXPECT_EQ(MedianRun(progress, 1), nullptr);
  nlohmann::json o = MeasuredBudgetOutcome(request, progress);  // 0.51x: one slow run does not decide
  EXPECT_TRUE(o["met"].get<bool>()) << o;
  EXPECT_EQ(o["runs"].get<int>(), 3);
  EXPECT_DOUBLE_EQ(o["measured_ratio"].get<double>(), 0.51);
  EXPECT_DOUBLE_EQ(o["ratio_min"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(o["ratio_max"].get<double>(), 0.6);

  progress.verifications[2].measured_us = 580;  // two slow runs: 0.58x
  o = MeasuredBudgetOutcome(request, progress);
  EXPECT_FALSE(o["met"].get<bool>()) << o;
  const std::string message = o["message"];
  EXPECT_NE(message.find("measured 0.58x of dense latency (median of 3 runs, 0.50-0.60x) at 90.00%"),
            std::string::npos)
      << message;

  progress.verifications[1].measured_us = 0;  // a run that failed is left out: 0.50x and 0.58x
  o = MeasuredBudgetOutcome(request, progress);
  EXPECT_EQ(o["runs"].get<int>(), 2);
  EXPECT_DOUBLE_EQ(o["measured_ratio"].get<double>(), 0.5);  // the lower of the two middle ones

  // Runs and measured policies survive the progress record.
  progress.measured_policies = {{"{\"default\":{}}", 0.61}};
  progress.probe_tasks = {"t1", "t2"};
  progress.calibration_repeats = {"t3", "t4"};
  progress.probe_policies = {{"{\"layers\":{}}", 0.42}};
  const JobProgress back = JobProgress::FromJson(progress.ToJson().dump());
  EXPECT_EQ(back.probe_tasks, progress.probe_tasks);
  EXPECT_EQ(back.calibration_repeats, progress.calibration_repeats);
  EXPECT_EQ(back.probe_policies, progress.probe_policies);
  ASSERT_EQ(back.verifications.size(), 3u);
  EXPECT_EQ(back.verifications[2].run, 2);
  ASSERT_EQ(back.measured_policies.size(), 1u);
  EXPECT_EQ(back.measured_policies[0].first, "{\"default\":{}}");
  EXPECT_DOUBLE_EQ(back.measured_policies[0].second, 0.61);
}

// Before a later round refits on the verified policies, every rank gets as many runs as the
// exported one; the added runs are unmeasured copies, and a second call adds nothing.
TEST(MeasuredBudgetOutcomeTest, AddsRunsOfEveryRankBeforeARefit) {
  JobProgress progress;
  for (int run = 0; run < 3; ++run) {
    Verification exported;
    exported.run = run;
    exported.policy_hash = "aaa";
    exported.task_id = "t" + std::to_string(run);
    exported.measured_us = 100;
    progress.verifications.push_back(exported);
  }
  Verification second;
  second.rank = 1;
  second.policy_hash = "bbb";
  second.accuracy = 0.9;
  second.predicted_us = 80;
  second.task_id = "t9";
  second.measured_us = 90;
  second.dense_measured_us = 200;
  progress.verifications.push_back(second);

  ASSERT_TRUE(AddRunsOfEveryRank(progress, 3));
  ASSERT_EQ(progress.verifications.size(), 6u);
  for (size_t i = 4; i < 6; ++i) {
    const Verification& v = progress.verifications[i];
    EXPECT_EQ(v.rank, 1);
    EXPECT_EQ(v.run, static_cast<int>(i) - 3);
    EXPECT_EQ(v.policy_hash, "bbb");
    EXPECT_DOUBLE_EQ(v.accuracy, 0.9);
    EXPECT_DOUBLE_EQ(v.predicted_us, 80);
    EXPECT_TRUE(v.task_id.empty());  // a task of its own is enqueued for it
    EXPECT_EQ(v.measured_us, 0);
    EXPECT_EQ(v.dense_measured_us, 0);
  }
  EXPECT_FALSE(AddRunsOfEveryRank(progress, 3));
  EXPECT_EQ(progress.verifications.size(), 6u);
}

// After a verification: succeed, search on for accuracy (well under the budget), search on
// for the budget (missed), or fall back to a kept earlier result.
TEST(MeasuredBudgetOutcomeTest, NextStepAfterVerification) {
  JobRequest request;
  request.budget_kind = "latency";
  request.budget_ratio = 0.5;
  auto progress_at = [](double ratio, double accuracy) {
    JobProgress p;
    Verification v;
    v.accuracy = accuracy;
    v.dense_measured_us = 1000;
    v.measured_us = 1000 * ratio;
    p.verifications = {v};
    p.best_accuracy = accuracy;
    p.best_measured_us = v.measured_us;
    p.dense_measured_us = v.dense_measured_us;
    p.artifacts = {{"policy.json", "sha-" + std::to_string(ratio), 10}};
    return p;
  };
  auto next = [&](const JobProgress& p, bool round_left) {
    return NextAfterVerification(p, MeasuredBudgetOutcome(request, p), round_left);
  };
  EXPECT_EQ(next(progress_at(0.49, 0.9), true), AfterVerification::kSucceed);  // within ±5%
  EXPECT_EQ(next(progress_at(0.45, 0.8), true), AfterVerification::kSearchForAccuracy);
  EXPECT_EQ(next(progress_at(0.45, 0.8), false), AfterVerification::kSucceed);
  EXPECT_EQ(next(progress_at(0.60, 0.9), true), AfterVerification::kSearchForBudget);
  EXPECT_EQ(next(progress_at(0.60, 0.9), false), AfterVerification::kBudgetNotMet);
  EXPECT_TRUE(MeasuredBudgetOutcome(request, progress_at(0.45, 0.8))["under"].get<bool>());
  EXPECT_FALSE(MeasuredBudgetOutcome(request, progress_at(0.48, 0.8))["under"].get<bool>());

  // A result kept from the round before (0.45x at 80%):
  const JobProgress earlier = progress_at(0.45, 0.8);
  auto with_kept = [&](JobProgress p) {
    p.kept_result = earlier.ToJson().dump();
    return p;
  };
  EXPECT_EQ(next(with_kept(progress_at(0.51, 0.85)), true), AfterVerification::kSucceed);   // met, more accurate
  EXPECT_EQ(next(with_kept(progress_at(0.51, 0.75)), true), AfterVerification::kKeepEarlier);  // less accurate
  EXPECT_EQ(next(with_kept(progress_at(0.60, 0.90)), true), AfterVerification::kKeepEarlier);  // missed
  EXPECT_EQ(next(with_kept(progress_at(0.40, 0.85)), true), AfterVerification::kSucceed);   // never a second keep

  JobProgress now = with_kept(progress_at(0.60, 0.9));
  now.episodes_done = 90;
  now.TakeResultOf(JobProgress::FromJson(now.kept_result));
  EXPECT_EQ(now.episodes_done, 90);  // what the job did stays
  EXPECT_DOUBLE_EQ(now.best_accuracy, 0.8);
  EXPECT_DOUBLE_EQ(now.best_measured_us, 450);
  ASSERT_EQ(now.artifacts.size(), 1u);
  EXPECT_EQ(now.artifacts[0].sha256, earlier.artifacts[0].sha256);
  ASSERT_EQ(now.verifications.size(), 1u);
  EXPECT_DOUBLE_EQ(now.verifications[0].measured_us, 450);
}

}  // namespace
}  // namespace acs::server
