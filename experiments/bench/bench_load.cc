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
#include "experiments/bench/service_harness.h"

namespace acs::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  int watchers = 200;          // WatchJob streams held open at once
  int users = 13;              // users they are spread over (13 x 16 >= 200: the server's default
                               // --max-watchers of 16 per user holds)
  int max_watchers = 0;        // the server's --max-watchers; 0: its default
  int channels = 8;            // client connections the watches are spread over
  double hold_seconds = 10;    // the watches held with nothing else running, before the calls
  double rate = 1000;          // target GetJob + ListJobs calls per second
  int threads = 4;             // client threads making them, one connection each
  double seconds = 10;         // length of each run of calls
  double list_share = 0.5;     // share of ListJobs among the calls (the rest GetJob)
  int finished_jobs = 4;       // small jobs run to the end first (their artifacts in the store)
  int long_episodes = 100000;  // episodes of the users' jobs, so that none ends during the run
  JobSpec job;
  ServiceOptions service;
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

// A job and the token of its owner.
struct Target {
  std::string job, token;
};

// One run of calls at the target rate.
struct CallRun {
  std::string phase;
  double seconds = 0;  // from the first call to the last reply
  int64_t calls = 0;
  std::map<std::string, int64_t> errors;  // gRPC code name -> count
  LatencySummary get, list, all;
  double server_cpu = 0;  // server CPU seconds per wall second
  ProcStats server;       // at the end of the run
};

// The calls of one client thread: open loop, each at its scheduled time (or at once when
// the thread is behind).
struct ThreadCalls {
  std::vector<double> get_ms, list_ms;
  std::map<std::string, int64_t> errors;
  Clock::time_point last;
};

void CallLoop(const LocalService& svc, const std::vector<Target>& targets, const LoadOptions& o, int index,
              Clock::time_point start, ThreadCalls* out) {
  std::unique_ptr<v1::Acs::Stub> stub = svc.NewStub(100 + index);
  std::mt19937 rng(static_cast<uint32_t>(index + 1));
  std::uniform_int_distribution<size_t> pick(0, targets.size() - 1);
  std::bernoulli_distribution list(o.list_share);
  const double interval = o.threads / o.rate;
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  {  // untimed: the connection is made before the start
    grpc::ClientContext ctx;
    svc.Prepare(&ctx, targets[0].token, 10);
    v1::ListJobsReply reply;
    (void)stub->ListJobs(&ctx, v1::ListJobsRequest(), &reply);
  }
  for (int64_t k = 0;; ++k) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>((k + double(index) / o.threads) * interval));
    if (at >= end) break;
    std::this_thread::sleep_until(at);
    const Target& t = targets[pick(rng)];
    grpc::ClientContext ctx;
    svc.Prepare(&ctx, t.token, 5);
    const bool is_list = list(rng);
    const auto sent = Clock::now();
    grpc::Status s;
    if (is_list) {
      v1::ListJobsReply reply;
      s = stub->ListJobs(&ctx, v1::ListJobsRequest(), &reply);
    } else {
      v1::GetJobRequest req;
      req.set_id(t.job);
      v1::Job job;
      s = stub->GetJob(&ctx, req, &job);
    }
    out->last = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(out->last - sent).count();
    if (!s.ok()) {
      ++out->errors[CodeName(s)];
      continue;
    }
    (is_list ? out->list_ms : out->get_ms).push_back(ms);
  }
}

CallRun RunCalls(const LocalService& svc, const std::vector<Target>& targets, const LoadOptions& o,
                 const std::string& phase) {
  CallRun run;
  run.phase = phase;
  const ProcStats before = ReadProcStats(svc.server_pid());
  std::vector<ThreadCalls> calls(o.threads);
  std::vector<std::thread> threads;
  const auto start = Clock::now() + std::chrono::milliseconds(500);  // every thread connected by then
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back(CallLoop, std::cref(svc), std::cref(targets), std::cref(o), i, start, &calls[i]);
  }
  for (std::thread& t : threads) t.join();
  run.server = ReadProcStats(svc.server_pid());
  std::vector<double> get, list;
  Clock::time_point last = start;
  for (const ThreadCalls& c : calls) {
    get.insert(get.end(), c.get_ms.begin(), c.get_ms.end());
    list.insert(list.end(), c.list_ms.begin(), c.list_ms.end());
    for (const auto& [code, n] : c.errors) run.errors[code] += n;
    last = std::max(last, c.last);
  }
  run.seconds = std::chrono::duration<double>(last - start).count();
  std::vector<double> all = get;
  all.insert(all.end(), list.begin(), list.end());
  run.get = Summarize(get);
  run.list = Summarize(list);
  run.all = Summarize(all);
  run.calls = run.all.count;
  for (const auto& [code, n] : run.errors) run.calls += n;
  run.server_cpu = (run.server.cpu_seconds - before.cpu_seconds) / std::max(1e-9, run.seconds);
  return run;
}

// One WatchJob stream, read on its own thread until cancelled.
struct Watcher {
  grpc::ClientContext ctx;
  std::thread thread;
  std::atomic<int64_t> events{0};
  std::atomic<bool> done{false};
  double open_ms = -1;  // until the first event; -1: none came
  std::string end;      // the status it ended with
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

struct WatchRun {
  int opened = 0;
  std::map<std::string, int64_t> ends;  // status -> streams (CANCELLED: closed by the benchmark)
  LatencySummary open;
  double all_open_seconds = 0;        // from the first WatchJob to the last stream's first event
  int64_t events = 0;                 // delivered over all streams
  double held_server_cpu = 0;         // server CPU seconds per wall second while only held
  std::vector<std::pair<std::string, ProcStats>> server;  // snapshots
};

void PrintCalls(const std::vector<CallRun>& runs, const LoadOptions& o) {
  std::printf("\nGetJob / ListJobs at a target of %.0f calls/s (%.0f%% ListJobs), %d client threads, %.0f s a run\n",
              o.rate, 100 * o.list_share, o.threads, o.seconds);
  std::printf("%-22s %-8s %7s %10s %8s %8s %8s %7s %10s\n", "phase", "rpc", "calls", "achieved/s", "p50 ms",
              "p99 ms", "max ms", "errors", "server CPU");
  for (const CallRun& r : runs) {
    int64_t errors = 0;
    for (const auto& [code, n] : r.errors) errors += n;
    const std::pair<const char*, const LatencySummary*> rows[] = {{"GetJob", &r.get}, {"ListJobs", &r.list},
                                                                  {"both", &r.all}};
    for (const auto& [rpc, s] : rows) {
      const bool both = s == &r.all;
      std::printf("%-22s %-8s %7lld %10.1f %8.2f %8.2f %8.2f %7s %10s\n", r.phase.c_str(), rpc,
                  static_cast<long long>(both ? r.calls : s->count), s->count / std::max(1e-9, r.seconds), s->p50,
                  s->p99, s->max, both ? std::to_string(errors).c_str() : "",
                  both ? (std::to_string(static_cast<int>(100 * r.server_cpu + 0.5)) + "%").c_str() : "");
    }
  }
}

nlohmann::json ToJson(const CallRun& r) {
  return {{"phase", r.phase},       {"seconds", r.seconds},          {"calls", r.calls},
          {"errors", r.errors},     {"achieved_per_s", r.calls / std::max(1e-9, r.seconds)},
          {"get_job", r.get.ToJson()}, {"list_jobs", r.list.ToJson()}, {"all", r.all.ToJson()},
          {"server_cpu", r.server_cpu}, {"server_rss_mib", r.server.rss_mib}, {"server_threads", r.server.threads}};
}

StatusOr<LoadOptions> ParseOptions(int argc, char** argv) {
  LoadOptions o;
  ACS_ASSIGN_OR_RETURN(Flags f, ParseBenchFlags(argc, argv,
                                                {"watchers", "users", "max-watchers", "channels", "hold-seconds",
                                                 "rate", "threads", "seconds", "list-share", "finished-jobs"},
                                                &o.job, &o.service, &o.json));
  const std::pair<const char*, int*> ints[] = {{"watchers", &o.watchers},     {"users", &o.users},
                                               {"max-watchers", &o.max_watchers}, {"channels", &o.channels},
                                               {"threads", &o.threads},           {"finished-jobs", &o.finished_jobs}};
  for (const auto& [name, value] : ints) ACS_RETURN_IF_ERROR(SetInt(f, name, value));
  const std::pair<const char*, double*> doubles[] = {{"hold-seconds", &o.hold_seconds}, {"rate", &o.rate},
                                                     {"seconds", &o.seconds}, {"list-share", &o.list_share}};
  for (const auto& [name, value] : doubles) ACS_RETURN_IF_ERROR(SetDouble(f, name, value));
  if (o.watchers < 0 || o.users < 1 || o.channels < 1 || o.threads < 1 || o.rate <= 0 || o.seconds <= 0 ||
      o.finished_jobs < 0 || o.list_share < 0 || o.list_share > 1) {
    return Status::InvalidArgument(
        "--users, --channels, --threads >= 1, --rate, --seconds > 0, --list-share in [0, 1]");
  }
  if (o.max_watchers > 0) o.service.server_flags = {"--max-watchers", std::to_string(o.max_watchers)};
  return o;
}

// Holds the watches while `during` runs; fills `run`.
void HoldWatches(LocalService& svc, const std::vector<Target>& watched, const LoadOptions& o, WatchRun* run,
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
  auto settled = [&] {
    return std::all_of(watchers.begin(), watchers.end(), [](const auto& w) { return w->events > 0 || w->done; });
  };
  test_process::WaitFor(settled, 60);
  run->all_open_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run->server.push_back({"watches open", ReadProcStats(svc.server_pid())});
  const ProcStats before = run->server.back().second;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.hold_seconds));
  run->server.push_back({"after holding them", ReadProcStats(svc.server_pid())});
  run->held_server_cpu = (run->server.back().second.cpu_seconds - before.cpu_seconds) / o.hold_seconds;
  during();
  run->server.push_back({"after the calls", ReadProcStats(svc.server_pid())});
  for (auto& w : watchers) w->ctx.TryCancel();
  std::vector<double> open;
  for (auto& w : watchers) {
    w->thread.join();
    run->opened += w->open_ms >= 0;
    if (w->open_ms >= 0) open.push_back(w->open_ms);
    run->events += w->events;
    ++run->ends[w->end];
  }
  run->open = Summarize(open);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  run->server.push_back({"2 s after closing them", ReadProcStats(svc.server_pid())});
}

int Main(int argc, char** argv) {
  if (WantsHelp(argc, argv, kUsage)) return 0;
  const LoadOptions o = OrDie(ParseOptions(argc, argv), "bench_load");
  const std::string model = OrDie(ReadFileBytes(o.job.model), "bench_load: the job's model (acs-zoo train makes it)");
  std::unique_ptr<LocalService> svc = OrDie(LocalService::Create(o.service), "bench_load");
  std::vector<std::string> tokens;
  for (int u = 0; u < o.users; ++u) tokens.push_back(OrDie(svc->Token("user" + std::to_string(u), "user"), "token"));
  OrDie(svc->StartServer(), "bench_load: starting the server");
  std::printf("acs-server at %s, data in %s\n", svc->address().c_str(), svc->data_dir().c_str());
  const v1::UploadReply up = OrDie(svc->Upload(model, tokens[0]), "upload");
  std::vector<Target> targets, watched;
  for (int i = 0; i < o.finished_jobs; ++i) {
    const v1::Job job = OrDie(svc->Submit(JobRequestOf(o.job, up.sha256()), tokens[0]), "submit");
    targets.push_back({job.id(), tokens[0]});
  }
  for (const Target& t : targets) {
    OrDie(svc->WaitForJob(t.job, t.token, [](const v1::Job& j) { return j.state() >= v1::SUCCEEDED; }, 600),
          "finishing the small jobs");
  }
  for (int u = 0; u < o.users; ++u) {
    const v1::Job job = OrDie(svc->Submit(JobRequestOf(o.job, up.sha256(), o.long_episodes), tokens[u]), "submit");
    watched.push_back({job.id(), tokens[u]});
    targets.push_back(watched.back());
  }
  OrDie(svc->WaitForJob(watched[0].job, tokens[0], [](const v1::Job& j) { return j.episodes_done() > 0; }, 300),
        "starting the search");
  std::printf("jobs: %d succeeded, %d of the users' (1 searching, %d queued)\n", o.finished_jobs, o.users,
              o.users - 1);

  std::vector<CallRun> runs;
  runs.push_back(RunCalls(*svc, targets, o, "no watches"));
  WatchRun watch;
  watch.server.push_back({"before the watches", ReadProcStats(svc->server_pid())});
  HoldWatches(*svc, watched, o, &watch,
              [&] { runs.push_back(RunCalls(*svc, targets, o, std::to_string(o.watchers) + " watches open")); });
  PrintCalls(runs, o);

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
  std::printf("\n%-26s %8s %8s\n", "server process", "RSS MiB", "threads");
  for (const auto& [when, p] : watch.server) std::printf("%-26s %8.1f %8d\n", when.c_str(), p.rss_mib, p.threads);

  nlohmann::json out = {{"options",
                         {{"watchers", o.watchers}, {"users", o.users}, {"max_watchers", o.max_watchers},
                          {"channels", o.channels}, {"rate", o.rate}, {"threads", o.threads}, {"seconds", o.seconds},
                          {"list_share", o.list_share}, {"finished_jobs", o.finished_jobs},
                          {"hold_seconds", o.hold_seconds}}},
                        {"calls", nlohmann::json::array()},
                        {"watch",
                         {{"opened", watch.opened}, {"ends", watch.ends}, {"open", watch.open.ToJson()},
                          {"all_open_seconds", watch.all_open_seconds}, {"events", watch.events},
                          {"held_server_cpu", watch.held_server_cpu}}},
                        {"server", nlohmann::json::array()}};
  for (const CallRun& r : runs) out["calls"].push_back(ToJson(r));
  for (const auto& [when, p] : watch.server) {
    out["server"].push_back({{"when", when}, {"rss_mib", p.rss_mib}, {"threads", p.threads}});
  }
  const int stopped = svc->StopServer(SIGTERM);
  std::printf("server stopped with SIGTERM: exit %d\n", stopped);
  return WriteJsonFile(o.json, out) ? 0 : 1;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
