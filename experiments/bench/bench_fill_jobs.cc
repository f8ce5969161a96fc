// bench_fill_jobs: adds N ended jobs to an initialized server data dir (`acs-server --init`)
// through the server's own store (ServerStore::CreateJob), for the dashboard's render
// benchmark (experiments/web/bench_jobs_render.mjs): a server started on the dir then lists
// them as it would real ones. Every job is ended (succeeded, failed, cancelled or
// budget_not_met), so the server runs none of them; requests and progress are varied and
// deterministic (--seed). Prints the jobs per owner and state, and writes them as JSON
// (--json) for the benchmark's checks. Not for a server's real data dir.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "core/flags.h"
#include "core/sha256.h"
#include "experiments/bench/bench_output.h"
#include "server/job_records.h"
#include "server/server_store.h"

namespace acs::bench {
namespace {

const char kUsage[] =
    "usage: bench_fill_jobs --data-dir DIR [--jobs 10000] [--seed 1] [--json FILE]\n"
    "Adds ended jobs to DIR/acs.db (made by `acs-server --init --data-dir DIR`) through the server's\n"
    "store, owned by alice, bob, carol and dave; prints and writes (--json) their counts.\n";

const char* const kOwners[] = {"alice", "bob", "carol", "dave"};
const char* const kAgents[] = {"amc", "random", "evo"};
const char* const kStates[] = {server::kJobSucceeded, server::kJobSucceeded, server::kJobSucceeded,
                               server::kJobFailed,    server::kJobCancelled, server::kJobBudgetNotMet};

std::string Sha256Of(const std::string& text) {
  Sha256 digest;
  digest.Update(text);
  return digest.HexDigest();
}

// Job i: its request and progress drawn from `rng`.
server::JobRecord JobOf(int i, std::mt19937& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  server::JobRecord job;
  job.owner = kOwners[i % 4];
  job.state = kStates[rng() % 6];
  server::JobRequest r;
  r.model_sha256 = Sha256Of("model " + std::to_string(rng() % 40));
  r.input_shape = {1, 3, 32, 32};
  r.dataset_name = "cifar10";
  r.budget_kind = unit(rng) < 0.5 ? "latency" : "flops";
  r.budget_ratio = 0.3 + 0.1 * static_cast<int>(rng() % 5);
  r.agent = kAgents[rng() % 3];
  r.episodes = 50 + 50 * static_cast<int>(rng() % 4);
  r.seed = i;
  job.request_json = r.ToJson().dump();
  server::JobProgress p;
  const bool ended_early = job.state == server::kJobFailed || job.state == server::kJobCancelled;
  p.episodes_done = ended_early ? static_cast<int>(rng() % r.episodes) : r.episodes;
  p.dense_accuracy = 0.9 + 0.05 * unit(rng);
  p.best_accuracy = p.episodes_done > 0 ? p.dense_accuracy - 0.1 * unit(rng) : 0;
  p.best_cost_ratio = r.budget_ratio * (0.9 + 0.1 * unit(rng));
  if (!ended_early) {
    p.exported_accuracy = p.best_accuracy - 0.01 * unit(rng);
    p.dense_measured_us = 800 + 400 * unit(rng);
    p.best_measured_us = p.dense_measured_us * (r.budget_ratio + 0.2 * unit(rng));
    p.dense_predicted_us = p.dense_measured_us * (0.9 + 0.2 * unit(rng));
    p.best_predicted_us = p.best_measured_us * (0.9 + 0.2 * unit(rng));
    for (const char* name : {"policy.json", "report.json", "compressed.pt"}) {
      p.artifacts.push_back({name, Sha256Of(std::to_string(i) + name), 1000 + static_cast<int64_t>(rng() % 100000)});
    }
  }
  job.progress_json = p.ToJson().dump();
  if (job.state == server::kJobFailed) job.error = "the job runner ended abnormally (benchmark data)";
  return job;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return std::printf("%s", kUsage) < 0;
  }
  const Flags f = OrDie(ParseFlags(argc, argv, 1, {"data-dir", "jobs", "seed", "json"}, {}), "bench_fill_jobs");
  const std::string dir = f.Get("data-dir");
  const int64_t n = OrDie(f.GetInt("jobs", 10000), "bench_fill_jobs: --jobs");
  const int64_t seed = OrDie(f.GetInt("seed", 1), "bench_fill_jobs: --seed");
  const std::string db = (std::filesystem::path(dir) / "acs.db").string();
  if (dir.empty() || !std::filesystem::is_regular_file(db)) {
    OrDie(Status::InvalidArgument("--data-dir must name a dir made by `acs-server --init`"), "bench_fill_jobs");
  }
  std::unique_ptr<server::ServerStore> store = OrDie(server::ServerStore::Open(db), "bench_fill_jobs: the store");
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::map<std::string, int64_t> owners, states;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    const server::JobRecord job = OrDie(store->CreateJob(JobOf(static_cast<int>(i), rng)), "bench_fill_jobs: a job");
    ++owners[job.owner];
    ++states[job.state];
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%lld jobs added to %s in %.1f s\n", static_cast<long long>(n), db.c_str(), seconds);
  for (const auto& [owner, count] : owners) std::printf("  owner %-14s %lld\n", owner.c_str(), (long long)count);
  for (const auto& [state, count] : states) std::printf("  state %-14s %lld\n", state.c_str(), (long long)count);
  const nlohmann::json out = {{"jobs", n}, {"owners", owners}, {"states", states}, {"seconds", seconds}};
  return f.Has("json") && !WriteJsonFile(f.Get("json"), out) ? 1 : 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
