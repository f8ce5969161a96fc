// A real acs-server (and acs-workers) on loopback for the service benchmarks: a fresh data
// dir with tokens, the processes started and killed by the benchmark, the client API calls
// it makes, and what /proc says about a process. The processes are those of
// tests/server/process_util.h; their logs stay in the data dir's parent.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/flags.h"
#include "core/status.h"
#include "proto/acs.grpc.pb.h"
#include "proto/grpc_status.h"
#include "tests/server/process_util.h"

namespace acs::bench {

namespace v1 = acs::v1;

struct ServiceOptions {
  std::string bin_dir = ACS_BINARY_DIR;   // holds server/acs-server and devices/acs-worker
  std::string dir;                        // working dir; empty: a fresh one under /tmp
  bool keep = false;                      // keep the working dir (logs, store) at the end
  std::vector<std::string> server_flags;  // added to every server start
  std::vector<std::string> worker_flags;  // added to every worker start
};

// The small search job the benchmarks submit.
struct JobSpec {
  std::string model = ACS_SOURCE_DIR "/data/zoo/resnet20.pt";  // made by `acs-zoo train`
  std::vector<int64_t> input = {1, 1, 28, 28};
  std::string dataset = "fashion-mnist";  // a name in the server's --datasets-dir
  std::string budget = "flops";
  double ratio = 0.5;
  std::string agent = "random";
  int episodes = 2;
  int top_k = 2;  // policies verified on a worker (when one is registered)
};

// The request for `spec` with the uploaded model; `episodes` > 0 replaces spec.episodes.
v1::SubmitJobRequest JobRequestOf(const JobSpec& spec, const std::string& model_sha256, int episodes = 0);

// One working dir with an initialized data dir; the processes it started are killed when
// it is destroyed. Not thread-safe, except the client calls (any thread).
class LocalService {
 public:
  // Errors: Unavailable when the dir cannot be made or `acs-server --init` fails.
  static StatusOr<std::unique_ptr<LocalService>> Create(const ServiceOptions& options);
  ~LocalService();

  // A new token (`acs-server token`); role user, worker or admin.
  StatusOr<std::string> Token(const std::string& name, const std::string& role);
  // Starts the server with the options' and `extra` flags and waits until it answers;
  // Unavailable after 60 s (its log then says why).
  Status StartServer(const std::vector<std::string>& extra = {});
  // Sends sig and waits; the exit code or -signal (-1 when none runs).
  int StopServer(int sig);
  pid_t server_pid() const { return server_ ? server_->pid() : -1; }
  // A worker named `name` with the worker token, timing flags `extra`.
  void StartWorker(const std::string& name, const std::vector<std::string>& extra = {});
  int StopWorker(const std::string& name, int sig);
  pid_t worker_pid(const std::string& name) const;
  // True once n workers show online.
  bool WaitForWorkers(int n, double seconds);

  // Client calls, each with `token` and a deadline of `seconds`; they wait for a server
  // that is starting. Errors: the server's status.
  std::unique_ptr<v1::Acs::Stub> NewStub(int channel_id = 0) const;  // its own connection
  void Prepare(grpc::ClientContext* ctx, const std::string& token, double seconds = 60) const;
  // Streams bytes in 1 MiB chunks; after_chunk(bytes sent so far) runs after each write.
  StatusOr<v1::UploadReply> Upload(const std::string& bytes, const std::string& token,
                                   const std::function<void(int64_t)>& after_chunk = nullptr);
  StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request, const std::string& token);
  StatusOr<v1::Job> Get(const std::string& id, const std::string& token);
  // Every event of the job until it ends; an error when it has not after `seconds`.
  StatusOr<std::vector<v1::JobEvent>> Watch(const std::string& id, const std::string& token, double seconds);
  // The sha256 of the artifact's bytes as downloaded.
  StatusOr<std::string> DownloadSha256(const std::string& id, const std::string& name, const std::string& token);
  // Polls the job until pred holds; Unavailable naming its last state otherwise.
  StatusOr<v1::Job> WaitForJob(const std::string& id, const std::string& token,
                               const std::function<bool(const v1::Job&)>& pred, double seconds);

  // SQLite's own check of the store (PRAGMA integrity_check) through a connection of its
  // own: "ok", or what it found.
  std::string StoreIntegrity() const;

  // The files in the blob store's temporary dir (DATA/tmp) and their MiB.
  std::pair<int, double> TempFiles() const;

  const std::string& address() const { return address_; }
  const std::string& data_dir() const { return data_; }
  const std::string& admin_token() const { return admin_; }
  const std::string& dir() const { return dir_; }

 private:
  LocalService() = default;
  // A unary call: `rpc` is e.g. &v1::Acs::Stub::GetJob.
  template <typename Reply, typename Req, typename Rpc>
  StatusOr<Reply> Unary(Rpc rpc, const Req& req, const std::string& token, double seconds) {
    grpc::ClientContext ctx;
    Prepare(&ctx, token, seconds);
    Reply reply;
    const grpc::Status s = ((*stub_).*rpc)(&ctx, req, &reply);
    if (!s.ok()) return FromGrpc(s);
    return reply;
  }
  ServiceOptions options_;
  std::string dir_, data_, address_, admin_, worker_token_;
  bool remove_dir_ = false;
  int server_starts_ = 0;
  std::unique_ptr<test_process::Process> server_;
  std::map<std::string, std::unique_ptr<test_process::Process>> workers_;
  std::unique_ptr<v1::Acs::Stub> stub_;
};

// What /proc says about a process now; zeros when it is gone.
struct ProcStats {
  double rss_mib = 0;
  int threads = 0;
  double cpu_seconds = 0;  // user + system since it started
};
ProcStats ReadProcStats(pid_t pid);

// Latencies in milliseconds, summarized.
struct LatencySummary {
  int64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
  nlohmann::json ToJson() const;
};
LatencySummary Summarize(std::vector<double> ms);

// The gRPC code's name ("OK", "UNAVAILABLE", "RESOURCE_EXHAUSTED", ...).
std::string CodeName(const grpc::Status& s);

// The bytes of a file; NotFound naming it when it cannot be read.
StatusOr<std::string> ReadFileBytes(const std::string& path);

// --help or -h among the arguments: prints usage and returns true.
bool WantsHelp(int argc, char** argv, const char* usage);

// A service benchmark's flags: `valued` ones of its own, and --model, --bin, --dir, --json
// PATH and --keep, which set job->model, service and *json. InvalidArgument for an unknown
// flag or a positional argument.
StatusOr<Flags> ParseBenchFlags(int argc, char** argv, std::set<std::string> valued, JobSpec* job,
                                ServiceOptions* service, std::string* json);
// Sets *out from the flag when it is given; InvalidArgument when it is not an integer.
Status SetInt(const Flags& flags, const std::string& name, int* out);
Status SetDouble(const Flags& flags, const std::string& name, double* out);

}  // namespace acs::bench
