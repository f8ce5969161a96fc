// bench_faults: what a real acs-server loses when it or a worker is SIGKILLed at a bad
// moment. Once a first job has ended (its artifacts and the uploads are the reference), it
// kills the server during an upload, on writes to the SQLite WAL while a job searches and
// checkpoints, and while a job's policies are measured, then a worker while it measures.
// After each it restarts what it killed on the same data dir, follows the interrupted work
// to its end and checks the store (SQLite integrity; every earlier job, artifact and blob
// by sha256). Prints fault | what happened after restart | lost, and writes JSON. A
// benchmark, not a test: no thresholds; figures in docs/robustness.md.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <sstream>

#include "core/flags.h"
#include "core/sha256.h"
#include "experiments/bench/bench_output.h"
#include "experiments/bench/service_harness.h"
#include "server/server_store.h"

namespace acs::bench {
namespace {

namespace fs = std::filesystem;

struct FaultOptions {
  int upload_mb = 64;            // size of the upload killed half-way (random bytes)
  int search_episodes = 40;      // episodes of the job whose search is killed
  int checkpoint_kills = 5;      // server kills during that search, each on a write to the WAL
  double measure_seconds = 1;    // worker --min-seconds: a verification task takes a few times this
  int lease_seconds = 3;         // server --lease-seconds: how soon a dead worker's task returns
  double job_seconds = 600;      // longest wait for a job to end
  JobSpec job;
  ServiceOptions service;
  std::string json = "data/bench/service_faults.json";
};

const char kUsage[] =
    "usage: bench_faults [--upload-mb 64] [--search-episodes 40] [--checkpoint-kills 5]\n"
    "                    [--measure-seconds 1] [--lease-seconds 3] [--model data/zoo/resnet20.pt]\n"
    "                    [--bin BUILD_DIR] [--dir DIR] [--keep] [--json data/bench/service_faults.json]\n"
    "SIGKILLs a real acs-server (loopback, fresh data dir) during an upload, a search's\n"
    "checkpoint writes and a verification, and a worker while it measures; restarts them and\n"
    "reports what each fault lost.\n";

// What every fault must leave as it was.
struct Reference {
  std::vector<v1::Job> jobs;   // ended jobs as they ended (their artifacts included)
  std::set<std::string> blobs; // sha256 of uploads and artifacts
};

struct Row {
  std::string fault, happened, lost;
};

// A progress line on stderr.
void Progress(const std::string& line) { std::fprintf(stderr, "bench_faults: %s\n", line.c_str()); }

// The items joined by "; ".
std::string JoinLines(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : "; ") + s;
  return out;
}

// Every earlier job, artifact and blob still as it was; the problems found (empty: none).
std::vector<std::string> CheckReference(LocalService& svc, const Reference& ref, const std::string& token) {
  std::vector<std::string> problems;
  for (const v1::Job& was : ref.jobs) {
    StatusOr<v1::Job> now = svc.Get(was.id(), token);
    if (!now.ok() || now->state() != was.state() || now->artifacts_size() != was.artifacts_size()) {
      problems.push_back("job " + was.id() + " changed: " +
                         (now.ok() ? v1::JobState_Name(now->state()) : now.status().ToString()));
      continue;
    }
    for (const v1::Artifact& a : was.artifacts()) {
      StatusOr<std::string> sha = svc.DownloadSha256(was.id(), a.name(), token);
      if (!sha.ok() || *sha != a.sha256()) {
        problems.push_back(was.id() + "/" + a.name() + ": " + (sha.ok() ? "other bytes" : sha.status().ToString()));
      }
    }
  }
  for (const std::string& sha : ref.blobs) {
    const fs::path blob = fs::path(svc.data_dir()) / "blobs" / sha.substr(0, 2) / sha;
    if (Sha256OfFile(blob.string()) != sha) problems.push_back("blob " + sha.substr(0, 12) + " missing or damaged");
  }
  const std::string integrity = svc.StoreIntegrity();
  if (integrity != "ok") problems.push_back("integrity_check: " + integrity);
  return problems;
}

std::string Intact(const Reference& ref, const std::vector<std::string>& problems) {
  if (!problems.empty()) return JoinLines(problems);
  size_t artifacts = 0;
  for (const v1::Job& j : ref.jobs) artifacts += j.artifacts_size();
  return "store integrity ok, " + std::to_string(ref.jobs.size()) + " earlier jobs, " + std::to_string(artifacts) +
         " artifacts and " + std::to_string(ref.blobs.size()) + " blobs intact (sha256)";
}

void Remember(const v1::Job& job, Reference* ref) {
  ref->jobs.push_back(job);
  for (const v1::Artifact& a : job.artifacts()) ref->blobs.insert(a.sha256());
}

// Blocks until the n-th write to DIR/acs.db-wal from now; false after `seconds`.
bool WaitForWalWrites(const std::string& data_dir, int n, double seconds) {
  const int fd = inotify_init1(IN_CLOEXEC);
  if (fd < 0) return false;
  if (inotify_add_watch(fd, data_dir.c_str(), IN_MODIFY) < 0) {
    close(fd);
    return false;
  }
  int seen = 0;
  char buffer[4096] __attribute__((aligned(__alignof__(inotify_event))));
  pollfd p{fd, POLLIN, 0};
  while (seen < n && poll(&p, 1, static_cast<int>(seconds * 1000)) > 0) {
    const ssize_t len = read(fd, buffer, sizeof buffer);
    for (ssize_t at = 0; at < len;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buffer + at);
      if (e->len > 0 && std::strcmp(e->name, "acs.db-wal") == 0) ++seen;
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  close(fd);
  return seen >= n;
}

// The job's events until pred holds (the stream is then closed); all of them when the job
// ends first or `seconds` pass.
std::vector<v1::JobEvent> EventsUntil(LocalService& svc, const std::string& id, const std::string& token,
                                      const std::function<bool(const std::vector<v1::JobEvent>&)>& pred,
                                      double seconds) {
  std::unique_ptr<v1::Acs::Stub> stub = svc.NewStub(50);
  grpc::ClientContext ctx;
  svc.Prepare(&ctx, token, seconds);
  v1::WatchJobRequest req;
  req.set_id(id);
  auto reader = stub->WatchJob(&ctx, req);
  std::vector<v1::JobEvent> events;
  for (v1::JobEvent e; !pred(events) && reader->Read(&e);) events.push_back(e);
  ctx.TryCancel();
  reader->Finish();
  return events;
}

bool Resumed(const v1::JobEvent& e) { return e.message().rfind("resumed after episode ", 0) == 0; }

// "SUCCEEDED with 30 episodes, 2 policies verified (error)".
std::string Ended(const v1::Job& job, int verified) {
  std::string out = v1::JobState_Name(job.state()) + " with " + std::to_string(job.episodes_done()) + " episodes";
  if (verified > 0) out += ", " + std::to_string(verified) + " policies verified";
  if (!job.error().empty()) out += " (" + job.error() + ")";
  return out;
}

// The tasks of a job as "state after N attempts" items.
std::string Tasks(LocalService& svc, const std::string& job_id) {
  StatusOr<std::unique_ptr<server::ServerStore>> store =
      server::ServerStore::Open((fs::path(svc.data_dir()) / "acs.db").string());
  if (!store.ok()) return store.status().ToString();
  StatusOr<std::vector<server::TaskRecord>> tasks = (*store)->TasksOfJob(job_id);
  if (!tasks.ok()) return tasks.status().ToString();
  std::vector<std::string> items;
  for (const server::TaskRecord& t : *tasks) {
    items.push_back(t.state + " after " + std::to_string(t.attempts) + " lease" + (t.attempts == 1 ? "" : "s") +
                    (t.error.empty() ? "" : " (" + t.error + ")"));
  }
  return std::to_string(tasks->size()) + " measure tasks: " + JoinLines(items);
}

class FaultRun {
 public:
  FaultRun(const FaultOptions& o, LocalService* svc, std::string user) : o_(o), svc_(*svc), user_(std::move(user)) {}

  // A first job run to its end: the reference every fault is checked against.
  Status Baseline(const std::string& model_bytes);
  Row KillDuringUpload();
  Row KillDuringCheckpoints();
  Row KillDuringVerification();
  Row KillWorkerMidMeasurement();
  nlohmann::json details = nlohmann::json::object();

 private:
  // Restarts the server; "the server restarted and answered in S s", or the error.
  std::string Restart();
  // Waits until the job verifies and the worker's model-task child runs (3 minutes at
  // most); its pid or -1.
  pid_t WaitForMeasurement(const std::string& job_id);
  StatusOr<v1::Job> Finish(const std::string& job_id) {
    return svc_.WaitForJob(job_id, user_, [](const v1::Job& j) { return j.state() >= v1::SUCCEEDED; }, o_.job_seconds);
  }
  Row Outcome(const std::string& fault, std::vector<std::string> happened, const std::string& job_id);

  const FaultOptions& o_;
  LocalService& svc_;
  std::string user_, model_sha_;
  Reference ref_;
  std::chrono::steady_clock::time_point killed_;  // the last kill
};

std::string FaultRun::Restart() {
  const auto t0 = std::chrono::steady_clock::now();
  const Status s = svc_.StartServer();
  if (!s.ok()) return s.ToString();
  char line[80];
  std::snprintf(line, sizeof line, "the server restarted and answered in %.1f s",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return line;
}

Status FaultRun::Baseline(const std::string& model_bytes) {
  ACS_ASSIGN_OR_RETURN(v1::UploadReply up, svc_.Upload(model_bytes, user_));
  model_sha_ = up.sha256();
  ref_.blobs.insert(model_sha_);
  ACS_ASSIGN_OR_RETURN(v1::Job job, svc_.Submit(JobRequestOf(o_.job, model_sha_), user_));
  ACS_ASSIGN_OR_RETURN(job, Finish(job.id()));
  if (job.state() != v1::SUCCEEDED) return Status::Internal("the first job ended " + Ended(job, 0));
  Remember(job, &ref_);
  return Status::Ok();
}

// Appends the interrupted job's outcome and the reference check to `happened`.
Row FaultRun::Outcome(const std::string& fault, std::vector<std::string> happened, const std::string& job_id) {
  std::string lost;
  if (!job_id.empty()) {
    StatusOr<v1::Job> job = Finish(job_id);
    const std::vector<v1::JobEvent> events = EventsUntil(
        svc_, job_id, user_, [](const std::vector<v1::JobEvent>&) { return false; }, 60);
    const int verified = static_cast<int>(std::count_if(events.begin(), events.end(), [](const v1::JobEvent& e) {
      return e.kind() == v1::JobEvent::VERIFIED && e.message().find("could not") == std::string::npos;
    }));
    char after[48];
    std::snprintf(after, sizeof after, " %.1f s after the kill",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_).count());
    happened.push_back(job.ok() ? "the job ended " + Ended(*job, verified) + after : job.status().ToString());
    if (job.ok()) {
      if (job->state() == v1::SUCCEEDED) Remember(*job, &ref_);
      if (job->state() != v1::SUCCEEDED) lost = "the job (" + v1::JobState_Name(job->state()) + ")";
    }
    happened.push_back(Tasks(svc_, job_id));
  }
  const std::vector<std::string> problems = CheckReference(svc_, ref_, user_);
  happened.push_back(Intact(ref_, problems));
  if (!problems.empty()) lost += (lost.empty() ? "" : "; ") + JoinLines(problems);
  return {fault, JoinLines(happened), lost.empty() ? "nothing" : lost};
}

Row FaultRun::KillDuringUpload() {
  std::string bytes(static_cast<size_t>(o_.upload_mb) << 20, '\0');
  std::mt19937_64 rng(17);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&bytes[i], &v, 8);
  }
  const std::string sha = Sha256Hex(bytes);
  int64_t killed_at = -1;
  Progress("upload of " + std::to_string(o_.upload_mb) + " MiB, the server killed at half");
  StatusOr<v1::UploadReply> up = svc_.Upload(bytes, user_, [&](int64_t sent) {
    if (killed_at < 0 && sent * 2 >= static_cast<int64_t>(bytes.size())) {
      killed_at = sent;
      svc_.StopServer(SIGKILL);
      killed_ = std::chrono::steady_clock::now();
    }
  });
  std::vector<std::string> happened;
  happened.push_back("the client got " + (up.ok() ? std::string("OK (!)") : up.status().ToString().substr(0, 40)) +
                     " after sending " + std::to_string(killed_at >> 20) + " of " + std::to_string(o_.upload_mb) +
                     " MiB");
  const auto [temp_files, temp_mib] = svc_.TempFiles();
  happened.push_back(Restart());
  const bool stored = fs::exists(fs::path(svc_.data_dir()) / "blobs" / sha.substr(0, 2) / sha);
  happened.push_back(stored ? "a blob under the upload's sha256 exists (!)" : "nothing stored under its sha256");
  const auto [temp_files_after, temp_mib_after] = svc_.TempFiles();
  char temp[200];
  std::snprintf(temp, sizeof temp,
                "%d partial temp file(s) (%.1f MiB) left in DATA/tmp by the kill, %d (%.1f MiB) after the restart",
                temp_files, temp_mib, temp_files_after, temp_mib_after);
  happened.push_back(temp);
  StatusOr<v1::UploadReply> again = svc_.Upload(bytes, user_);
  happened.push_back(!again.ok()                  ? "uploading it again: " + again.status().ToString()
                     : again->deduplicated()      ? "uploading it again: deduplicated (!)"
                                                  : "uploading it again stored it whole");
  if (again.ok() && again->sha256() == sha) ref_.blobs.insert(sha);
  details["upload"] = {{"killed_at_bytes", killed_at}, {"temp_files", temp_files}, {"temp_mib", temp_mib},
                       {"stored_partial", stored}};
  const std::string fault = "server SIGKILL mid-upload (" + std::to_string(o_.upload_mb) + " MiB, killed at half)";
  Row row = Outcome(fault, happened, "");
  if (stored || (again.ok() && again->deduplicated())) row.lost = "an incomplete upload was stored as complete";
  return row;
}

Row FaultRun::KillDuringCheckpoints() {
  // No worker meanwhile: the runner's episode events and checkpoints are then the only
  // writes to the store.
  svc_.StopWorker("w1", SIGTERM);
  const std::string fault = "server SIGKILL on writes of a searching job's checkpoints (" +
                            std::to_string(o_.checkpoint_kills) + " kills, a checkpoint every episode)";
  StatusOr<v1::Job> job = svc_.Submit(JobRequestOf(o_.job, model_sha_, o_.search_episodes), user_);
  if (!job.ok()) return {fault, job.status().ToString(), "could not run"};
  std::vector<std::string> happened, resumes;
  int rerun = 0, last_done = 0;
  nlohmann::json kills = nlohmann::json::array();
  for (int k = 0; k < o_.checkpoint_kills; ++k) {
    const int target = last_done + 3;
    StatusOr<v1::Job> now = svc_.WaitForJob(
        job->id(), user_, [&](const v1::Job& j) { return j.episodes_done() >= target || j.state() >= v1::VERIFYING; },
        120);
    if (!now.ok() || now->state() != v1::SEARCHING) {
      Progress("the search ended before kill " + std::to_string(k + 1));
      break;
    }
    // The job's runner writes the events and checkpoints; it would die with the server a
    // few milliseconds later (PR_SET_PDEATHSIG), so both are killed at once.
    const std::vector<pid_t> runners = test_process::ChildrenOf(svc_.server_pid());
    const int nth = 1 + (5 * k) % 13;  // which write from here: 1, 6, 11, 3, 8, ...
    const bool write_seen = WaitForWalWrites(svc_.data_dir(), nth, 30);
    ::kill(svc_.server_pid(), SIGKILL);
    for (pid_t runner : runners) ::kill(runner, SIGKILL);
    svc_.StopServer(SIGKILL);
    killed_ = std::chrono::steady_clock::now();
    Progress("kill " + std::to_string(k + 1) + " after episode " + std::to_string(now->episodes_done()) +
             ", on WAL write " + std::to_string(nth) + (write_seen ? "" : " (none seen in 30 s)"));
    if (const std::string restarted = Restart(); restarted.rfind("the server restarted", 0) != 0) {
      happened.push_back(restarted);
      break;
    }
    // The k+1-th resume: the episodes with an event before it were done before the kill.
    std::vector<v1::JobEvent> events = EventsUntil(
        svc_, job->id(), user_,
        [&](const std::vector<v1::JobEvent>& es) {
          return std::count_if(es.begin(), es.end(), Resumed) > k;
        },
        120);
    int done = 0, resumed_at = -1, seen_resumes = 0;
    for (const v1::JobEvent& e : events) {
      if (e.kind() == v1::JobEvent::EPISODE) done = std::max(done, e.episode() + 1);
      if (Resumed(e) && ++seen_resumes == k + 1) resumed_at = std::atoi(e.message().c_str() + 22);
    }
    if (resumed_at < 0) {
      happened.push_back("kill " + std::to_string(k + 1) + ": no resume after the restart");
      break;
    }
    rerun += std::max(0, done - resumed_at);
    last_done = resumed_at;
    resumes.push_back(std::to_string(resumed_at) + "/" + std::to_string(done));
    kills.push_back({{"wal_write", nth}, {"write_seen", write_seen}, {"episodes_with_events", done},
                     {"resumed_after", resumed_at}});
  }
  happened.insert(happened.begin(), "resumed after episode (of episodes done) " + JoinLines(resumes) + ": " +
                                        std::to_string(rerun) + " episode(s) ran again");
  details["checkpoint"] = {{"kills", kills}, {"episodes_rerun", rerun}};
  svc_.StartWorker("w1");
  Progress("the worker restarted; following job " + job->id() + " to its end");
  Row row = Outcome(fault, happened, job->id());
  if (row.lost == "nothing" && rerun > 0) row.lost = "nothing (" + std::to_string(rerun) + " episode(s) re-run)";
  return row;
}

pid_t FaultRun::WaitForMeasurement(const std::string& job_id) {
  pid_t child = -1;
  test_process::WaitFor(
      [&] {
        const std::vector<pid_t> children = test_process::ChildrenOf(svc_.worker_pid("w1"));
        if (children.empty()) return false;
        StatusOr<v1::Job> job = svc_.Get(job_id, user_);
        child = children.front();
        return job.ok() && job->state() == v1::VERIFYING;
      },
      180);
  return child;
}

Row FaultRun::KillDuringVerification() {
  const std::string fault = "server SIGKILL while a worker measures the job's policies";
  StatusOr<v1::Job> job = svc_.Submit(JobRequestOf(o_.job, model_sha_), user_);
  if (!job.ok()) return {fault, job.status().ToString(), "could not run"};
  if (WaitForMeasurement(job->id()) < 0) return {fault, "the verification never started", "could not run"};
  Progress("the server killed while job " + job->id() + " verifies");
  svc_.StopServer(SIGKILL);
  killed_ = std::chrono::steady_clock::now();
  std::vector<std::string> happened = {Restart()};
  return Outcome(fault, happened, job->id());
}

Row FaultRun::KillWorkerMidMeasurement() {
  const std::string fault = "worker SIGKILL mid-measurement";
  StatusOr<v1::Job> job = svc_.Submit(JobRequestOf(o_.job, model_sha_), user_);
  if (!job.ok()) return {fault, job.status().ToString(), "could not run"};
  const pid_t child = WaitForMeasurement(job->id());
  if (child < 0) return {fault, "the verification never started", "could not run"};
  Progress("the worker killed while it measures for job " + job->id());
  svc_.StopWorker("w1", SIGKILL);
  killed_ = std::chrono::steady_clock::now();
  std::vector<std::string> happened;
  const bool orphan = !test_process::WaitFor([&] { return !fs::exists("/proc/" + std::to_string(child)); }, 5);
  happened.push_back(orphan ? "its model-task process outlived it (!)" : "its model-task process died with it");
  svc_.StartWorker("w1");
  happened.push_back("the worker restarted under the same name");
  return Outcome(fault, happened, job->id());
}

StatusOr<FaultOptions> ParseOptions(int argc, char** argv) {
  FaultOptions o;
  ACS_ASSIGN_OR_RETURN(Flags f, ParseBenchFlags(argc, argv,
                                                {"upload-mb", "search-episodes", "checkpoint-kills", "measure-seconds",
                                                 "lease-seconds"},
                                                &o.job, &o.service, &o.json));
  const std::pair<const char*, int*> ints[] = {{"upload-mb", &o.upload_mb},
                                               {"search-episodes", &o.search_episodes},
                                               {"checkpoint-kills", &o.checkpoint_kills},
                                               {"lease-seconds", &o.lease_seconds}};
  for (const auto& [name, value] : ints) ACS_RETURN_IF_ERROR(SetInt(f, name, value));
  ACS_RETURN_IF_ERROR(SetDouble(f, "measure-seconds", &o.measure_seconds));
  if (o.upload_mb < 2 || o.checkpoint_kills < 1 || o.search_episodes < 4 * o.checkpoint_kills + 4 ||
      o.lease_seconds < 1 || o.measure_seconds <= 0) {
    return Status::InvalidArgument("--upload-mb >= 2, --checkpoint-kills >= 1, --search-episodes >= 4 x kills + 4, "
                                   "--lease-seconds >= 1, --measure-seconds > 0");
  }
  o.service.server_flags = {"--lease-seconds", std::to_string(o.lease_seconds), "--offline-seconds",
                            std::to_string(o.lease_seconds + 1), "--checkpoint-seconds", "0", "--max-upload-mb",
                            std::to_string(o.upload_mb + 1)};
  o.service.worker_flags = {"--min-seconds", std::to_string(o.measure_seconds), "--min-repeats", "5"};
  return o;
}

// The words of text in lines of at most width characters (a longer word stands alone).
std::vector<std::string> Wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines(1);
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    if (!lines.back().empty() && lines.back().size() + 1 + w.size() > width) lines.emplace_back();
    lines.back() += (lines.back().empty() ? "" : " ") + w;
  }
  return lines;
}

// Prints the rows as a table with its first two columns wrapped.
void PrintRows(const std::vector<Row>& rows) {
  constexpr int kFault = 36, kHappened = 70;
  const std::string rule(kFault + kHappened + 24, '-');
  std::printf("\n%-*s | %-*s | %s\n%s\n", kFault, "fault", kHappened, "what happened after restart", "lost",
              rule.c_str());
  for (const Row& r : rows) {
    const std::vector<std::string> fault = Wrap(r.fault, kFault), happened = Wrap(r.happened, kHappened);
    for (size_t i = 0; i < std::max(fault.size(), happened.size()); ++i) {
      std::printf("%-*s | %-*s | %s\n", kFault, i < fault.size() ? fault[i].c_str() : "", kHappened,
                  i < happened.size() ? happened[i].c_str() : "", i == 0 ? r.lost.c_str() : "");
    }
    std::printf("%s\n", rule.c_str());
  }
}

int Main(int argc, char** argv) {
  if (WantsHelp(argc, argv, kUsage)) return 0;
  const FaultOptions o = OrDie(ParseOptions(argc, argv), "bench_faults");
  const std::string model = OrDie(ReadFileBytes(o.job.model), "bench_faults: the job's model (acs-zoo train makes it)");
  std::unique_ptr<LocalService> svc = OrDie(LocalService::Create(o.service), "bench_faults");
  const std::string user = OrDie(svc->Token("alice", "user"), "token");
  OrDie(svc->StartServer(), "bench_faults: starting the server");
  svc->StartWorker("w1");
  if (!svc->WaitForWorkers(1, 60)) {
    OrDie(Status::Unavailable("see " + svc->dir() + "/w1.log"), "bench_faults: the worker did not register");
  }
  std::printf("acs-server at %s, data in %s\n", svc->address().c_str(), svc->data_dir().c_str());
  FaultRun run(o, svc.get(), user);
  Progress("a first job to its end (the reference)");
  OrDie(run.Baseline(model), "bench_faults: the first job");
  std::vector<Row> rows;
  rows.push_back(run.KillDuringUpload());
  rows.push_back(run.KillDuringCheckpoints());
  rows.push_back(run.KillDuringVerification());
  rows.push_back(run.KillWorkerMidMeasurement());
  PrintRows(rows);
  nlohmann::json out = {{"options",
                         {{"upload_mb", o.upload_mb}, {"search_episodes", o.search_episodes},
                          {"checkpoint_kills", o.checkpoint_kills}, {"measure_seconds", o.measure_seconds},
                          {"lease_seconds", o.lease_seconds}}},
                        {"details", run.details},
                        {"faults", nlohmann::json::array()}};
  for (const Row& r : rows) out["faults"].push_back({{"fault", r.fault}, {"happened", r.happened}, {"lost", r.lost}});
  std::printf("server stopped with SIGTERM: exit %d\n", svc->StopServer(SIGTERM));
  return WriteJsonFile(o.json, out) ? 0 : 1;
}

}  // namespace
}  // namespace acs::bench

int main(int argc, char** argv) { return acs::bench::Main(argc, argv); }
