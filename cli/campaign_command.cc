// acs campaign run|list|show|report: nightly campaigns against an acs-server
// (docs/campaigns.md). Exit codes: 0 ok, 1 error, 2 bad usage, kExitRegressed (3) when a
// gated metric regressed, kExitFailedCells (4) when cells failed but nothing regressed.
#include <cctype>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>

#include "cli/campaign_results.h"
#include "cli/campaign_run.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/job_display.h"
#include "cli/table.h"

namespace acs::cli {
namespace {

using acs::v1::CampaignRun;

struct Sub {
  CommandSpec spec;     // positionals: the names of at most that many optional ones, but
  size_t required = 0;  // the first `required` of them
  std::function<StatusOr<int>(const Remote&)> body;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "2 succeeded, 1 failed" over the cells' states ("pending" without a job).
std::string StateSummary(const CampaignRun& run) {
  std::map<std::string, int> n;
  for (const acs::v1::CampaignCell& c : run.cells()) {
    ++n[c.job_id().empty() ? "pending" : Lower(acs::v1::JobState_Name(c.state()))];
  }
  std::string out;
  for (const auto& [state, count] : n) out += (out.empty() ? "" : ", ") + std::to_string(count) + " " + state;
  return out;
}

// The run a show / report names: RUN, or --campaign NAME [--date D] (default today).
StatusOr<CampaignRun> NamedRun(const Remote& r) {
  if (!r.flags.positional.empty()) {
    if (r.flags.Has("campaign")) return Status::InvalidArgument("pass a RUN id or --campaign, not both");
    return FetchRun(r, r.flags.positional[0]);
  }
  if (!r.flags.Has("campaign")) return Status::InvalidArgument("missing RUN (or --campaign NAME [--date D])");
  return FetchRun(r, "", r.flags.Get("campaign"), r.flags.Get("date", TodayUtc()));
}

StatusOr<int> List(const Remote& r) {
  acs::v1::ListCampaignRunsRequest req;
  req.set_campaign(r.flags.Get("campaign"));
  ACS_ASSIGN_OR_RETURN(int64_t size, r.flags.GetInt("page-size", 0));
  if (size < 0) return Status::InvalidArgument("--page-size must be >= 0");
  req.set_page_size(static_cast<int32_t>(size));
  acs::v1::ListCampaignRunsReply reply;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::ListCampaignRuns, req, &reply));
  Table table({"run", "campaign", "date", "cells", "spec", "owner", "created"});
  for (const CampaignRun& run : reply.runs()) {
    table.AddRow({run.id(), run.campaign(), run.date(), StateSummary(run), run.spec_hash().substr(0, 12), run.owner(),
                  run.created()});
  }
  table.Print(std::cout);
  return 0;
}

StatusOr<int> Show(const Remote& r) {
  ACS_ASSIGN_OR_RETURN(CampaignRun run, NamedRun(r));
  std::cout << "run " << run.id() << ": campaign " << run.campaign() << " on " << run.date() << ", spec "
            << run.spec_hash().substr(0, 12) << ", owner " << run.owner() << ", created " << run.created() << "\n"
            << StateSummary(run) << "\n\n";
  Table table({"cell", "state", "job", "note"});
  for (const acs::v1::CampaignCell& c : run.cells()) {
    table.AddRow({c.key(), c.job_id().empty() ? "pending" : Lower(acs::v1::JobState_Name(c.state())),
                  c.job_id().empty() ? "-" : c.job_id(), c.note()});
  }
  table.Print(std::cout);
  return 0;
}

StatusOr<int> Report(const Remote& r) {
  ACS_ASSIGN_OR_RETURN(CampaignRun run, NamedRun(r));
  ACS_ASSIGN_OR_RETURN(CampaignReport report, ReportOfRun(r, run));
  return WriteReport(r, report);
}

const char kReportFlagsHelp[] =
    "  --format F           json, md or html (default: from --out's extension, else md)\n"
    "  --out PATH           where the report goes (default: stdout)\n"
    "  --job-link PREFIX    link job ids as PREFIX + id, e.g. http://HOST:PORT/api/v1/jobs/\n";

const char kExitHelp[] =
    "\nexit codes: 0 nothing gated regressed and every cell ended with a result; 3 a gated\n"
    "metric regressed; 4 cells failed, were cancelled or never ran (and nothing regressed);\n"
    "1 an error, 2 bad usage.\n";

const std::map<std::string, Sub>& Subs() {
  static const std::map<std::string, Sub> subs = {
      {"run",
       {{"campaign run",
         std::string("usage: acs campaign run SPEC.json [--date YYYY-MM-DD] [report options]\n\n"
                     "Starts the stored run of the spec's campaign for the date (default: today, UTC), or\n"
                     "resumes it: cells without a job are submitted (models and data uploaded once), cells\n"
                     "with one are reused, so a second run of a date submits nothing. Each job carries\n"
                     "the spec's time_limit_minutes: the server fails it once it has run that long.\n"
                     "Follows the jobs (one line per change on stderr), then compares the run with the\n"
                     "campaign's previous one, measures each suspect cell again on a worker of its class\n"
                     "(flagged only when that confirms it) and writes the report. Without --date, a last\n"
                     "run older than yesterday is reported as missed nights.\n\n"
                     "  --date YYYY-MM-DD    the run's date (default: today in UTC)\n"
                     "  --catch-up           without --date, when nights were missed: first run the\n"
                     "                       latest missed night (yesterday), then today\n"
                     "  --poll-seconds S     how often the jobs are read (default 2)\n"
                     "  --remeasure-runs N   measurements of a suspect cell's policy (default 3, 0: none)\n"
                     "  --remeasure-timeout S  give a re-measurement up after S seconds (default 600)\n") +
             kReportFlagsHelp + kExitHelp,
         3,
         {"date", "poll-seconds", "format", "out", "job-link", "remeasure-runs", "remeasure-timeout"},
         {"catch-up"},
         {"SPEC"}},
        1,
        RunCampaign}},
      {"list",
       {{"campaign list",
         "usage: acs campaign list [--campaign NAME] [--page-size N]\n\n"
         "Stored campaign runs, newest date first, with their cells' states.\n",
         3,
         {"campaign", "page-size"},
         {},
         {}},
        0,
        List}},
      {"show",
       {{"campaign show",
         "usage: acs campaign show RUN | --campaign NAME [--date YYYY-MM-DD]\n\n"
         "A stored run's cells: key, state, job and note.\n",
         3,
         {"campaign", "date"},
         {},
         {"RUN"}},
        0,
        Show}},
      {"report",
       {{"campaign report",
         std::string("usage: acs campaign report RUN | --campaign NAME [--date YYYY-MM-DD] [options]\n\n"
                     "Compares a stored run with the campaign's previous run, cell by cell.\n\n") +
             kReportFlagsHelp + kExitHelp,
         3,
         {"campaign", "date", "format", "out", "job-link"},
         {},
         {"RUN"}},
        0,
        Report}},
  };
  return subs;
}

const char kCampaignHelp[] =
    "usage: acs campaign run|list|show|report ... (--help after one for its options)\n\n"
    "Nightly compression campaigns (docs/campaigns.md): a spec's cells submitted as jobs once\n"
    "per date, stored by the server, and a report against the previous night.\n";

bool AsksHelp(int argc, char** argv) {
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  }
  return false;
}

}  // namespace

int CampaignCommand(int argc, char** argv) {
  if (argc < 3 || !std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h")) {
    std::cout << kCampaignHelp;
    return argc < 3 ? 2 : 0;
  }
  auto it = Subs().find(argv[2]);
  if (it == Subs().end())
    return Fail("campaign",
                Status::InvalidArgument(std::string("unknown subcommand '") + argv[2] + "' (run, list, show, report)"));
  const Sub& sub = it->second;
  if (AsksHelp(argc, argv)) {
    std::cout << sub.spec.help << "\n" << kConnectHelp;
    return 0;
  }
  std::set<std::string> valued = sub.spec.valued;
  valued.insert(kConnectFlags.begin(), kConnectFlags.end());
  Remote r;
  StatusOr<Flags> flags = ParseFlags(argc, argv, 3, valued, sub.spec.switches);
  if (!flags.ok()) return Fail(sub.spec.name, flags.status());
  r.flags = *flags;
  const size_t n = r.flags.positional.size();
  if (n < sub.required) {
    return Fail(sub.spec.name, Status::InvalidArgument("missing " + sub.spec.positionals[n] + " (see 'acs " +
                                                       sub.spec.name + " --help')"));
  }
  if (n > sub.spec.positionals.size()) {
    return Fail(sub.spec.name, Status::InvalidArgument("unexpected argument '" + r.flags.positional.back() + "'"));
  }
  StatusOr<Connection> conn = Connect(r.flags);
  if (!conn.ok()) return Fail(sub.spec.name, conn.status());
  r.conn = std::move(*conn);
  StatusOr<int> code = sub.body(r);
  return code.ok() ? *code : Fail(sub.spec.name, code.status());
}

}  // namespace acs::cli
