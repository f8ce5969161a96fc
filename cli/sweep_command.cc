// acs sweep: one compression search job per budget over the same request, followed to
// their end, then the accuracy / measured-latency Pareto front of the budgets
// (cli/sweep_table.h). Exit codes: 0 every job ended SUCCEEDED or BUDGET_NOT_MET, 1 an
// error, 2 bad usage, kExitSweepFailed (4) a job failed, was cancelled or has not ended.
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/job_display.h"
#include "cli/job_follow.h"
#include "cli/job_request.h"
#include "cli/job_transfers.h"
#include "cli/sweep_table.h"

namespace acs::cli {
namespace {

using acs::v1::Job;

const char kSweepUsage[] =
    "usage: acs sweep MODEL.pt --budgets KIND=R1x,R2x,... --input SHAPE --data PATH|name:NAME\n"
    "                 [job options] [--json PATH] [--no-wait]\n"
    "       acs sweep --jobs ID,ID,... [--json PATH] [--no-wait]\n\n"
    "Uploads the model (and the data) once and submits one compression search job per budget,\n"
    "the request otherwise the same ('acs submit' for each), then follows the jobs (one line\n"
    "per change of a job's state on stderr) and prints one row per budget: its job, state and\n"
    "whether the budget was met as measured, the predicted speedup beside the measured one,\n"
    "the downloaded model's accuracy (test top-1 with --test-data, else validation), and a *\n"
    "on the rows on the Pareto front of accuracy vs measured latency: the trade-off between\n"
    "the budgets. --no-wait prints the job ids at once; '--jobs ID,...' prints the table of\n"
    "jobs submitted before (following those not ended, unless --no-wait).\n\n"
    "sweep options:\n"
    "  --budgets LIST       budgets, one job each: KIND=R1x,R2x,... with KIND latency, flops,\n"
    "                       params or bytes and ratios of the dense model in (0, 1], e.g.\n"
    "                       latency=0.3x,0.4x,0.5x,0.7x (a KIND= item sets the kind of the\n"
    "                       ratios after it: latency=0.5x,flops=0.5x)\n"
    "  --jobs IDS           instead of MODEL and the job options: existing jobs\n"
    "  --json PATH          also write the rows as JSON to PATH\n"
    "  --no-wait            do not follow: print the job ids (with --jobs: the table as it is)\n"
    "  --poll-seconds S     how often the jobs are read while followed (default 2)\n\n"
    "job options (as 'acs submit'):\n";

const char kSweepExitHelp[] =
    "\nexit codes: 0 every job ended SUCCEEDED or BUDGET_NOT_MET (the budgets not met are\n"
    "listed; also 0 after submitting with --no-wait); 4 a job failed, was cancelled or has not\n"
    "ended (--jobs with --no-wait); 1 an error, 2 bad usage (as 'acs campaign run').\n";

CommandSpec SweepSpec() {
  std::set<std::string> valued = kJobFlags, switches = kJobSwitches;
  valued.insert({"budgets", "jobs", "json", "poll-seconds"});
  switches.insert("no-wait");
  return {"sweep", std::string(kSweepUsage) + kJobOptionsHelp + kSweepExitHelp, 2, valued, switches, {"MODEL"}, 0};
}

// Submits one job per budget of --budgets; returns them labelled by budget.
StatusOr<std::vector<FollowedJob>> SubmitSweep(const Remote& r) {
  ACS_ASSIGN_OR_RETURN(std::string text, r.flags.Required("budgets"));
  ACS_ASSIGN_OR_RETURN(std::vector<acs::v1::Budget> budgets, ParseSweepBudgets(text));
  ACS_ASSIGN_OR_RETURN(acs::v1::SubmitJobRequest req, UploadedRequest(r));
  std::vector<FollowedJob> jobs;
  for (const acs::v1::Budget& b : budgets) {
    *req.mutable_budget() = b;
    Job job;
    const Status s = r.Unary(&acs::v1::Acs::Stub::SubmitJob, req, &job);
    if (!s.ok()) {
      std::string submitted;
      for (const FollowedJob& j : jobs) submitted += (submitted.empty() ? "" : ",") + j.id;
      if (submitted.empty()) return s;
      return Status(s.code(), Budget(b) + ": " + s.message() + " (submitted before it: " + submitted + ")");
    }
    std::cerr << "submitted " << Budget(b) << ": " << job.id() << std::endl;
    jobs.push_back({Budget(b), job.id()});
  }
  return jobs;
}

StatusOr<int> Sweep(const Remote& r) {
  const bool existing = r.flags.Has("jobs");
  if (existing == !r.flags.positional.empty()) {
    return Status::InvalidArgument(existing ? "pass MODEL (with --budgets and the job options) or --jobs, not both"
                                            : "missing MODEL (or --jobs ID,...; see 'acs sweep --help')");
  }
  ACS_ASSIGN_OR_RETURN(double poll, r.flags.GetDouble("poll-seconds", 2));
  if (!(poll > 0)) return Status::InvalidArgument("--poll-seconds must be > 0");
  std::vector<FollowedJob> jobs;
  if (existing) {
    for (const std::set<std::string>* names : {&kJobFlags, &kJobSwitches}) {
      for (const std::string& name : *names) {
        if (r.flags.Has(name)) return Status::InvalidArgument("--" + name + " is for a new sweep, not --jobs");
      }
    }
    if (r.flags.Has("budgets")) return Status::InvalidArgument("--budgets is for a new sweep, not --jobs");
    for (const std::string& id : SplitList(r.flags.Get("jobs"))) jobs.push_back({id, id});
    if (jobs.empty()) return Status::InvalidArgument("--jobs expects job ids, e.g. --jobs ID,ID");
  } else {
    ACS_ASSIGN_OR_RETURN(jobs, SubmitSweep(r));
  }
  std::string ids;
  for (const FollowedJob& j : jobs) ids += (ids.empty() ? "" : ",") + j.id;
  std::vector<Job> ended;
  if (r.flags.Has("no-wait")) {
    if (!existing) {
      for (const FollowedJob& j : jobs) std::cout << j.id << "\n";
      std::cerr << "the table later: acs sweep --jobs " << ids << std::endl;
      return 0;
    }
    for (const FollowedJob& j : jobs) {
      ACS_ASSIGN_OR_RETURN(Job job, FetchJob(r, j.id));
      ended.push_back(job);
    }
  } else {
    if (existing) {  // labelled by budget, as a new sweep's
      for (FollowedJob& j : jobs) {
        ACS_ASSIGN_OR_RETURN(Job job, FetchJob(r, j.id));
        j.label = Budget(job.request().budget());
      }
    } else {
      std::cerr << "following " << jobs.size() << " jobs (Ctrl-C stops following, not the jobs: acs sweep --jobs "
                << ids << ")" << std::endl;
    }
    FollowOptions options;
    options.poll_seconds = poll;
    ACS_ASSIGN_OR_RETURN(ended, FollowJobs(r, jobs, options));
  }
  const std::vector<SweepRow> rows = SweepRows(ended);
  PrintSweepTable(rows, std::cout);
  if (r.flags.Has("json")) {
    const std::string path = r.flags.Get("json");
    std::ofstream out(path);
    out << SweepJson(rows).dump(2) << "\n";
    if (!out) return Status::Unavailable("cannot write '" + path + "'");
    std::cerr << "rows written to " << path << std::endl;
  }
  return SweepExitCode(rows);
}

}  // namespace

int SweepCommand(int argc, char** argv) { return RunForCode(SweepSpec(), argc, argv, Sweep); }

}  // namespace acs::cli
