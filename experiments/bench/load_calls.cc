#include "experiments/bench/load_calls.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "experiments/bench/bench_output.h"

namespace acs::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The calls of one client thread.
struct ThreadCalls {
  std::vector<double> get_ms, list_ms;
  std::map<std::string, int64_t> errors;
  Clock::time_point last;
};

void CallLoop(const RateOptions& o, const CallerFactory& caller, int index, Clock::time_point start, ThreadCalls* out) {
  const CallFn call = caller(index);  // untimed: the connection is made before the start
  std::mt19937 rng(static_cast<uint32_t>(index + 1));
  std::bernoulli_distribution list(o.list_share);
  const double interval = o.threads / o.rate;
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  out->last = start;
  for (int64_t k = 0;; ++k) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>((k + double(index) / o.threads) * interval));
    if (at >= end || Clock::now() >= end) break;  // bounded in time: a late call is not made
    std::this_thread::sleep_until(at);
    const bool is_list = list(rng);
    const auto sent = Clock::now();
    const std::string error = call(is_list, rng);
    out->last = Clock::now();
    if (!error.empty()) {
      ++out->errors[error];
      continue;
    }
    (is_list ? out->list_ms : out->get_ms)
        .push_back(std::chrono::duration<double, std::milli>(out->last - sent).count());
  }
}

}  // namespace

StatusOr<std::unique_ptr<LocalService>> StartLoadService(const ServiceOptions& options, int users,
                                                         const std::vector<std::string>& flags,
                                                         std::vector<std::string>* tokens) {
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<LocalService> svc, LocalService::Create(options));
  for (int u = 0; u < users; ++u) {
    ACS_ASSIGN_OR_RETURN(std::string token, svc->Token("user" + std::to_string(u), "user"));
    tokens->push_back(token);
  }
  ACS_RETURN_IF_ERROR(svc->StartServer(flags));
  std::printf("acs-server at %s, data in %s\n", svc->address().c_str(), svc->data_dir().c_str());
  return svc;
}

int FinishLoadRun(LocalService& svc, const std::vector<CallRun>& runs, nlohmann::json out, const std::string& path) {
  out["calls"] = nlohmann::json::array();
  for (const CallRun& r : runs) out["calls"].push_back(CallRunJson(r, "get_job", "list_jobs"));
  const int stopped = svc.StopServer(SIGTERM);
  std::printf("server stopped with SIGTERM: exit %d\n", stopped);
  return WriteJsonFile(path, out) ? 0 : 1;
}

StatusOr<LoadJobs> SubmitLoadJobs(LocalService& svc, const JobSpec& spec, const std::vector<std::string>& tokens,
                                  int finished, int long_episodes) {
  ACS_ASSIGN_OR_RETURN(std::string model, ReadFileBytes(spec.model));
  ACS_ASSIGN_OR_RETURN(v1::UploadReply up, svc.Upload(model, tokens[0]));
  LoadJobs out;
  for (int i = 0; i < finished; ++i) {
    ACS_ASSIGN_OR_RETURN(v1::Job job, svc.Submit(JobRequestOf(spec, up.sha256()), tokens[0]));
    out.targets.push_back({job.id(), tokens[0]});
  }
  for (const Target& t : out.targets) {
    ACS_RETURN_IF_ERROR(svc.WaitForJob(
                               t.job, t.token, [](const v1::Job& j) { return j.state() >= v1::SUCCEEDED; }, 600)
                            .status());
  }
  for (const std::string& token : tokens) {
    // A user's job names only a blob that user stored: each uploads the model (stored once).
    ACS_RETURN_IF_ERROR(svc.Upload(model, token).status());
    ACS_ASSIGN_OR_RETURN(v1::Job job, svc.Submit(JobRequestOf(spec, up.sha256(), long_episodes), token));
    out.watched.push_back({job.id(), token});
    out.targets.push_back(out.watched.back());
  }
  ACS_RETURN_IF_ERROR(svc.WaitForJob(
                             out.watched[0].job, tokens[0], [](const v1::Job& j) { return j.episodes_done() > 0; }, 300)
                          .status());
  std::printf("jobs: %d succeeded, %zu long ones (1 searching, %zu queued)\n", finished, tokens.size(),
              tokens.size() - 1);
  return out;
}

CallRun RunCalls(const RateOptions& o, pid_t server, const std::string& phase, const CallerFactory& caller) {
  CallRun run;
  run.phase = phase;
  const ProcStats before = ReadProcStats(server);
  std::vector<ThreadCalls> calls(o.threads);
  std::vector<std::thread> threads;
  const auto start = Clock::now() + std::chrono::milliseconds(500);  // every thread connected by then
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back(CallLoop, std::cref(o), std::cref(caller), i, start, &calls[i]);
  }
  for (std::thread& t : threads) t.join();
  run.server = ReadProcStats(server);
  std::vector<double> get, list;
  Clock::time_point last = start;
  for (const ThreadCalls& c : calls) {
    get.insert(get.end(), c.get_ms.begin(), c.get_ms.end());
    list.insert(list.end(), c.list_ms.begin(), c.list_ms.end());
    for (const auto& [name, n] : c.errors) run.errors[name] += n;
    last = std::max(last, c.last);
  }
  run.seconds = std::chrono::duration<double>(last - start).count();
  std::vector<double> all = get;
  all.insert(all.end(), list.begin(), list.end());
  run.get = Summarize(get);
  run.list = Summarize(list);
  run.all = Summarize(all);
  run.calls = run.all.count;
  for (const auto& [name, n] : run.errors) run.calls += n;
  run.server_cpu = (run.server.cpu_seconds - before.cpu_seconds) / std::max(1e-9, run.seconds);
  return run;
}

void PrintCalls(const std::vector<CallRun>& runs, const RateOptions& o, const char* get, const char* list) {
  std::printf("\n%s / %s at a target of %.0f calls/s (%.0f%% %s), %d client threads, %.0f s a run\n", get, list, o.rate,
              100 * o.list_share, list, o.threads, o.seconds);
  std::printf("%-26s %-10s %7s %10s %8s %8s %8s %8s %7s %10s\n", "phase", "call", "calls", "achieved/s", "p50 ms",
              "p90 ms", "p99 ms", "max ms", "errors", "server CPU");
  for (const CallRun& r : runs) {
    int64_t errors = 0;
    for (const auto& [name, n] : r.errors) errors += n;
    const std::pair<const char*, const LatencySummary*> rows[] = {{get, &r.get}, {list, &r.list}, {"both", &r.all}};
    for (const auto& [name, s] : rows) {
      const bool both = s == &r.all;
      std::printf("%-26s %-10s %7lld %10.1f %8.2f %8.2f %8.2f %8.2f %7s %10s\n", r.phase.c_str(), name,
                  static_cast<long long>(both ? r.calls : s->count), s->count / std::max(1e-9, r.seconds), s->p50,
                  s->p90, s->p99, s->max, both ? std::to_string(errors).c_str() : "",
                  both ? (std::to_string(static_cast<int>(100 * r.server_cpu + 0.5)) + "%").c_str() : "");
    }
    for (const auto& [name, n] : r.errors) std::printf("%-26s   error %s: %lld\n", "", name.c_str(), (long long)n);
  }
}

nlohmann::json CallRunJson(const CallRun& r, const char* get, const char* list) {
  return {{"phase", r.phase},
          {"seconds", r.seconds},
          {"calls", r.calls},
          {"errors", r.errors},
          {"achieved_per_s", r.calls / std::max(1e-9, r.seconds)},
          {get, r.get.ToJson()},
          {list, r.list.ToJson()},
          {"all", r.all.ToJson()},
          {"server_cpu", r.server_cpu},
          {"server_rss_mib", r.server.rss_mib},
          {"server_threads", r.server.threads}};
}

void AwaitOpen(const std::vector<HeldStream*>& streams, Clock::time_point t0, StreamStats* run) {
  test_process::WaitFor(
      [&] {
        return std::all_of(streams.begin(), streams.end(), [](const auto* s) { return s->events > 0 || s->done; });
      },
      60);
  run->all_open_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

void HoldAndClose(pid_t server, const std::string& what, double hold_seconds, const std::vector<HeldStream*>& streams,
                  const std::function<void()>& during, const std::function<void()>& close, StreamStats* run) {
  run->server.push_back({what + " open", ReadProcStats(server)});
  const ProcStats before = run->server.back().second;
  std::this_thread::sleep_for(std::chrono::duration<double>(hold_seconds));
  run->server.push_back({"after holding them", ReadProcStats(server)});
  run->held_server_cpu = (run->server.back().second.cpu_seconds - before.cpu_seconds) / hold_seconds;
  during();
  run->server.push_back({"after the calls", ReadProcStats(server)});
  close();
  std::vector<double> open;
  for (HeldStream* s : streams) {
    s->thread.join();
    run->opened += s->open_ms >= 0;
    if (s->open_ms >= 0) open.push_back(s->open_ms);
    run->events += s->events;
    ++run->ends[s->end];
  }
  run->open = Summarize(open);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  run->server.push_back({"2 s after closing them", ReadProcStats(server)});
}

nlohmann::json StreamStatsJson(const StreamStats& run) {
  return {{"opened", run.opened},      {"ends", run.ends},
          {"open", run.open.ToJson()}, {"all_open_seconds", run.all_open_seconds},
          {"events", run.events},      {"held_server_cpu", run.held_server_cpu}};
}

Status SetRateOptions(const Flags& flags, RateOptions* o) {
  ACS_RETURN_IF_ERROR(SetInt(flags, "threads", &o->threads));
  const std::pair<const char*, double*> doubles[] = {
      {"rate", &o->rate}, {"seconds", &o->seconds}, {"list-share", &o->list_share}};
  for (const auto& [name, value] : doubles) ACS_RETURN_IF_ERROR(SetDouble(flags, name, value));
  if (o->threads < 1 || o->rate <= 0 || o->seconds <= 0 || o->list_share < 0 || o->list_share > 1) {
    return Status::InvalidArgument("--threads >= 1, --rate and --seconds > 0, --list-share in [0, 1]");
  }
  return Status::Ok();
}

void PrintServerStats(const std::vector<std::pair<std::string, ProcStats>>& stats) {
  std::printf("\n%-26s %8s %8s\n", "server process", "RSS MiB", "threads");
  for (const auto& [when, p] : stats) std::printf("%-26s %8.1f %8d\n", when.c_str(), p.rss_mib, p.threads);
}

nlohmann::json ServerStatsJson(const std::vector<std::pair<std::string, ProcStats>>& stats) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [when, p] : stats) out.push_back({{"when", when}, {"rss_mib", p.rss_mib}, {"threads", p.threads}});
  return out;
}

}  // namespace acs::bench
