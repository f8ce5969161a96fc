// bench_load: a real acs-server on loopback under client load. Small jobs are run to the
// end first and every user then submits a long job (one searches, the others stay queued);
// then (1) GetJob / ListJobs calls at a target rate from a few client threads, (2) WatchJob
// streams held open while the one job searches, (3) the calls of (1) again while the
// streams are held. Prints the tables and writes JSON. A benchmark, not a test: no
// thresholds; figures in docs/robustness.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "core/flags.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/load_calls.h"
#include "experiments/bench/service_harness.h"

namespace acs::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadOptions : LoadSetup {
  int watchers = 200;          // WatchJob streams held open at once
  int users = 13;              // users they are spread over (13 x 16 >= 200: the server's default
                               // --max-watchers of 16 per user holds)
  int max_watchers = 0;        // the server's --max-watchers; 0: its default
  int channels = 8;            // client connections the watches are spread over
  double hold_seconds = 10;    // the watches held with nothing else running, before the calls
  RateOptions calls;           // the GetJob / ListJobs calls (ListJobs their list calls)
  std::string json = "data/bench/service_load.json";
};

const char kUsage[] =
    "usage: bench_load [--watchers 200] [--users 13] [--max-watchers N] [--channels 8]\n"
    "                  [--hold-seconds 10] [--rate 1000] [--threads 4] [--seconds 10]\n"
    "                  [--list-share 0.5] [--finished-jobs 4] [--model data/zoo/resnet20.pt]\n"
    "                  [--bin BUILD_DIR] [--dir DIR] [--keep] [--json data/bench/service_load.json]\n"
    "Starts acs-server on loopback (a fresh data dir), submits jobs, then measures GetJob /\n"
    "ListJobs calls at --rate (alone, then with --watchers WatchJob streams open) and the\n"
    "streams themselves. --max-watchers is passed to the server (default: its own, 16 per user).\n";

// Thread `index`'s GetJob / ListJobs calls on a connection of its own.
CallerFactory GrpcCalls(const LocalService& svc, const std::vector<Target>& targets) {
  return [&svc, &targets](int index) -> CallFn {
    std::shared_ptr<v1::Acs::Stub> stub = svc.NewStub(100 + index);
    {
      grpc::ClientContext ctx;
      svc.Prepare(&ctx, targets[0].token, 10);
      v1::ListJobsReply reply;
      (void)stub->ListJobs(&ctx, v1::ListJobsRequest(), &reply);
    }
    return [&svc, &targets, stub](bool list, std::mt19937& rng) -> std::string {
      const Target& t = targets[std::uniform_int_distribution<size_t>(0, targets.size() - 1)(rng)];
      grpc::ClientContext ctx;
      svc.Prepare(&ctx, t.token, 5);
      grpc::Status s;
      if (list) {
        v1::ListJobsReply reply;
        s = stub->ListJobs(&ctx, v1::ListJobsRequest(), &reply);
      } else {
        v1::GetJobRequest req;
        req.set_id(t.job);
        v1::Job job;
        s = stub->GetJob(&ctx, req, &job);
      }
      return s.ok() ? "" : CodeName(s);
    };
  };
}

// One WatchJob stream, read on its own thread until cancelled; it ends with its status.
struct Watcher : HeldStream {
  grpc::ClientContext ctx;
};

void WatchLoop(v1::Acs::Stub* stub, const std::string& job, Watcher* w) {
  v1::WatchJobRequest req;
  req.set_id(job);
  const auto t0 = Clock::now();
  auto reader = stub->WatchJob(&w->ctx, req);
  v1::JobEvent e;
  if (reader->Read(&e)) {
    w->open_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    w->events = 1;
    while (reader->Read(&e)) ++w->events;
  }
  const grpc::Status s = reader->Finish();
  w->end = CodeName(s);
  w->done = true;
}

StatusOr<LoadOptions> ParseOptions(int argc, char** argv) {
  LoadOptions o;
  std::set<std::string> valued = {"watchers", "users", "max-watchers", "channels", "hold-seconds", "finished-jobs"};
  valued.insert(kRateFlags.begin(), kRateFlags.end());
  ACS_ASSIGN_OR_RETURN(Flags f, ParseBenchFlags(argc, argv, valued, &o.job, &o.service, &o.json));
  const std::pair<const char*, int*> ints[] = {{"watchers", &o.watchers},         {"users", &o.users},
                                               {"max-watchers", &o.max_watchers}, {"channels", &o.channels},
                                               {"finished-jobs", &o.finished_jobs}};
  for (const auto& [name, value] : ints) ACS_RETURN_IF_ERROR(SetInt(f, name, value));
  ACS_RETURN_IF_ERROR(SetDouble(f, "hold-seconds", &o.hold_seconds));
  ACS_RETURN_IF_ERROR(SetRateOptions(f, &o.calls));
  if (o.watchers < 0 || o.users < 1 || o.channels < 1 || o.finished_jobs < 0) {
    return Status::InvalidArgument("--users, --channels >= 1, --watchers, --finished-jobs >= 0");
  }
  if (o.max_watchers > 0) o.service.server_flags = {"--max-watchers", std::to_string(o.max_watchers)};
  return o;
}

// Holds the watches while `during` runs; fills `run`.
void HoldWatches(LocalService& svc, const std::vector<Target>& watched, const LoadOptions& o, StreamStats* run,
                 const std::function<void()>& during) {
  std::vector<std::unique_ptr<v1::Acs::Stub>> stubs;
  for (int c = 0; c < o.channels; ++c) stubs.push_back(svc.NewStub(1 + c));
  std::vector<std::unique_ptr<Watcher>> watchers;
  const auto t0 = Clock::now();
  for (int i = 0; i < o.watchers; ++i) {
    auto w = std::make_unique<Watcher>();
    const Target& t = watched[i % watched.size()];
    svc.Prepare(&w->ctx, t.token, 3600);
    w->thread = std::thread(WatchLoop, stubs[i % stubs.size()].get(), t.job, w.get());
    watchers.push_back(std::move(w));
  }
  std::vector<HeldStream*> held;
  for (auto& w : watchers) held.push_back(w.get());
  AwaitOpen(held, t0, run);
  HoldAndClose(svc.server_pid(), "watches", o.hold_seconds, held, during, [&] {
    for (auto& w : watchers) w->ctx.TryCancel();
  }, run);
}

int Main(int argc, char** argv) {
  if (WantsHelp(argc, argv, kUsage)) return 0;
  const LoadOptions o = OrDie(ParseOptions(argc, argv), "bench_load");
  std::vector<std::string> tokens;
  std::unique_ptr<LocalService> svc =
      OrDie(StartLoadService(o.service, o.users, {}, &tokens), "bench_load: starting the server");
  const LoadJobs jobs = OrDie(SubmitLoadJobs(*svc, o.job, tokens, o.finished_jobs, o.long_episodes),
                              "bench_load: the jobs (the model is made by acs-zoo train)");
  const std::vector<Target>&targets = jobs.targets, &watched = jobs.watched;
  const CallerFactory calls = GrpcCalls(*svc, targets);

  std::vector<CallRun> runs;
  runs.push_back(RunCalls(o.calls, svc->server_pid(), "no watches", calls));
  StreamStats watch;  // ends: status -> streams (CANCELLED: closed by the benchmark)
  watch.server.push_back({"before the watches", ReadProcStats(svc->server_pid())});
  HoldWatches(*svc, watched, o, &watch, [&] {
    runs.push_back(RunCalls(o.calls, svc->server_pid(), std::to_string(o.watchers) + " watches open", calls));
  });
  PrintCalls(runs, o.calls, "GetJob", "ListJobs");

  std::printf("\nWatchJob streams: %d over %d users (server --max-watchers %s), %d connections; the job of user0 "
              "searches, the others are queued\n",
              o.watchers, o.users, o.max_watchers > 0 ? std::to_string(o.max_watchers).c_str() : "default 16",
              o.channels);
  std::printf("%8s %8s %12s %12s %12s %14s %10s %16s\n", "opened", "refused", "open p50 ms", "open p99 ms",
              "open max ms", "all open in s", "events", "CPU while held");
  int64_t refused = 0;
  for (const auto& [end, n] : watch.ends) refused += end != "CANCELLED" && end != "OK" ? n : 0;
  std::printf("%8d %8lld %12.2f %12.2f %12.2f %14.2f %10lld %15d%%\n", watch.opened, static_cast<long long>(refused),
              watch.open.p50, watch.open.p99, watch.open.max, watch.all_open_seconds,
              static_cast<long long>(watch.events), static_cast<int>(100 * watch.held_server_cpu + 0.5));
  PrintServerStats(watch.server);

  nlohmann::json out = {{"options",
                         {{"watchers", o.watchers}, {"users", o.users}, {"max_watchers", o.max_watchers},
                          {"channels", o.channels}, {"rate", o.calls.rate}, {"threads", o.calls.threads},
                          {"seconds", o.calls.seconds}, {"list_share", o.calls.list_share},
                          {"finished_jobs", o.finished_jobs},
                          {"hold_seconds", o.hold_seconds}}},
                        {"watch", StreamStatsJson(watch)},
                        {"server", ServerStatsJson(watch.server)}};
  return FinishLoadRun(*svc, runs, out, o.json);
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
