// acs sweep's rows from job records: the budgets list, the Pareto front of accuracy vs
// measured latency, why a row is off it, the table, the JSON and the exit code.
#include "cli/sweep_table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace acs::cli {
namespace {

namespace v1 = acs::v1;

// A job of budget `budget` (e.g. "latency", 0.5) ended in `state`; measured / dense in us
// (0: not measured); accuracy on a test set when test > 0.
v1::Job MakeJob(const std::string& id, const std::string& kind, double ratio, v1::JobState state, double measured_us,
                double accuracy, bool test = true) {
  v1::Job job;
  job.set_id(id);
  job.set_state(state);
  job.mutable_request()->mutable_budget()->set_kind(kind);
  job.mutable_request()->mutable_budget()->set_ratio(ratio);
  job.set_episodes_done(5);
  job.set_best_accuracy(accuracy - 0.01);
  job.set_exported_accuracy(accuracy + 0.01);
  if (test) {
    job.set_test_samples(100);
    job.set_test_accuracy(accuracy);
  }
  job.set_dense_predicted_latency_us(200);
  job.set_best_predicted_latency_us(200 * ratio);
  if (measured_us > 0) {
    job.set_dense_measured_latency_us(100);
    job.set_best_measured_latency_us(measured_us);
  }
  return job;
}

TEST(SweepBudgets, KindCarriesOverAndRepeatsAreRefused) {
  auto budgets = ParseSweepBudgets("latency=0.3x,0.5x,flops=0.5x,0.7");
  ASSERT_TRUE(budgets.ok()) << budgets.status().ToString();
  ASSERT_EQ(budgets->size(), 4u);
  EXPECT_EQ((*budgets)[1].kind(), "latency");
  EXPECT_DOUBLE_EQ((*budgets)[1].ratio(), 0.5);
  EXPECT_EQ((*budgets)[3].kind(), "flops");
  EXPECT_DOUBLE_EQ((*budgets)[3].ratio(), 0.7);
  EXPECT_EQ(ParseSweepBudgets("0.5x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSweepBudgets("latency=0.5x,0.5").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSweepBudgets("latency=1.5x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSweepBudgets("speed=0.5x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSweepBudgets("").status().code(), StatusCode::kInvalidArgument);
}

TEST(SweepRows, FrontHoldsTheRowsNoOtherBeatsOnBothAxes) {
  // Measured latency (of dense 100 us) vs test accuracy:
  // a 30 us 0.80, b 40 us 0.85, c 50 us 0.84 (dominated by b), d 70 us 0.90, e 40 us 0.85 (tie with b).
  const std::vector<v1::Job> jobs = {
      MakeJob("a", "latency", 0.3, v1::BUDGET_NOT_MET, 30, 0.80), MakeJob("b", "latency", 0.4, v1::SUCCEEDED, 40, 0.85),
      MakeJob("c", "latency", 0.5, v1::SUCCEEDED, 50, 0.84), MakeJob("d", "latency", 0.7, v1::SUCCEEDED, 70, 0.90),
      MakeJob("e", "flops", 0.4, v1::SUCCEEDED, 40, 0.85)};
  const std::vector<SweepRow> rows = SweepRows(jobs);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_TRUE(rows[0].on_front);  // the fastest, though its budget was not met
  EXPECT_TRUE(rows[1].on_front);
  EXPECT_FALSE(rows[2].on_front);
  EXPECT_EQ(rows[2].note, "dominated by latency=0.4x");
  EXPECT_TRUE(rows[3].on_front);
  EXPECT_TRUE(rows[4].on_front);  // equal on both axes to b: neither is strictly better
  EXPECT_EQ(rows[0].budget_met, false);
  EXPECT_EQ(rows[1].budget_met, true);
  EXPECT_DOUBLE_EQ(*rows[1].measured_speedup, 2.5);
  EXPECT_DOUBLE_EQ(*rows[1].predicted_speedup, 2.5);
  EXPECT_DOUBLE_EQ(*rows[1].measured_ratio, 0.4);
  EXPECT_EQ(rows[1].accuracy_source, "test");
  EXPECT_DOUBLE_EQ(*rows[1].accuracy, 0.85);
  EXPECT_EQ(SweepExitCode(rows), 0);
}

TEST(SweepRows, RowsWithoutAMeasurementAreListedOffTheFrontWithTheReason) {
  v1::Job running = MakeJob("r", "latency", 0.6, v1::SEARCHING, 0, 0.5, false);
  running.clear_exported_accuracy();
  const std::vector<v1::Job> jobs = {MakeJob("f", "latency", 0.3, v1::FAILED, 0, 0.99),
                                     MakeJob("u", "latency", 0.4, v1::SUCCEEDED, 0, 0.99),
                                     MakeJob("v", "latency", 0.5, v1::SUCCEEDED, 90, 0.70, false), running,
                                     MakeJob("x", "latency", 0.7, v1::CANCELLED, 10, 0.99)};
  const std::vector<SweepRow> rows = SweepRows(jobs);
  EXPECT_EQ(rows[0].note, "no model (FAILED)");
  EXPECT_FALSE(rows[0].budget_met.has_value());
  EXPECT_EQ(rows[1].note, "not measured");
  EXPECT_FALSE(rows[1].on_front);
  // The only measured row with a model is on the front, whatever the others claim.
  EXPECT_TRUE(rows[2].on_front);
  EXPECT_EQ(rows[2].accuracy_source, "validation");
  EXPECT_DOUBLE_EQ(*rows[2].accuracy, 0.71);
  EXPECT_EQ(rows[3].note, "not ended");
  EXPECT_EQ(rows[3].accuracy_source, "search");
  EXPECT_EQ(rows[4].note, "no model (CANCELLED)");
  EXPECT_EQ(SweepExitCode(rows), kExitSweepFailed);
  EXPECT_EQ(SweepExitCode({rows[1], rows[2]}), 0);
  EXPECT_EQ(SweepExitCode({rows[3]}), kExitSweepFailed);  // not ended
}

TEST(SweepTable, PredictedNeverStandsWithoutTheMeasuredAndNotMetIsSaid) {
  const std::vector<SweepRow> rows = SweepRows({MakeJob("job-a", "latency", 0.3, v1::BUDGET_NOT_MET, 45, 0.80),
                                                MakeJob("job-b", "latency", 0.5, v1::SUCCEEDED, 48, 0.86),
                                                MakeJob("job-c", "latency", 0.7, v1::FAILED, 0, 0.9)});
  std::ostringstream out;
  PrintSweepTable(rows, out);
  const std::string text = out.str();
  std::istringstream lines(text);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_NE(header.find("speedup predicted"), std::string::npos);
  EXPECT_EQ(header.find("speedup predicted  measured"), header.find("speedup predicted"));  // side by side
  std::getline(lines, line);                                                                // rule
  std::getline(lines, line);
  EXPECT_NE(line.find("latency=0.3x"), std::string::npos) << text;
  EXPECT_NE(line.find("NOT met (0.45x)"), std::string::npos) << text;
  EXPECT_NE(line.find("3.33x"), std::string::npos) << text;  // predicted 200 / 60
  EXPECT_NE(line.find("2.22x"), std::string::npos) << text;  // measured 100 / 45
  EXPECT_NE(line.find("80.00% test"), std::string::npos) << text;
  EXPECT_NE(line.find("*"), std::string::npos) << text;
  std::getline(lines, line);
  EXPECT_NE(line.find("met (0.48x)"), std::string::npos) << text;
  std::getline(lines, line);
  EXPECT_NE(line.find("no model (FAILED)"), std::string::npos) << text;
  EXPECT_NE(text.find("budgets not met as measured: latency=0.3x (0.45x)"), std::string::npos) << text;

  const nlohmann::json json = SweepJson(rows);
  ASSERT_EQ(json["rows"].size(), 3u);
  EXPECT_EQ(json["rows"][0]["job_id"], "job-a");
  EXPECT_EQ(json["rows"][0]["budget_met"], false);
  EXPECT_NEAR(json["rows"][0]["measured_speedup"].get<double>(), 100.0 / 45, 1e-9);
  EXPECT_TRUE(json["rows"][2]["measured_speedup"].is_null());
  EXPECT_TRUE(json["rows"][2]["budget_met"].is_null());
  EXPECT_EQ(json["front"], nlohmann::json({"latency=0.3x", "latency=0.5x"}));
  EXPECT_EQ(json["not_met"], nlohmann::json({"latency=0.3x"}));
}

}  // namespace
}  // namespace acs::cli
