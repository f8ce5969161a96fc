// bench_http_load: the HTTP/JSON API of a real acs-server on loopback under client load, as
// bench_load does for gRPC (the same jobs, load_calls.h): (1) GET /api/v1/jobs/{id} and
// GET /api/v1/jobs at a target rate from a few client threads, (2) Server-Sent Event streams
// of GET /api/v1/jobs/{id}/events held open while one job searches, and a few more opened
// past the server's cap, (3) the calls of (1) again while the streams are held. The calls
// run on keep-alive connections and on a new connection per call. Prints the
// tables and writes JSON. A benchmark, not a test: no thresholds; figures in
// docs/dashboard.md.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "core/flags.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/load_calls.h"
#include "experiments/bench/service_harness.h"

namespace acs::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct HttpLoadOptions : LoadSetup {
  int watchers = 200;          // event streams held open at once
  int users = 13;              // users they are spread over (13 x 16 >= 200: the server's
                               // default --max-watchers of 16 per user holds)
  int max_watchers = 0;        // the server's --max-watchers; 0: its default
  int max_streams = 0;         // the server's --http-max-streams; 0: --watchers
  int over = 8;                // streams opened past the cap while the others are held
  double hold_seconds = 10;    // the streams held with nothing else running, before the calls
  RateOptions calls;           // the get-job / list-jobs calls
  std::string json = "data/bench/http_load.json";
};

const char kUsage[] =
    "usage: bench_http_load [--watchers 200] [--users 13] [--max-watchers N] [--max-streams N]\n"
    "                       [--over 8] [--hold-seconds 10] [--rate 1000] [--threads 4] [--seconds 10]\n"
    "                       [--list-share 0.5] [--finished-jobs 4] [--model data/zoo/resnet20.pt]\n"
    "                       [--bin BUILD_DIR] [--dir DIR] [--keep] [--json data/bench/http_load.json]\n"
    "Starts acs-server on loopback with --http-listen (a fresh data dir), submits jobs, then measures\n"
    "GET job / list-jobs calls at --rate (alone, then with --watchers event streams open) and the\n"
    "streams themselves. The server runs with --http-max-streams N (default: --watchers) and\n"
    "--max-watchers N when given (default: its own, 16 per user); --over streams go past the cap.\n";

httplib::Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// Thread `index`'s calls: a keep-alive connection of its own (cpp-httplib reconnects when
// the server closes it), or with `keep_alive` false a new connection for each call. A get
// call's answer must name its job.
CallerFactory HttpCalls(int port, const std::vector<Target>& targets, bool keep_alive) {
  return [port, &targets, keep_alive](int) -> CallFn {
    auto client = std::make_shared<httplib::Client>("127.0.0.1", port);
    client->set_keep_alive(keep_alive);
    client->set_read_timeout(5, 0);
    (void)client->Get("/api/v1/jobs", Bearer(targets[0].token));
    return [client, &targets](bool list, std::mt19937& rng) -> std::string {
      const Target& t = targets[std::uniform_int_distribution<size_t>(0, targets.size() - 1)(rng)];
      const httplib::Result r = client->Get(list ? "/api/v1/jobs" : "/api/v1/jobs/" + t.job, Bearer(t.token));
      if (!r) return "client: " + httplib::to_string(r.error());
      if (r->status != 200) return "HTTP " + std::to_string(r->status);
      return list || r->body.find(t.job) != std::string::npos ? "" : "not the job asked for";
    };
  };
}

// One event stream, read on its own thread (its own connection) until the benchmark stops
// its client. Its events are the messages with an id (not heartbeats).
struct Stream : HeldStream {
  std::unique_ptr<httplib::Client> client;
  int status = 0;  // the answer's HTTP status; 0: none came
};

void StreamLoop(Stream* s, const std::string& path, const std::string& token, const std::atomic<bool>* stopping) {
  const auto t0 = Clock::now();
  std::string buffer;
  bool error_event = false;
  const httplib::Result r = s->client->Get(
      path, Bearer(token),
      [&](const httplib::Response& res) {
        s->status = res.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (s->status != 200) return true;  // an error's body
        buffer.append(data, n);
        for (size_t end; (end = buffer.find("\n\n")) != std::string::npos; buffer.erase(0, end + 2)) {
          if (buffer.compare(0, 4, "id: ") == 0) {
            if (s->events == 0) s->open_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            ++s->events;
          }
          error_event = error_event || buffer.compare(0, 12, "event: error") == 0;
        }
        return true;
      });
  if (s->status != 0 && s->status != 200) {
    s->end = "refused: HTTP " + std::to_string(s->status);
  } else if (*stopping) {
    s->end = "closed by the benchmark";
  } else {
    s->end = error_event ? "an error event" : r ? "ended by the server" : "client: " + httplib::to_string(r.error());
  }
  s->done = true;
}

struct StreamRun : StreamStats {
  int over_refused = 0;                      // of the streams past the cap
  std::map<std::string, std::string> gauge;  // when -> the server's acs_http_event_streams
};

// The server's acs_http_event_streams gauge (GET /metrics), or what went wrong.
std::string StreamsGauge(int port, const std::string& admin) {
  httplib::Client client("127.0.0.1", port);
  const httplib::Result r = client.Get("/metrics", Bearer(admin));
  if (!r || r->status != 200) return "no answer";
  const std::string key = "\nacs_http_event_streams ";
  const size_t at = r->body.find(key);
  return at == std::string::npos ? "absent"
                                 : r->body.substr(at + key.size(), r->body.find('\n', at + 1) - at - key.size());
}

std::unique_ptr<Stream> OpenStream(int port, const Target& t, const std::atomic<bool>* stopping) {
  auto s = std::make_unique<Stream>();
  s->client = std::make_unique<httplib::Client>("127.0.0.1", port);
  s->client->set_read_timeout(3600, 0);  // quiet jobs send a heartbeat every 15 s only
  s->client->set_connection_timeout(10, 0);
  s->thread = std::thread(StreamLoop, s.get(), "/api/v1/jobs/" + t.job + "/events?after=0", t.token, stopping);
  return s;
}

// Holds the streams while `during` runs; fills `run`.
void HoldStreams(LocalService& svc, int port, const std::vector<Target>& watched, const HttpLoadOptions& o,
                 StreamRun* run, const std::function<void()>& during) {
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<Stream>> streams, over;
  const auto t0 = Clock::now();
  for (int i = 0; i < o.watchers; ++i) streams.push_back(OpenStream(port, watched[i % watched.size()], &stopping));
  std::vector<HeldStream*> held;
  for (auto& s : streams) held.push_back(s.get());
  AwaitOpen(held, t0, run);
  run->gauge["all open"] = StreamsGauge(port, svc.admin_token());
  // Past the cap: the users with the fewest streams first, so that the HTTP cap, not the
  // per-user one, is what they meet.
  for (int i = o.watchers; i < o.watchers + o.over; ++i) {
    over.push_back(OpenStream(port, watched[i % watched.size()], &stopping));
  }
  test_process::WaitFor(
      [&] { return std::all_of(over.begin(), over.end(), [](const auto& s) { return s->done.load(); }); }, 10);
  for (auto& s : over) s->client->stop();  // one the server took (none should be) ends here
  for (auto& s : over) s->thread.join();
  for (auto& s : over) {
    run->over_refused += s->status != 200;
    ++run->ends["past the cap: " + s->end];
  }
  HoldAndClose(
      svc.server_pid(), "streams", o.hold_seconds, held, during,
      [&] {
        run->gauge["after the calls"] = StreamsGauge(port, svc.admin_token());
        stopping = true;
        for (auto& s : streams) s->client->stop();
      },
      run);
  run->gauge["2 s after closing them"] = StreamsGauge(port, svc.admin_token());
  // A quiet stream notices its peer gone at its next heartbeat (every 15 s by default).
  std::this_thread::sleep_for(std::chrono::seconds(15));
  run->gauge["17 s after closing them"] = StreamsGauge(port, svc.admin_token());
}

StatusOr<HttpLoadOptions> ParseOptions(int argc, char** argv) {
  HttpLoadOptions o;
  std::set<std::string> valued = {"watchers", "users",        "max-watchers", "max-streams",
                                  "over",     "hold-seconds", "finished-jobs"};
  valued.insert(kRateFlags.begin(), kRateFlags.end());
  ACS_ASSIGN_OR_RETURN(Flags f, ParseBenchFlags(argc, argv, valued, &o.job, &o.service, &o.json));
  const std::pair<const char*, int*> ints[] = {
      {"watchers", &o.watchers},       {"users", &o.users}, {"max-watchers", &o.max_watchers},
      {"max-streams", &o.max_streams}, {"over", &o.over},   {"finished-jobs", &o.finished_jobs}};
  for (const auto& [name, value] : ints) ACS_RETURN_IF_ERROR(SetInt(f, name, value));
  ACS_RETURN_IF_ERROR(SetDouble(f, "hold-seconds", &o.hold_seconds));
  ACS_RETURN_IF_ERROR(SetRateOptions(f, &o.calls));
  if (o.watchers < 1 || o.users < 1 || o.over < 0 || o.finished_jobs < 0 || o.max_streams < 0) {
    return Status::InvalidArgument("--watchers, --users >= 1; --over, --finished-jobs, --max-streams >= 0");
  }
  if (o.max_streams == 0) o.max_streams = o.watchers;
  return o;
}

void PrintStreams(const StreamRun& run, const HttpLoadOptions& o) {
  std::printf(
      "\nSSE streams of GET /api/v1/jobs/{id}/events: %d over %d users, one connection each (server "
      "--http-max-streams %d, --max-watchers %s); the job of user0 searches, the others are queued; %d "
      "more opened past the cap\n",
      o.watchers, o.users, o.max_streams, o.max_watchers > 0 ? std::to_string(o.max_watchers).c_str() : "default 16",
      o.over);
  std::printf("%8s %8s %9s %9s %9s %9s %11s %8s %12s %15s\n", "opened", "refused", "open p50", "open p90", "open p99",
              "open max", "all open s", "events", "past cap: 503", "CPU while held");
  int64_t refused = 0;
  for (const auto& [end, n] : run.ends) refused += end.rfind("refused", 0) == 0 ? n : 0;
  std::printf("%8d %8lld %9.2f %9.2f %9.2f %9.2f %11.2f %8lld %9d of %d %14d%%\n", run.opened,
              static_cast<long long>(refused), run.open.p50, run.open.p90, run.open.p99, run.open.max,
              run.all_open_seconds, static_cast<long long>(run.events), run.over_refused, o.over,
              static_cast<int>(100 * run.held_server_cpu + 0.5));
  for (const auto& [end, n] : run.ends) std::printf("  ended: %-40s %lld\n", end.c_str(), static_cast<long long>(n));
  for (const auto& [when, value] : run.gauge) {
    std::printf("  server's acs_http_event_streams %s: %s\n", when.c_str(), value.c_str());
  }
}

int Main(int argc, char** argv) {
  if (WantsHelp(argc, argv, kUsage)) return 0;
  const HttpLoadOptions o = OrDie(ParseOptions(argc, argv), "bench_http_load");
  const int port = test_process::FreePort();
  std::vector<std::string> flags = {"--http-listen", "127.0.0.1:" + std::to_string(port), "--http-max-streams",
                                    std::to_string(o.max_streams)};
  if (o.max_watchers > 0) flags.insert(flags.end(), {"--max-watchers", std::to_string(o.max_watchers)});
  std::vector<std::string> tokens;
  std::unique_ptr<LocalService> svc =
      OrDie(StartLoadService(o.service, o.users, flags, &tokens), "bench_http_load: starting the server");
  httplib::Client probe("127.0.0.1", port);
  if (!test_process::WaitFor([&] { return static_cast<bool>(probe.Get("/healthz")); }, 30)) {
    OrDie(Status::Unavailable("no answer on /healthz (see " + svc->dir() + ")"), "bench_http_load");
  }
  std::printf("HTTP at 127.0.0.1:%d\n", port);
  const LoadJobs jobs = OrDie(SubmitLoadJobs(*svc, o.job, tokens, o.finished_jobs, o.long_episodes),
                              "bench_http_load: the jobs (the model is made by acs-zoo train)");
  // Each phase twice: on keep-alive connections (as a browser calls) and on a new
  // connection per call.
  const std::pair<std::string, CallerFactory> kinds[] = {{"keep-alive", HttpCalls(port, jobs.targets, true)},
                                                         {"new conn.", HttpCalls(port, jobs.targets, false)}};
  std::vector<CallRun> runs;
  auto calls = [&](const std::string& phase) {
    for (const auto& [kind, caller] : kinds)
      runs.push_back(RunCalls(o.calls, svc->server_pid(), phase + ", " + kind, caller));
  };
  calls("no streams");
  StreamRun streams;
  streams.server.push_back({"before the streams", ReadProcStats(svc->server_pid())});
  HoldStreams(*svc, port, jobs.watched, o, &streams, [&] { calls(std::to_string(o.watchers) + " streams"); });
  PrintCalls(runs, o.calls, "GET job", "list jobs");
  PrintStreams(streams, o);
  PrintServerStats(streams.server);

  nlohmann::json out = {{"options",
                         {{"watchers", o.watchers},
                          {"users", o.users},
                          {"max_watchers", o.max_watchers},
                          {"http_max_streams", o.max_streams},
                          {"over", o.over},
                          {"rate", o.calls.rate},
                          {"threads", o.calls.threads},
                          {"seconds", o.calls.seconds},
                          {"list_share", o.calls.list_share},
                          {"finished_jobs", o.finished_jobs},
                          {"hold_seconds", o.hold_seconds}}},
                        {"streams", StreamStatsJson(streams)},
                        {"server", ServerStatsJson(streams.server)}};
  out["streams"]["over_refused"] = streams.over_refused;
  out["streams"]["server_gauge"] = streams.gauge;
  return FinishLoadRun(*svc, runs, out, o.json);
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
