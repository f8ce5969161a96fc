// The rows of `acs sweep`: from job records to the table, the JSON and the exit code.
#include "cli/sweep_table.h"

#include <cstdio>
#include <set>

#include "cli/job_display.h"
#include "cli/table.h"
#include "core/flags.h"

namespace acs::cli {
namespace {

using acs::v1::Job;

// 2.5 -> "2.50x".
std::string Times(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", value);
  return buf;
}

bool EndedWithModel(acs::v1::JobState s) { return s == acs::v1::SUCCEEDED || s == acs::v1::BUDGET_NOT_MET; }

SweepRow RowOf(const Job& job) {
  SweepRow row;
  row.budget = Budget(job.request().budget());
  row.job_id = job.id();
  row.state = job.state();
  if (EndedWithModel(job.state())) row.budget_met = job.state() == acs::v1::SUCCEEDED;
  if (job.dense_predicted_latency_us() > 0 && job.best_predicted_latency_us() > 0) {
    row.predicted_speedup = job.dense_predicted_latency_us() / job.best_predicted_latency_us();
  }
  row.measured_latency_us = job.best_measured_latency_us();
  if (job.dense_measured_latency_us() > 0 && job.best_measured_latency_us() > 0) {
    row.measured_speedup = job.dense_measured_latency_us() / job.best_measured_latency_us();
    row.measured_ratio = job.best_measured_latency_us() / job.dense_measured_latency_us();
  }
  if (job.test_samples() > 0) {
    row.accuracy = job.test_accuracy();
    row.accuracy_source = "test";
  } else if (job.exported_accuracy() > 0) {
    row.accuracy = job.exported_accuracy();
    row.accuracy_source = "validation";
  } else if (job.episodes_done() > 0) {
    row.accuracy = job.best_accuracy();
    row.accuracy_source = "search";
  }
  return row;
}

// Why a row cannot be on the front; "" when it can.
std::string Unplaced(const SweepRow& row) {
  if (!IsTerminal(row.state)) return "not ended";
  if (!EndedWithModel(row.state)) return "no model (" + acs::v1::JobState_Name(row.state) + ")";
  if (!row.measured_ratio) return "not measured";
  if (!row.accuracy) return "no accuracy";
  return "";
}

// Whether a is at least as good as b on both axes and better on one.
bool Dominates(const SweepRow& a, const SweepRow& b) {
  const bool no_worse = *a.accuracy >= *b.accuracy && *a.measured_ratio <= *b.measured_ratio;
  return no_worse && (*a.accuracy > *b.accuracy || *a.measured_ratio < *b.measured_ratio);
}

std::string OutcomeCell(const SweepRow& row) {
  if (!row.budget_met) return IsTerminal(row.state) ? "-" : "";
  std::string cell = *row.budget_met ? "met" : "NOT met";
  if (row.budget.rfind("latency=", 0) == 0 && row.measured_ratio) cell += " (" + Times(*row.measured_ratio) + ")";
  return cell;
}

nlohmann::json OrNull(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

}  // namespace

StatusOr<std::vector<acs::v1::Budget>> ParseSweepBudgets(const std::string& text) {
  std::vector<acs::v1::Budget> budgets;
  std::set<std::string> seen;
  std::string kind;
  for (const std::string& item : SplitList(text)) {
    const size_t eq = item.find('=');
    if (eq != std::string::npos) kind = item.substr(0, eq);
    if (kind.empty()) return Status::InvalidArgument("--budgets: '" + item + "' needs a KIND= before it");
    StatusOr<BudgetSpec> spec = ParseBudget(eq == std::string::npos ? kind + "=" + item : item);
    if (!spec.ok()) return Status::InvalidArgument("--budgets: " + spec.status().message());
    acs::v1::Budget b;
    b.set_kind(spec->kind);
    b.set_ratio(spec->ratio);
    if (!seen.insert(Budget(b)).second) return Status::InvalidArgument("--budgets: " + Budget(b) + " is repeated");
    budgets.push_back(b);
  }
  if (budgets.empty()) return Status::InvalidArgument("--budgets expects KIND=R1x,R2x,..., e.g. latency=0.3x,0.5x");
  return budgets;
}

std::vector<SweepRow> SweepRows(const std::vector<Job>& jobs) {
  std::vector<SweepRow> rows;
  for (const Job& job : jobs) rows.push_back(RowOf(job));
  for (SweepRow& row : rows) {
    row.note = Unplaced(row);
    if (!row.note.empty()) continue;
    row.on_front = true;
    for (const SweepRow& other : rows) {
      if (&other == &row || !Unplaced(other).empty() || !Dominates(other, row)) continue;
      row.on_front = false;
      row.note = "dominated by " + other.budget;
      break;
    }
  }
  return rows;
}

void PrintSweepTable(const std::vector<SweepRow>& rows, std::ostream& out) {
  Table table({"budget", "job", "state", "budget met", "speedup predicted", "measured", "accuracy", "front"});
  std::vector<std::string> not_met;
  for (const SweepRow& r : rows) {
    table.AddRow({r.budget, r.job_id, acs::v1::JobState_Name(r.state), OutcomeCell(r),
                  r.predicted_speedup ? Times(*r.predicted_speedup) : "-",
                  r.measured_speedup ? Times(*r.measured_speedup) : "-",
                  r.accuracy ? Percent(*r.accuracy, 2) + " " + r.accuracy_source : "-", r.on_front ? "*" : r.note});
    if (r.budget_met == false)
      not_met.push_back(r.budget + (r.measured_ratio ? " (" + Times(*r.measured_ratio) + ")" : ""));
  }
  table.Print(out);
  out << "\nspeedup: over the dense model, predicted by the device class's predictor and measured on a\n"
         "worker with the dense model timed in the same task; accuracy: top-1 of the downloaded\n"
         "model on the test set, else on the validation split, else the search's estimate;\n"
         "budget met (R): measured latency R of the dense model's.\n"
         "front: * on the Pareto front of accuracy vs measured latency (latency as a share of the\n"
         "dense model's); other rows say why not.\n";
  if (!not_met.empty()) {
    out << "budgets not met as measured:";
    for (const std::string& b : not_met) out << " " << b;
    out << "\n";
  }
}

nlohmann::json SweepJson(const std::vector<SweepRow>& rows) {
  nlohmann::json out = {
      {"rows", nlohmann::json::array()}, {"front", nlohmann::json::array()}, {"not_met", nlohmann::json::array()}};
  for (const SweepRow& r : rows) {
    out["rows"].push_back(
        {{"budget", r.budget},
         {"job_id", r.job_id},
         {"state", acs::v1::JobState_Name(r.state)},
         {"budget_met", r.budget_met ? nlohmann::json(*r.budget_met) : nlohmann::json()},
         {"predicted_speedup", OrNull(r.predicted_speedup)},
         {"measured_speedup", OrNull(r.measured_speedup)},
         {"measured_latency_ratio", OrNull(r.measured_ratio)},
         {"measured_latency_us", r.measured_latency_us > 0 ? nlohmann::json(r.measured_latency_us) : nlohmann::json()},
         {"accuracy", OrNull(r.accuracy)},
         {"accuracy_source", r.accuracy_source},
         {"on_front", r.on_front},
         {"note", r.note}});
    if (r.on_front) out["front"].push_back(r.budget);
    if (r.budget_met == false) out["not_met"].push_back(r.budget);
  }
  return out;
}

int SweepExitCode(const std::vector<SweepRow>& rows) {
  for (const SweepRow& r : rows) {
    if (!EndedWithModel(r.state)) return kExitSweepFailed;
  }
  return 0;
}

}  // namespace acs::cli
