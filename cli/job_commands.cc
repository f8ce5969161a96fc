// The acs commands about jobs on an acs-server: submit, watch, jobs, job, cancel, download
// (how a job is shown: cli/job_display.h).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/job_display.h"
#include "cli/job_request.h"
#include "cli/job_transfers.h"
#include "cli/remote.h"
#include "cli/table.h"
#include "proto/acs.grpc.pb.h"
#include "proto/grpc_status.h"

namespace acs::cli {
namespace {

namespace fs = std::filesystem;
using acs::v1::Job;
using acs::v1::JobEvent;
using acs::v1::JobState;

// ---------------------------------------------------------------------------------------
// Job states.

// "queued, preparing, ...": the JobState names of the proto, lower case.
std::string StateNames() {
  std::string names;
  const google::protobuf::EnumDescriptor* d = acs::v1::JobState_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    if (d->value(i)->number() == acs::v1::JOB_STATE_UNSPECIFIED) continue;
    std::string name = d->value(i)->name();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names += (names.empty() ? "" : ", ") + name;
  }
  return names;
}

// --state: a JobState name, any case.
StatusOr<JobState> ParseState(const std::string& text) {
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  JobState state;
  if (acs::v1::JobState_Parse(upper, &state) && state != acs::v1::JOB_STATE_UNSPECIFIED) return state;
  return Status::InvalidArgument("--state expects one of " + StateNames() + ", got '" + text + "'");
}

// ---------------------------------------------------------------------------------------
// Jobs and transfers.

// Prints the job's events after the after_seq-th (0: all) to stderr until its stream ends;
// returns the job as it ended.
StatusOr<Job> Follow(const Remote& r, const std::string& id, int64_t after_seq) {
  grpc::ClientContext ctx;
  r.conn.Prepare(&ctx, 0);
  acs::v1::WatchJobRequest req;
  req.set_id(id);
  req.set_after_seq(after_seq);
  std::unique_ptr<grpc::ClientReader<JobEvent>> reader = r.conn.stub->WatchJob(&ctx, req);
  JobEvent event;
  Job last;
  while (reader->Read(&event)) {
    std::cerr << EventLine(event) << std::endl;
    last = event.job();
  }
  ACS_RETURN_IF_ERROR(Call(reader->Finish(), r.flags));
  if (last.id().empty() || !IsTerminal(last.state())) return FetchJob(r, id);
  return last;
}

// Watches to the end, prints the summary to stdout; OK when the job succeeded.
Status WatchToEnd(const Remote& r, const std::string& id, int64_t after_seq = 0) {
  ACS_ASSIGN_OR_RETURN(Job job, Follow(r, id, after_seq));
  PrintJob(job, std::cout);
  return Outcome(job);
}

// ---------------------------------------------------------------------------------------
// Command bodies.

Status Submit(const Remote& r) {
  ACS_ASSIGN_OR_RETURN(acs::v1::SubmitJobRequest req, UploadedRequest(r));
  Job job;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::SubmitJob, req, &job));
  std::cout << job.id() << std::endl;  // flushed: scripts read it while --watch runs
  return r.flags.Has("watch") ? WatchToEnd(r, job.id()) : Status::Ok();
}

// One page, or every page with --all.
Status ListJobs(const Remote& r) {
  acs::v1::ListJobsRequest req;
  if (r.flags.Has("state")) {
    ACS_ASSIGN_OR_RETURN(JobState state, ParseState(r.flags.Get("state")));
    req.set_state(state);
  }
  ACS_ASSIGN_OR_RETURN(int64_t page_size, r.flags.GetInt("page-size", 0));
  if (page_size < 0) return Status::InvalidArgument("--page-size must be >= 0");
  req.set_page_size(static_cast<int32_t>(page_size));
  req.set_page_token(r.flags.Get("page-token"));
  Table table({"job", "state", "agent", "budget", "episodes", "accuracy", "speedup", "created"});
  acs::v1::ListJobsReply reply;
  do {
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::ListJobs, req, &reply));
    for (const Job& j : reply.jobs()) {
      std::string speedup = Speedup(j.dense_measured_latency_us(), j.best_measured_latency_us());
      if (speedup.empty()) speedup = Speedup(j.dense_predicted_latency_us(), j.best_predicted_latency_us());
      table.AddRow({j.id(), acs::v1::JobState_Name(j.state()), j.request().agent(), Budget(j.request().budget()),
                    Episodes(j),
                    j.exported_accuracy() > 0 ? Percent(j.exported_accuracy(), 2)
                    : j.episodes_done() > 0   ? Percent(j.best_accuracy(), 2)
                                              : "",
                    speedup, j.created()});
    }
    req.set_page_token(reply.next_page_token());
  } while (r.flags.Has("all") && !reply.next_page_token().empty());
  table.Print(std::cout);
  if (!reply.next_page_token().empty()) {
    std::cerr << "more jobs: --page-token " << reply.next_page_token() << " or --all\n";
  }
  return Status::Ok();
}

Status ShowJob(const Remote& r) {
  ACS_ASSIGN_OR_RETURN(Job job, FetchJob(r, r.flags.positional[0]));
  if (!r.flags.Has("json")) {
    PrintJob(job, std::cout);
    return Status::Ok();
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(job, &json, options); !s.ok()) {
    return Status::Internal("job as JSON: " + s.ToString());
  }
  std::cout << json;
  return Status::Ok();
}

Status CancelJob(const Remote& r) {
  acs::v1::CancelJobRequest req;
  req.set_id(r.flags.positional[0]);
  Job job;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::CancelJob, req, &job));
  std::cout << "job " << job.id() << ": "
            << (IsTerminal(job.state()) ? acs::v1::JobState_Name(job.state())
                                        : "cancel requested (still " + acs::v1::JobState_Name(job.state()) + ")")
            << "\n";
  return Status::Ok();
}

// Prints the path of every file written to stdout.
Status DownloadArtifacts(const Remote& r) {
  const std::string& id = r.flags.positional[0];
  if (r.flags.Has("all") && r.flags.Has("name")) return Status::InvalidArgument("--name and --all exclude each other");
  ACS_ASSIGN_OR_RETURN(std::string out, r.flags.Required("out"));
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Status::Unavailable("cannot create '" + out + "': " + ec.message());
  std::vector<std::string> names = {r.flags.Get("name", "compressed.pt")};
  if (r.flags.Has("all")) {
    ACS_ASSIGN_OR_RETURN(Job job, FetchJob(r, id));
    if (job.artifacts().empty()) {
      return Status::FailedPrecondition("job " + id + " has no artifacts yet (it is " +
                                        acs::v1::JobState_Name(job.state()) + ")");
    }
    names.clear();
    for (const acs::v1::Artifact& a : job.artifacts()) names.push_back(a.name());
  }
  for (const std::string& name : names) {
    ACS_ASSIGN_OR_RETURN(std::string path, Download(r, id, name, out));
    std::cout << path << "\n";
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Command specs: usage and flags.

const char kSubmitUsage[] =
    "usage: acs submit MODEL.pt --input SHAPE --data PATH|name:NAME [options] [--watch]\n\n"
    "Uploads a TorchScript model (and the dataset file), submits a compression search job\n"
    "and prints its id on stdout. With --watch, follows it to the end like 'acs watch'.\n\n"
    "job options:\n"
    "  --budget KIND=Rx     latency, flops, params or bytes, ratio of the dense model in\n"
    "                       (0, 1] (default latency=0.5x)\n";

CommandSpec SubmitSpec() {
  std::set<std::string> valued = kJobFlags, switches = kJobSwitches;
  valued.insert("budget");
  switches.insert("watch");
  return {"submit",
          std::string(kSubmitUsage) + kJobOptionsHelp +
              "  --watch              follow the job until it ends; exit code 0 only if it succeeded\n",
          2,
          valued,
          switches,
          {"MODEL"}};
}

const CommandSpec kWatch = {
    "watch",
    "usage: acs watch JOB [--after SEQ]\n\n"
    "Follows a job: one line per event on stderr, each with the time it happened (episodes\n"
    "with reward, accuracy, cost ratio, best so far and ETA; state changes; verification on\n"
    "a worker), then a summary on stdout. Exit code 0 when the job succeeded, 1 otherwise\n"
    "(also when it ended with BUDGET_NOT_MET: its compressed model measured slower than\n"
    "the latency budget).\n\n"
    "  --after SEQ   skip the job's first SEQ events (they are numbered from 1); default 0\n",
    2, {"after"}, {}, {"JOB"}};

const CommandSpec kJobs = {
    "jobs",
    "usage: acs jobs [--state STATE] [--page-size N] [--page-token T | --all]\n\n"
    "Lists jobs, newest first: one page (--page-size, default the server's 50), or all\n"
    "pages with --all. STATE: a job state (queued, ..., succeeded, budget_not_met, failed,\n"
    "cancelled).\n",
    2, {"state", "page-size", "page-token"}, {"all"}, {}};

const CommandSpec kJob = {
    "job",
    "usage: acs job JOB [--json]\n\n"
    "A job's request, progress, accuracy, predicted and measured latency and artifacts;\n"
    "--json prints the job as JSON.\n",
    2, {}, {"json"}, {"JOB"}};

const CommandSpec kCancel = {"cancel", "usage: acs cancel JOB\n\nCancels a queued or running job.\n", 2, {}, {},
                             {"JOB"}};

const CommandSpec kDownload = {
    "download",
    "usage: acs download JOB --out DIR [--name NAME | --all]\n\n"
    "Downloads a job's artifact (default compressed.pt; also policy.json, report.json) or\n"
    "all of them into DIR, and prints the paths written.\n",
    2, {"out", "name"}, {"all"}, {"JOB"}};

}  // namespace

int SubmitCommand(int argc, char** argv) { return Run(SubmitSpec(), argc, argv, Submit); }

int WatchCommand(int argc, char** argv) {
  return Run(kWatch, argc, argv, [](const Remote& r) -> Status {
    ACS_ASSIGN_OR_RETURN(int64_t after_seq, r.flags.GetInt("after", 0));
    if (after_seq < 0) return Status::InvalidArgument("--after expects a number >= 0, got " + r.flags.Get("after"));
    return WatchToEnd(r, r.flags.positional[0], after_seq);
  });
}

int JobsCommand(int argc, char** argv) { return Run(kJobs, argc, argv, ListJobs); }
int JobCommand(int argc, char** argv) { return Run(kJob, argc, argv, ShowJob); }
int CancelCommand(int argc, char** argv) { return Run(kCancel, argc, argv, CancelJob); }
int DownloadCommand(int argc, char** argv) { return Run(kDownload, argc, argv, DownloadArtifacts); }
}  // namespace acs::cli
