#include "cli/campaign_run.h"

#include <cctype>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "campaigns/campaign_report.h"
#include "cli/campaign_results.h"
#include "campaigns/campaign_spec.h"
#include "cli/job_display.h"
#include "cli/job_follow.h"
#include "cli/job_transfers.h"

namespace acs::cli {
namespace {

using acs::v1::CampaignRun;
using acs::v1::Job;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

StatusOr<std::string> ReadSpecText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read the campaign spec '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Uploads each model file and data path once per run.
class Uploads {
 public:
  explicit Uploads(const Remote& r) : r_(r) {}
  StatusOr<std::string> Model(const CampaignModel& m) {
    if (!m.sha256.empty()) return m.sha256;
    auto it = models_.find(m.path);
    if (it != models_.end()) return it->second;
    ACS_ASSIGN_OR_RETURN(acs::v1::UploadReply reply, Upload(r_, m.path, false));
    return models_[m.path] = reply.sha256();
  }
  // Sets *name or *sha256 as ResolveData does.
  Status Data(const std::string& data, std::string* name, std::string* sha256) {
    auto it = data_.find(data);
    if (it == data_.end()) {
      std::pair<std::string, std::string> resolved;
      ACS_RETURN_IF_ERROR(ResolveData(r_, data, &resolved.first, &resolved.second));
      it = data_.emplace(data, resolved).first;
    }
    *name = it->second.first;
    *sha256 = it->second.second;
    return Status::Ok();
  }

 private:
  const Remote& r_;
  std::map<std::string, std::string> models_;
  std::map<std::string, std::pair<std::string, std::string>> data_;
};

StatusOr<acs::v1::SubmitJobRequest> CellRequest(const CampaignSpec& spec, const CampaignCell& cell, Uploads* up) {
  const CampaignModel& m = spec.models[cell.model];
  acs::v1::SubmitJobRequest req;
  ACS_ASSIGN_OR_RETURN(*req.mutable_model_sha256(), up->Model(m));
  for (int64_t d : m.input) req.add_input_shape(d);
  ACS_RETURN_IF_ERROR(up->Data(m.data, req.mutable_dataset_name(), req.mutable_dataset_sha256()));
  if (!m.test_data.empty()) {
    ACS_RETURN_IF_ERROR(up->Data(m.test_data, req.mutable_test_dataset_name(), req.mutable_test_dataset_sha256()));
  }
  req.set_device_class(cell.device_class);
  req.mutable_budget()->set_kind(cell.budget.kind);
  req.mutable_budget()->set_ratio(cell.budget.ratio);
  req.set_agent(cell.agent);
  req.set_episodes(spec.episodes);
  req.set_seed(static_cast<uint64_t>(cell.seed));
  req.set_top_k(spec.top_k);
  req.set_fine_tune(spec.fine_tune);
  req.set_threads(spec.threads);
  req.set_time_limit_seconds(std::llround(spec.time_limit_minutes * 60));
  acs::v1::SearchSpace* space = req.mutable_space();
  for (const std::string& p : spec.space.patterns) space->add_patterns(p);
  for (int64_t b : spec.space.block_sizes) space->add_block_sizes(static_cast<int32_t>(b));
  for (const std::string& p : spec.space.precisions) space->add_precisions(p);
  space->set_max_sparsity(spec.space.max_sparsity);
  for (const std::string& l : spec.space.skip_layers) space->add_skip_layers(l);
  return req;
}

// Every file the spec names exists, before anything is uploaded.
Status CheckFiles(const CampaignSpec& spec) {
  for (size_t i = 0; i < spec.models.size(); ++i) {
    const CampaignModel& m = spec.models[i];
    if (!m.path.empty() && !std::filesystem::is_regular_file(m.path)) {
      return Status::NotFound("models[" + std::to_string(i) + "].path: no file '" + m.path + "'");
    }
    ACS_RETURN_IF_ERROR(CheckDataFlag("models[" + std::to_string(i) + "].data", m.data));
    if (!m.test_data.empty())
      ACS_RETURN_IF_ERROR(CheckDataFlag("models[" + std::to_string(i) + "].test_data", m.test_data));
  }
  return Status::Ok();
}

// Submits the cells of the run that have no job; returns the run as it is then.
StatusOr<CampaignRun> SubmitMissing(const Remote& r, const CampaignSpec& spec, CampaignRun run) {
  const std::vector<CampaignCell> cells = CampaignCells(spec);
  std::map<std::string, const CampaignCell*> by_key;
  for (const CampaignCell& c : cells) by_key[c.Key(spec)] = &c;
  Uploads uploads(r);
  int submitted = 0;
  for (const acs::v1::CampaignCell& stored : run.cells()) {
    if (!stored.job_id().empty()) continue;
    auto it = by_key.find(stored.key());
    if (it == by_key.end())
      return Status::FailedPrecondition("the stored run has a cell the spec lacks: " + stored.key());
    ACS_ASSIGN_OR_RETURN(acs::v1::SubmitJobRequest req, CellRequest(spec, *it->second, &uploads));
    Job job;
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::SubmitJob, req, &job));
    acs::v1::RecordCampaignCellRequest record;
    record.set_run_id(run.id());
    record.set_key(stored.key());
    record.set_job_id(job.id());
    CampaignRun after;
    Status s = r.Unary(&acs::v1::Acs::Stub::RecordCampaignCell, record, &after);
    if (!s.ok()) {  // e.g. another run of the same date recorded a job first: ours goes
      acs::v1::CancelJobRequest cancel;
      cancel.set_id(job.id());
      Job ignored;
      (void)r.Unary(&acs::v1::Acs::Stub::CancelJob, cancel, &ignored);
      return s;
    }
    std::cerr << "submitted " << stored.key() << ": " << job.id() << std::endl;
    ++submitted;
  }
  std::cerr << "campaign " << run.campaign() << " " << run.date() << ": " << submitted << " cell(s) submitted, "
            << run.cells_size() - submitted << " reused" << std::endl;
  return FetchRun(r, run.id());
}

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ"; 0 when it does not parse.
int64_t ParseUtc(const std::string& iso) {
  std::tm tm{};
  if (strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

// Follows every cell's job to its end: one line per change of a cell's state. The server
// ends a job past the time limit its request carries; a job whose request carries none (a
// server before time_limit_seconds, which drops it) is cancelled here once it is older than
// the spec's limit, and the cell noted why.
Status Follow(const Remote& r, const CampaignSpec& spec, const CampaignRun& run, double poll_seconds) {
  std::set<std::string> cancelled;  // keys cancelled past the time limit
  const int64_t limit_s = static_cast<int64_t>(spec.time_limit_minutes * 60);
  FollowOptions options;
  options.poll_seconds = poll_seconds;
  options.on_poll = [&](const std::string& key, Job* job) -> Status {
    const int64_t created = ParseUtc(job->created());
    if (limit_s <= 0 || job->request().time_limit_seconds() > 0 || created <= 0 ||
        std::time(nullptr) - created <= limit_s || !cancelled.insert(key).second) {
      return Status::Ok();
    }
    acs::v1::RecordCampaignCellRequest note;
    note.set_run_id(run.id());
    note.set_key(key);
    note.set_note("cancelled: still " + Lower(acs::v1::JobState_Name(job->state())) + " past the time limit of " +
                  std::to_string(static_cast<int>(spec.time_limit_minutes)) + " minutes");
    acs::v1::CancelJobRequest cancel;
    cancel.set_id(job->id());
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::CancelJob, cancel, job));
    CampaignRun ignored;
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::RecordCampaignCell, note, &ignored));
    std::cerr << Clock() << " " << key << ": " << note.note() << std::endl;
    return Status::Ok();
  };
  std::vector<FollowedJob> jobs;
  for (const acs::v1::CampaignCell& cell : run.cells()) {
    if (!cell.job_id().empty()) jobs.push_back({cell.key(), cell.job_id()});
  }
  return FollowJobs(r, jobs, options).status();
}

// The date `days` after `date` (YYYY-MM-DD); `date` itself when it does not parse.
std::string ShiftDate(const std::string& date, int days) {
  std::tm tm{};
  if (strptime(date.c_str(), "%Y-%m-%d", &tm) == nullptr) return date;
  const std::time_t t = timegm(&tm) + static_cast<std::time_t>(days) * 86400;
  std::tm out{};
  gmtime_r(&t, &out);
  char b[16];
  std::strftime(b, sizeof b, "%Y-%m-%d", &out);
  return b;
}

// A suspect cell being measured again.
struct Suspect {
  std::string key, job_id, note;
  std::vector<std::string> task_ids;
  CellRemeasure result;
  bool done = false;
};

void TakeRuns(const acs::v1::RemeasureJobReply& reply, Suspect* s) {
  s->result.runs.clear();
  for (const acs::v1::Remeasurement& m : reply.runs()) {
    s->result.runs.push_back({m.worker_id(), m.measured_us(), m.dense_measured_us(),
                              m.state() == "failed" && m.error().empty() ? "failed" : m.error()});
  }
}

// The suspect cells of `report` (a gated metric flagged worse, not yet measured again)
// measured again: `runs` measure-model tasks of each one's exported policy against its
// dense model on a worker of its class, waited for up to `timeout_s`; each result recorded
// on its cell (also when it could not be made: the report then says so).
Status RemeasureSuspects(const Remote& r, const CampaignRun& run, const CampaignReport& report, int runs,
                         double timeout_s, double poll_seconds) {
  std::map<std::string, std::string> notes;
  for (const acs::v1::CampaignCell& c : run.cells()) notes[c.key()] = c.note();
  std::vector<Suspect> suspects;
  for (const CellComparison& c : report.cells) {
    if (c.verdict != CellVerdict::kRegressed || c.remeasure != RemeasureOutcome::kNone || c.job_id.empty()) continue;
    Suspect s;
    s.key = c.key;
    s.job_id = c.job_id;
    s.note = notes[c.key];
    acs::v1::RemeasureJobRequest req;
    req.set_id(c.job_id);
    req.set_runs(runs);
    acs::v1::RemeasureJobReply reply;
    Status st = r.Unary(&acs::v1::Acs::Stub::RemeasureJob, req, &reply);
    if (!st.ok()) {
      s.result.error = st.message();
      s.done = true;
    } else {
      for (const acs::v1::Remeasurement& m : reply.runs()) s.task_ids.push_back(m.task_id());
      TakeRuns(reply, &s);
      s.done = reply.done();
    }
    std::cerr << Clock() << " " << s.key << ": suspect, measuring it again"
              << (st.ok() ? " on " + reply.device_class() + " (" + std::to_string(reply.runs_size()) + " runs)"
                          : ": " + st.message())
              << std::endl;
    suspects.push_back(std::move(s));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  auto ask = [&](Suspect& s, bool cancel) -> Status {
    acs::v1::RemeasureJobRequest req;
    req.set_id(s.job_id);
    for (const std::string& t : s.task_ids) req.add_task_ids(t);
    req.set_cancel(cancel);
    acs::v1::RemeasureJobReply reply;
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::RemeasureJob, req, &reply));
    TakeRuns(reply, &s);
    s.done = reply.done();
    return Status::Ok();
  };
  while (true) {
    bool open = false;
    for (Suspect& s : suspects) {
      if (s.done) continue;
      Status st = ask(s, false);
      if (!st.ok()) {
        s.result.error = st.message();
        s.done = true;
      }
      open |= !s.done;
    }
    if (!open) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (Suspect& s : suspects) {
        if (s.done) continue;
        (void)ask(s, true);
        s.result.error = "gave up after " + std::to_string(static_cast<int>(timeout_s)) +
                         " s: no worker of the class measured it (--remeasure-timeout)";
        s.done = true;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(poll_seconds * 1000)));
  }
  for (Suspect& s : suspects) {
    acs::v1::RecordCampaignCellRequest record;
    record.set_run_id(run.id());
    record.set_key(s.key);
    record.set_note(s.note);
    record.set_remeasure_json(s.result.ToJson().dump());
    CampaignRun ignored;
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::RecordCampaignCell, record, &ignored));
    const std::optional<double> again = s.result.Speedup();
    char line[64] = "";
    if (again) std::snprintf(line, sizeof line, "%.3fx", *again);
    std::cerr << Clock() << " " << s.key << ": measured again: "
              << (again ? std::string("speedup ") + line : "not measured: " + s.result.error) << std::endl;
  }
  return Status::Ok();
}

struct RunOptions {
  double poll = 2;
  int remeasure_runs = 3;
  double remeasure_timeout = 600;
};

// Starts or resumes the run of the spec for `date`, follows it, measures its suspect cells
// again and returns its report.
StatusOr<CampaignReport> RunForDate(const Remote& r, const CampaignSpec& spec, const std::string& text,
                                    const std::string& date, const RunOptions& o) {
  acs::v1::StartCampaignRunRequest start;
  start.set_campaign(spec.name);
  start.set_date(date);
  start.set_spec_hash(CampaignSpecHash(spec));
  start.set_spec_json(text);
  for (const CampaignCell& c : CampaignCells(spec)) start.add_cell_keys(c.Key(spec));
  CampaignRun run;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::StartCampaignRun, start, &run));
  std::cerr << "campaign " << spec.name << " " << run.date() << ": run " << run.id()
            << (run.created_now() ? " started" : " exists, resuming") << ", " << run.cells_size() << " cells"
            << std::endl;
  bool missing = false;
  for (const acs::v1::CampaignCell& c : run.cells()) missing |= c.job_id().empty();
  if (missing) {
    ACS_RETURN_IF_ERROR(CheckFiles(spec));
    ACS_ASSIGN_OR_RETURN(run, SubmitMissing(r, spec, run));
  }
  ACS_RETURN_IF_ERROR(Follow(r, spec, run, o.poll));
  ACS_ASSIGN_OR_RETURN(run, FetchRun(r, run.id()));
  ACS_ASSIGN_OR_RETURN(CampaignReport report, ReportOfRun(r, run));
  if (o.remeasure_runs > 0 && report.gated_regression) {
    ACS_RETURN_IF_ERROR(RemeasureSuspects(r, run, report, o.remeasure_runs, o.remeasure_timeout, o.poll));
    ACS_ASSIGN_OR_RETURN(run, FetchRun(r, run.id()));
    ACS_ASSIGN_OR_RETURN(report, ReportOfRun(r, run));
  }
  std::cerr << "campaign " << spec.name << " " << run.date() << ":";
  for (const auto& [verdict, n] : report.counts) {
    if (n > 0) std::cerr << " " << n << " " << verdict;
  }
  std::cerr << std::endl;
  return report;
}

// Without --date: the caller's latest run of the campaign before `today`, when it is older
// than yesterday; nullopt otherwise.
StatusOr<std::optional<CampaignRun>> LastRunBeforeYesterday(const Remote& r, const CampaignSpec& spec,
                                                            const std::string& today) {
  // Today's run (created now or found) names the owner whose earlier runs count.
  acs::v1::GetCampaignRunRequest get;
  get.set_campaign(spec.name);
  get.set_date(today);
  CampaignRun mine;
  const Status found = r.Unary(&acs::v1::Acs::Stub::GetCampaignRun, get, &mine);
  std::optional<CampaignRun> prev;
  if (found.ok()) {
    ACS_ASSIGN_OR_RETURN(prev, PreviousRun(r, mine));  // the owner's, past other owners' runs
  } else {
    // Without today's run to name the owner, the newest of any owner an admin lists.
    acs::v1::ListCampaignRunsRequest req;
    req.set_campaign(spec.name);
    req.set_before_date(today);
    req.set_page_size(1);
    acs::v1::ListCampaignRunsReply reply;
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::ListCampaignRuns, req, &reply));
    if (reply.runs_size() > 0) prev = reply.runs(0);
  }
  const std::optional<int> age = prev ? DaysBetween(prev->date(), today) : std::nullopt;
  if (age && *age > 1) return prev;
  return std::optional<CampaignRun>();
}

int WorseExit(int a, int b) {
  if (a == kExitRegressed || b == kExitRegressed) return kExitRegressed;
  if (a == kExitFailedCells || b == kExitFailedCells) return kExitFailedCells;
  return std::max(a, b);
}

}  // namespace

std::string TodayUtc() { return FormatNow("%Y-%m-%d", true); }

StatusOr<int> RunCampaign(const Remote& r) {
  const std::string& path = r.flags.positional[0];
  ACS_ASSIGN_OR_RETURN(std::string text, ReadSpecText(path));
  ACS_ASSIGN_OR_RETURN(CampaignSpec spec, ParseCampaignSpec(text, path));
  RunOptions o;
  ACS_ASSIGN_OR_RETURN(o.poll, r.flags.GetDouble("poll-seconds", 2));
  if (!(o.poll > 0)) return Status::InvalidArgument("--poll-seconds must be > 0");
  ACS_ASSIGN_OR_RETURN(int64_t runs, r.flags.GetInt("remeasure-runs", 3));
  if (runs < 0 || runs > 10) return Status::InvalidArgument("--remeasure-runs must be 0 to 10");
  o.remeasure_runs = static_cast<int>(runs);
  ACS_ASSIGN_OR_RETURN(o.remeasure_timeout, r.flags.GetDouble("remeasure-timeout", 600));
  if (!(o.remeasure_timeout >= 0)) return Status::InvalidArgument("--remeasure-timeout must be >= 0");
  const bool catch_up = r.flags.Has("catch-up");
  if (catch_up && r.flags.Has("date")) return Status::InvalidArgument("--catch-up is for runs without --date");

  const std::string date = r.flags.Get("date", TodayUtc());
  std::string missed;  // what the report says about missed nights
  int exit_code = 0;
  if (!r.flags.Has("date")) {
    ACS_ASSIGN_OR_RETURN(std::optional<CampaignRun> last, LastRunBeforeYesterday(r, spec, date));
    if (last) {
      const int age = DaysBetween(last->date(), date).value_or(0);
      const std::string yesterday = ShiftDate(date, -1);
      missed = std::to_string(age - 1) + " night(s) missed: the last run of " + spec.name + " was on " +
               last->date() + ", " + std::to_string(age) + " days before " + date + " (no run " +
               ShiftDate(last->date(), 1) + (age > 2 ? " to " + yesterday : "") + ")";
      if (catch_up) {
        std::cerr << "campaign " << spec.name << ": " << missed << "; catching up " << yesterday
                  << " first (--catch-up: one run, for the latest missed night)" << std::endl;
        ACS_ASSIGN_OR_RETURN(CampaignReport caught, RunForDate(r, spec, text, yesterday, o));
        exit_code = caught.ExitCode();
        std::cerr << "campaign " << spec.name << " " << yesterday << ": caught up, exit " << exit_code
                  << " (acs campaign report --campaign " << spec.name << " --date " << yesterday << ")"
                  << std::endl;
        missed += "; " + yesterday + " was caught up just before this run (--catch-up), compared with " +
                  last->date();
      } else {
        missed += "; this run is compared with a baseline " + std::to_string(age) +
                  " days old (--catch-up would first run " + yesterday + ")";
        std::cerr << "campaign " << spec.name << ": WARNING: " << missed << std::endl;
      }
    }
  }
  ACS_ASSIGN_OR_RETURN(CampaignReport report, RunForDate(r, spec, text, date, o));
  report.header.missed_nights = missed;
  ACS_ASSIGN_OR_RETURN(int code, WriteReport(r, report));
  return WorseExit(exit_code, code);
}

}  // namespace acs::cli
