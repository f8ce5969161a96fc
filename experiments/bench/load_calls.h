// What the load benchmarks (bench_load over gRPC, bench_http_load over HTTP) share: the
// jobs they set up on a LocalService, and get-job / list-jobs calls at a target rate from a
// few client threads, open loop (each call at its scheduled time, or at once when the thread
// is behind; none after the run's end), one connection per thread; the latencies per kind of
// call, printed and as JSON; and the streams of job events they hold open meanwhile.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "experiments/bench/service_harness.h"

namespace acs::bench {

// A job and the token of its owner.
struct Target {
  std::string job, token;
};

// What both load benchmarks' options hold: the jobs (SubmitLoadJobs) and the service.
struct LoadSetup {
  int finished_jobs = 4;       // small jobs run to the end first (their artifacts in the store)
  int long_episodes = 100000;  // episodes of the users' jobs, so that none ends during the run
  JobSpec job;
  ServiceOptions service;
};

// The jobs of a load run: `finished` small jobs of tokens[0] run to their end (their
// artifacts in the store), then one job of `long_episodes` per token, so that none ends
// during the run: the first searches, the others stay queued (the server runs one job at a
// time by default). Errors: the service's, or Unavailable when a job does not get there.
struct LoadJobs {
  std::vector<Target> targets;  // every job
  std::vector<Target> watched;  // the long jobs, one per token
};
StatusOr<LoadJobs> SubmitLoadJobs(LocalService& svc, const JobSpec& spec, const std::vector<std::string>& tokens,
                                  int finished, int long_episodes);

struct RateOptions {
  double rate = 1000;       // target calls per second over all threads
  int threads = 4;          // client threads, one connection each
  double seconds = 10;      // length of a run
  double list_share = 0.5;  // share of list calls (the rest are get calls)
};

// Makes one call on a thread's connection: a list call when `list`, else a get call of a
// target chosen with `rng`. Returns "" when it succeeded, else the error's name
// ("UNAVAILABLE", "HTTP 503", ...).
using CallFn = std::function<std::string(bool list, std::mt19937& rng)>;
// Called on client thread `index` before the run starts: opens its connection (and makes an
// untimed call, so that the connection exists at the start).
using CallerFactory = std::function<CallFn(int index)>;

// One run of calls at the target rate.
struct CallRun {
  std::string phase;
  double seconds = 0;                     // from the scheduled start to the last reply
  int64_t calls = 0;                      // answered and failed
  std::map<std::string, int64_t> errors;  // name -> count
  LatencySummary get, list, all;          // of the calls that succeeded
  double server_cpu = 0;                  // server CPU seconds per wall second
  ProcStats server;                       // at the end of the run
};
CallRun RunCalls(const RateOptions& o, pid_t server, const std::string& phase, const CallerFactory& caller);

// The runs as a table; `get` and `list` name the calls (e.g. "GetJob", "ListJobs").
void PrintCalls(const std::vector<CallRun>& runs, const RateOptions& o, const char* get, const char* list);
// The run as JSON; its get / list summaries under the keys `get` and `list`.
nlohmann::json CallRunJson(const CallRun& r, const char* get, const char* list);

// A LocalService with tokens of users "user0".."user<users - 1>" (*tokens) and its server
// started with `flags`; says where. Errors: the service's.
StatusOr<std::unique_ptr<LocalService>> StartLoadService(const ServiceOptions& options, int users,
                                                         const std::vector<std::string>& flags,
                                                         std::vector<std::string>* tokens);
// The end of a load run: `runs` added to `out` (as "calls", with the get / list summaries
// under "get_job" / "list_jobs"), the server stopped with SIGTERM, `out` written to `path`.
// The exit code for main.
int FinishLoadRun(LocalService& svc, const std::vector<CallRun>& runs, nlohmann::json out, const std::string& path);

// A stream (a watch of a job's events) held by a load benchmark, read on its own thread.
struct HeldStream {
  std::thread thread;
  std::atomic<int64_t> events{0};  // events received
  std::atomic<bool> done{false};   // the thread has ended
  double open_ms = -1;             // from the request to the first event; -1: none came
  std::string end;                 // how it ended, set before done
};

// What a load run records of the streams it holds.
struct StreamStats {
  int opened = 0;                       // streams that had an event
  std::map<std::string, int64_t> ends;  // how they ended -> streams
  LatencySummary open;
  double all_open_seconds = 0;                            // from the first request to the last stream's first event
  int64_t events = 0;                                     // over all streams
  double held_server_cpu = 0;                             // server CPU seconds per wall second while only held
  std::vector<std::pair<std::string, ProcStats>> server;  // snapshots
};

// Waits (60 s at most) until each stream had an event or ended; all_open_seconds from t0.
void AwaitOpen(const std::vector<HeldStream*>& streams, std::chrono::steady_clock::time_point t0, StreamStats* run);
// Holds the streams: a snapshot of the server as `what` open, `hold_seconds` with nothing
// else running, `during`, then `close` (which must make every stream's thread end); joins
// and counts them, and a last snapshot 2 s later.
void HoldAndClose(pid_t server, const std::string& what, double hold_seconds, const std::vector<HeldStream*>& streams,
                  const std::function<void()>& during, const std::function<void()>& close, StreamStats* run);

// The stats as JSON (without the server snapshots: ServerStatsJson).
nlohmann::json StreamStatsJson(const StreamStats& run);

// Rate flags shared by the load benchmarks: --rate, --threads, --seconds, --list-share.
inline const std::set<std::string> kRateFlags = {"rate", "threads", "seconds", "list-share"};
// Sets o from them; InvalidArgument for a value out of range.
Status SetRateOptions(const Flags& flags, RateOptions* o);

// The server's RSS and threads at the named moments, as a table and JSON.
void PrintServerStats(const std::vector<std::pair<std::string, ProcStats>>& stats);
nlohmann::json ServerStatsJson(const std::vector<std::pair<std::string, ProcStats>>& stats);

}  // namespace acs::bench
