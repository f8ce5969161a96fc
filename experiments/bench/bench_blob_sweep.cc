// bench_blob_sweep: what one blob collection sweep (server/blob_gc.h) costs on a store of N
// ended jobs, and how long it keeps other store calls waiting. Each size gets a fresh SQLite
// store filled through the store's own API: jobs with a latency job's request and progress
// (artifacts, verifications, verified and probe policies, a kept result for one in five),
// their blobs stored over a month ago, plus --garbage old blobs nothing names (put back
// before every sweep). A thread calls GetJob every millisecond during each sweep; its
// slowest call is how long the sweep held the store's lock at most. The sweep as before
// (every job parsed in the forgetting transaction) and as now (parsed outside the lock
// first) alternate, --rounds times. Prints a table; --json writes every sweep.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/flags.h"
#include "core/sha256.h"
#include "core/sqlite_db.h"
#include "experiments/bench/bench_output.h"
#include "server/blob_gc.h"
#include "server/job_records.h"
#include "server/server_store.h"

namespace acs::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char kUsage[] =
    "usage: bench_blob_sweep [--jobs 1000,10000] [--garbage 100] [--rounds 3] [--json FILE]\n"
    "Times blob collection sweeps on fresh stores of that many jobs, the sweep as before and as now\n"
    "alternately, with the slowest concurrent GetJob call of each.\n";

constexpr int64_t kGrace = 7 * 24 * 3600;
constexpr int64_t kMonth = 30 * 24 * 3600;

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// A blob file of `text` under the store's dir, last stored a month ago, and its row for
// `owner`; its digest.
std::string OldBlob(server::ServerStore& store, const server::BlobStore& blobs, const std::string& owner,
                    const std::string& text) {
  const std::string sha = Sha256Hex(text);
  const fs::path path = fs::path(blobs.blob_dir()) / sha.substr(0, 2) / sha;
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  const timespec t{static_cast<time_t>(NowSeconds() - kMonth), 0};
  const timespec times[2] = {t, t};
  utimensat(AT_FDCWD, path.c_str(), times, 0);
  OrDie(store.RecordStoredBlob(owner, sha, static_cast<int64_t>(text.size())), "a blob's row");
  return sha;
}

// A policy of a 20-layer model as a job's progress keeps it (JSON text).
std::string PolicyJson(std::mt19937& rng) {
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < 20; ++l) {
    layers.push_back({{"layer", "layer" + std::to_string(l / 6 + 1) + "." + std::to_string(l % 3) + ".conv"},
                      {"pattern", (rng() % 2) != 0u ? "2:4" : "block"},
                      {"block", 4 << (rng() % 3)},
                      {"precision", (rng() % 2) != 0u ? "int8" : "fp32"},
                      {"sparsity", 0.05 * static_cast<double>(rng() % 18)}});
  }
  return nlohmann::json{{"layers", layers}}.dump();
}

// Job i's progress: a verified latency job's result, its blobs stored for `owner`.
server::JobProgress ProgressOf(int i, server::ServerStore& store, const server::BlobStore& blobs,
                               const std::string& owner, std::mt19937& rng) {
  server::JobProgress p;
  p.episodes_done = 100;
  p.best_accuracy = 0.9;
  p.device_class = "x86_64-avx2-8c";
  for (const char* name : {"policy.json", "compressed.pt", "compressed.acs.pt", "report.json"}) {
    p.artifacts.push_back({name, OldBlob(store, blobs, owner, std::to_string(i) + name), 1000});
  }
  for (int rank = 0; rank < 3; ++rank) {
    p.verify_policies.push_back(PolicyJson(rng));
    for (int run = 0; run < 3; ++run) {
      server::Verification v;
      v.rank = rank;
      v.run = run;
      v.policy_hash = Sha256Hex(p.verify_policies.back()).substr(0, 16);
      v.task_id = "task-" + std::to_string(i * 10 + rank * 3 + run);
      v.measured_us = 500 + static_cast<double>(rng() % 500);
      p.verifications.push_back(v);
    }
  }
  for (int probe = 0; probe < 4; ++probe) p.probe_policies.push_back({PolicyJson(rng), 0.5 + 0.1 * probe});
  return p;
}

// Fills a fresh store with n ended jobs (see the header).
void Fill(server::ServerStore& store, const server::BlobStore& blobs, int n) {
  std::mt19937 rng(static_cast<uint32_t>(n));
  std::vector<std::string> models, datasets;
  for (int m = 0; m < std::max(1, n / 10); ++m)
    models.push_back(OldBlob(store, blobs, "user0", "model " + std::to_string(m)));
  for (int d = 0; d < std::max(1, n / 50); ++d)
    datasets.push_back(OldBlob(store, blobs, "user0", "data " + std::to_string(d)));
  for (int i = 0; i < n; ++i) {
    const std::string owner = "user" + std::to_string(i % 50);
    server::JobRequest r;
    r.model_sha256 = models[static_cast<size_t>(i) % models.size()];
    r.dataset_sha256 = datasets[static_cast<size_t>(i) % datasets.size()];
    r.input_shape = {1, 3, 32, 32};
    r.budget_kind = "latency";
    r.agent = "amc";
    r.seed = static_cast<uint64_t>(i);
    server::JobProgress p = ProgressOf(i, store, blobs, owner, rng);
    if (i % 5 == 0) {  // an earlier round's result kept while a later one searched
      const server::JobProgress kept = ProgressOf(-i - 1, store, blobs, owner, rng);
      p.kept_result = kept.ToJson().dump();
    }
    server::JobRecord job;
    job.owner = owner;
    job.state = server::kJobSucceeded;
    job.request_json = r.ToJson().dump();
    job.progress_json = p.ToJson().dump();
    job.checkpoint = std::string(8192, 'c');  // an agent's snapshot (real ones are larger)
    OrDie(store.CreateJob(job).status(), "a job");
  }
}

// Every blob's rows as if stored a month ago too (RecordStoredBlob dates them now).
void AgeRows(const std::string& db_path) {
  std::unique_ptr<Db> db = OrDie(Db::Open(db_path), "the store's file");
  OrDie(db->Exec("UPDATE uploads SET created = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days')"), "aging rows");
}

struct Sweep {
  std::string mode;  // "before", "now"
  double sweep_ms = 0, max_get_ms = 0, median_get_ms = 0;
  int64_t gets = 0, forgotten = 0;
};

// One sweep with GetJob called every millisecond meanwhile.
Sweep TimedSweep(server::ServerStore& store, const server::BlobStore& blobs, const std::string& job_id, bool now) {
  std::atomic<bool> stop{false};
  std::vector<double> gets;
  std::thread reader([&] {
    while (!stop) {
      const auto t0 = Clock::now();
      OrDie(store.GetJob(job_id).status(), "GetJob");
      gets.push_back(MsSince(t0));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const auto t0 = Clock::now();
  const server::BlobGcResult r = OrDie(server::CollectBlobs(store, blobs, kGrace, NowSeconds(), now), "the sweep");
  Sweep s;
  s.sweep_ms = MsSince(t0);
  stop = true;
  reader.join();
  s.mode = now ? "now" : "before";
  s.forgotten = r.forgotten;
  s.gets = static_cast<int64_t>(gets.size());
  if (!gets.empty()) {
    std::sort(gets.begin(), gets.end());
    s.max_get_ms = gets.back();
    s.median_get_ms = gets[gets.size() / 2];
  }
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return std::printf("%s", kUsage) < 0;
  }
  const Flags f = OrDie(ParseFlags(argc, argv, 1, {"jobs", "garbage", "rounds", "json"}, {}), "bench_blob_sweep");
  std::vector<int> sizes;
  for (const std::string& n : SplitList(f.Get("jobs", "1000,10000"))) sizes.push_back(std::stoi(n));
  const int64_t garbage = OrDie(f.GetInt("garbage", 100), "--garbage");
  const int64_t rounds = OrDie(f.GetInt("rounds", 3), "--rounds");
  nlohmann::json out = nlohmann::json::array();
  std::printf("%8s %7s %10s %14s %14s %8s %10s\n", "jobs", "sweep", "sweep ms", "max GetJob ms", "med GetJob ms",
              "GetJobs", "forgotten");
  for (int n : sizes) {
    const fs::path dir = fs::temp_directory_path() / ("acs_bench_blob_sweep_" + std::to_string(n));
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
      auto store = OrDie(server::ServerStore::Open((dir / "server.db").string()), "the store");
      auto blobs = OrDie(server::BlobStore::Open(dir.string()), "the blob store");
      const auto fill0 = Clock::now();
      Fill(*store, *blobs, n);
      const double fill_ms = MsSince(fill0);
      const std::string job_id = OrDie(store->JobsInStates({server::kJobSucceeded}), "the jobs").front().id;
      std::vector<Sweep> sweeps;
      for (int64_t round = 0; round < rounds; ++round) {
        for (int k = 0; k < 2; ++k) {
          const bool now = (k == 0) == (round % 2 == 1);  // before, now; then now, before; ...
          for (int64_t g = 0; g < garbage; ++g) OldBlob(*store, *blobs, "user1", "garbage " + std::to_string(g));
          AgeRows((dir / "server.db").string());
          sweeps.push_back(TimedSweep(*store, *blobs, job_id, now));
        }
      }
      for (const char* mode : {"before", "now"}) {
        std::vector<double> ms, max_get, med_get;
        int64_t gets = 0, forgotten = 0;
        for (const Sweep& s : sweeps) {
          if (s.mode != mode) continue;
          ms.push_back(s.sweep_ms);
          max_get.push_back(s.max_get_ms);
          med_get.push_back(s.median_get_ms);
          gets += s.gets;
          forgotten = s.forgotten;
        }
        std::printf("%8d %7s %10.1f %14.1f %14.2f %8lld %10lld\n", n, mode, Median(ms), Median(max_get),
                    Median(med_get), static_cast<long long>(gets), static_cast<long long>(forgotten));
      }
      nlohmann::json runs = nlohmann::json::array();
      for (const Sweep& s : sweeps) {
        runs.push_back({{"mode", s.mode},
                        {"sweep_ms", s.sweep_ms},
                        {"max_get_job_ms", s.max_get_ms},
                        {"median_get_job_ms", s.median_get_ms},
                        {"get_job_calls", s.gets},
                        {"forgotten", s.forgotten}});
      }
      out.push_back({{"jobs", n}, {"garbage", garbage}, {"fill_ms", fill_ms}, {"sweeps", runs}});
    }
    fs::remove_all(dir);
  }
  return f.Has("json") && !WriteJsonFile(f.Get("json"), out) ? 1 : 0;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
