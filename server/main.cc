// acs-server: the gRPC service (client API and device farm) over an SQLite store and a
// blob directory under --data-dir.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/flags.h"
#include "server/acs_service.h"
#include "server/blob_store.h"
#include "server/farm.h"
#include "server/farm_service.h"
#include "server/http_gateway.h"
#include "server/http_static.h"
#include "server/job_service.h"
#include "server/jobs.h"
#include "server/measurement_campaign.h"
#include "server/server_parts.h"
#include "server/server_main.h"

namespace acs::server {

int g_signal_pipe[2] = {-1, -1};

// A test hook, not in the help and refused in the config file: the server passes it to
// its job runners (FlagsAsArgs), which then log what their confinement allows before
// their job (ProbeConfinement). Read-only: its only effect is log lines.
const char* const kTestProbeRunners = "test-probe-runner-confinement";

int Fail(const Status& s) {
  std::cerr << "acs-server: " << s.message() << "\n";
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

namespace {

void OnSignal(int sig) {
  const char c = static_cast<char>(sig);
  (void)!write(g_signal_pipe[1], &c, 1);
}

const char kUsage[] =
    "usage: acs-server [--data-dir DIR] [--listen HOST:PORT] [options]\n"
    "       acs-server --init [--data-dir DIR]        create the data dir, print the first admin token\n"
    "       acs-server token --name NAME --role admin|user|worker [--expires-days N] [--data-dir DIR]\n"
    "       acs-server token list | revoke --name NAME [--data-dir DIR]\n"
    "\n"
    "  --data-dir DIR        SQLite store and blobs (default data/server)\n"
    "  --listen HOST:PORT    address to serve on (default 127.0.0.1:50051)\n"
    "  --config PATH         JSON file with any of these options as keys (flags win)\n"
    "  --no-auth             accept every caller as admin; only on a loopback address\n"
    "  --http-listen HOST:PORT  also serve the HTTP/JSON API (docs/service.md); off unless given\n"
    "  --http-max-streams N  open job event streams over HTTP; more are answered 503 (default 64)\n"
    "  --web-root DIR        the dashboard's files, served at / with --http-listen (docs/dashboard.md;\n"
    "                        default: the build's web/dist, or web/ next to this binary)\n"
    "  --tls-cert PATH       serve TLS with this certificate chain (PEM) ...\n"
    "  --tls-key PATH        ... and this private key\n"
    "  --lease-seconds S     a task's lease without heartbeat (default 60)\n"
    "  --max-attempts N      leases per task before it fails (default 3)\n"
    "  --offline-seconds S   a worker silent this long shows offline (default 20)\n"
    "  --no-worker-seconds S  a job waiting on workers (preparing, verifying) fails after this\n"
    "                        long without an online worker of its device class (default 120)\n"
    "  --max-jobs N          jobs searching at once (default 1)\n"
    "  --max-upload-mb N     largest model or dataset upload (default 1024)\n"
    "  --max-user-storage-mb N  what one user stores: uploads and job artifacts, each blob\n"
    "                        counted once; an upload past it, or a submit once over it, is\n"
    "                        refused (default 20480; 0: no quota)\n"
    "  --blob-gc-interval-seconds S  between sweeps removing blobs no job or campaign run names\n"
    "                        (default 3600; 0: none)\n"
    "  --blob-gc-grace-seconds S  such a blob stored more recently is kept (default 604800)\n"
    "  --datasets-dir DIR    datasets jobs may name (default /usr/share/datasets)\n"
    "  --campaign-samples N  kernels measured for a device class without predictor\n"
    "                        (default 600, plus a sixth held out)\n"
    "  --checkpoint-seconds S  at most this long between job checkpoints (default 5)\n"
    "  --budget-rounds N     latency jobs whose result misses the budget as measured: rounds\n"
    "                        of measuring its layers, retraining and searching on (default 3)\n"
    "  --verify-runs N       tasks that measure a latency job's exported policy, judged on\n"
    "                        their median (the others too before a refit; default 3)\n"
    "  --no-model-measurement  latency jobs skip measuring the model's own layers and dense\n"
    "                        latency on the device class before the search\n"
    "  --fine-tune-epochs N  epochs for jobs that ask for fine-tuning (default 3)\n"
    "  --fine-tune-distill W  distillation weight from the dense model in fine-tuning, in\n"
    "                       [0, 1] (default 0.7; 0 = cross-entropy alone)\n"
    "  --max-input-elements N  elements of a job's input shape, batch included (default 4194304)\n"
    "  --max-dataset-gb N    what a job's dataset may decode to as float32, in GiB, checked at\n"
    "                        Submit and in the job (default 4; 0: no limit)\n"
    "  --max-episodes N      episodes a job may ask for (default 100000)\n"
    "  --max-top-k N         policies a job may have verified (default 20, at least 3)\n"
    "  --max-runner-deaths N  a job whose runner died this often fails (default 2)\n"
    "  --max-request-mb N    largest gRPC message (default 64; uploads stream in parts)\n"
    "  --max-user-jobs N     jobs a user may have queued or running (default 20)\n"
    "  --max-watchers N      concurrent job watches per user (default 16)\n"
    "  --max-remeasure-runs N  re-measurements (RemeasureJob) of one job queued or running at\n"
    "                        once (default 30; 0: none allowed)\n"
    "  --max-checks N        Submit checks of models running at once (default 4)\n"
    "  --job-memory-mb N     address-space limit of a job's process (default 8192; 0: none)\n"
    "  --job-cpu-seconds N   CPU-time limit of a job's process (default 0: none)\n"
    "  --job-wall-seconds N  wall-clock limit of a job's process (default 86400; 0: none)\n"
    "  --check-seconds N     wall-clock limit of Submit's check of a model (default 120)\n"
    "  --in-process          run jobs in the server's own threads, without those limits\n"
    "                        (a job's crash then takes the server down)\n"
    "  --no-confine          do not confine the job runners' file access with Landlock (for\n"
    "                        hosts where it misbehaves; they still never open the database)\n"
    "  --log-level LEVEL     trace, debug, info (default), warn, error\n";

const std::set<std::string> kValued = {"data-dir", "listen", "config", "tls-cert", "tls-key", "lease-seconds",
                                       "max-attempts", "offline-seconds", "log-level", "name", "role",
                                       "max-jobs", "max-upload-mb", "max-user-storage-mb", "datasets-dir",
                                       "campaign-samples", "expires-days",
                                       "checkpoint-seconds", "fine-tune-epochs", "fine-tune-distill", "budget-rounds",
                                       "max-input-elements", "max-user-jobs", "max-watchers", "job-memory-mb",
                                       "job-cpu-seconds", "http-listen", "http-max-streams", "web-root",
                                       "job-wall-seconds", "check-seconds", "max-checks", "verify-runs",
                                       "max-remeasure-runs", "blob-gc-interval-seconds", "blob-gc-grace-seconds",
                                       "max-episodes", "max-top-k", "max-runner-deaths", "max-request-mb",
                                       "max-dataset-gb", "no-worker-seconds"};
// Flags without a value, also allowed as true / false keys of the config file (but "init"
// and the test hook).
const std::set<std::string> kSwitches = {"init",       "no-auth",    "no-model-measurement",
                                         "in-process", "no-confine", kTestProbeRunners};

// The server's job runner children: `acs-server run-job ID FLAGS` and
// `acs-server check-job FLAGS` (the request as JSON on stdin), FLAGS as the server's.
constexpr const char* kRunJob = "run-job";
constexpr const char* kCheckJob = "check-job";


std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Flags override the JSON config file's keys.
StatusOr<Flags> WithConfig(Flags flags) {
  if (!flags.Has("config")) return flags;
  const std::string path = flags.Get("config");
  if (!std::filesystem::is_regular_file(path)) return Status::NotFound("config file '" + path + "' does not exist");
  const nlohmann::json j = nlohmann::json::parse(ReadText(path), nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("config file '" + path + "' is not a JSON object");
  for (const auto& item : j.items()) {
    if (!kValued.count(item.key()) &&
        (!kSwitches.count(item.key()) || item.key() == "init" || item.key() == kTestProbeRunners)) {
      return Status::InvalidArgument("config file '" + path + "': unknown key '" + item.key() + "'");
    }
    if (flags.Has(item.key())) continue;
    if (item.value().is_string()) {
      flags.values[item.key()] = item.value().get<std::string>();
    } else if (item.value().is_boolean()) {
      if (item.value().get<bool>()) flags.values[item.key()] = "";
    } else {
      flags.values[item.key()] = item.value().dump();
    }
  }
  return flags;
}

int Init(const Flags& flags) {
  const std::string dir = flags.Get("data-dir", "data/server");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(Status::Unavailable("cannot create '" + dir + "': " + ec.message()));
  auto store = ServerStore::Open(DbPath(dir));
  if (!store.ok()) return Fail(store.status());
  auto count = (*store)->CountTokens();
  if (!count.ok()) return Fail(count.status());
  if (*count > 0) {
    return Fail(Status::AlreadyExists("'" + dir + "' is initialized already; make more tokens with 'acs-server token'"));
  }
  auto token = (*store)->CreateToken("admin", Role::kAdmin);
  if (!token.ok()) return Fail(token.status());
  std::cout << "initialized " << dir << "\nadmin token (shown once): " << *token << "\n";
  return 0;
}

// `acs-server token [list | revoke]`: make, list or revoke bearer tokens.
int Token(const Flags& flags) {
  const std::string action = flags.positional.empty() ? "" : flags.positional[0];
  if (flags.positional.size() > 1 || (action != "" && action != "list" && action != "revoke")) {
    return Fail(Status::InvalidArgument("usage: acs-server token [list | revoke] (see --help)"));
  }
  auto store = ServerStore::Open(DbPath(flags.Get("data-dir", "data/server")));
  if (!store.ok()) return Fail(store.status());
  if (action == "list") {
    auto tokens = (*store)->ListTokens();
    if (!tokens.ok()) return Fail(tokens.status());
    std::printf("%-4s %-20s %-7s %-21s %-21s %s\n", "id", "name", "role", "created", "expires", "state");
    for (const TokenRecord& t : *tokens) {
      std::printf("%-4lld %-20s %-7s %-21s %-21s %s\n", static_cast<long long>(t.id), t.name.c_str(),
                  RoleName(t.role), t.created.c_str(), t.expires.empty() ? "never" : t.expires.c_str(),
                  t.live ? "live" : t.revoked ? "revoked" : "expired");
    }
    return 0;
  }
  if (!flags.Has("name")) return Fail(Status::InvalidArgument("--name is required"));
  if (action == "revoke") {
    if (Status s = (*store)->RevokeTokenNamed(flags.Get("name")); !s.ok()) return Fail(s);
    std::cout << "revoked " << flags.Get("name") << "\n";
    return 0;
  }
  auto role = ParseRole(flags.Get("role", "user"));
  if (!role.ok()) return Fail(role.status());
  auto days = flags.GetInt("expires-days", 0);
  if (!days.ok()) return Fail(days.status());
  auto token = (*store)->CreateToken(flags.Get("name"), *role, *days);
  if (!token.ok()) return Fail(token.status());
  std::cout << *token << "\n";
  return 0;
}


// The flags again as arguments, for the job runner children (the config file's keys
// are among them already).
std::vector<std::string> FlagsAsArgs(const Flags& flags) {
  std::vector<std::string> args;
  for (const auto& [name, value] : flags.values) {
    if (name == "config" || name == "init") continue;
    args.push_back("--" + name);
    if (!kSwitches.count(name)) args.push_back(value);
  }
  return args;
}

StatusOr<FarmOptions> FarmOptionsOf(const Flags& flags) {
  FarmOptions o;
  ACS_ASSIGN_OR_RETURN(int64_t lease, flags.GetInt("lease-seconds", 60));
  ACS_ASSIGN_OR_RETURN(int64_t attempts, flags.GetInt("max-attempts", 3));
  ACS_ASSIGN_OR_RETURN(int64_t offline, flags.GetInt("offline-seconds", 20));
  if (lease < 1 || attempts < 1) return Status::InvalidArgument("--lease-seconds and --max-attempts must be >= 1");
  o.lease_ms = lease * 1000;
  o.heartbeat_seconds = static_cast<int>(std::max<int64_t>(1, lease / 4));
  o.max_attempts = static_cast<int>(attempts);
  o.offline_after_ms = std::max<int64_t>(1, offline) * 1000;
  return o;
}

// The HTTP gateway's options (used with --http-listen only; unchecked without it).
StatusOr<HttpGatewayOptions> HttpOptionsOf(const Flags& flags, int64_t max_body_bytes) {
  HttpGatewayOptions o;
  if (!flags.Has("http-listen")) return o;
  o.listen = flags.Get("http-listen");
  auto streams = flags.GetInt("http-max-streams", o.max_streams);
  if (!streams.ok() || *streams < 1 || *streams > 10000) {
    return Status::InvalidArgument("--http-max-streams must be an integer in [1, 10000]");
  }
  o.max_streams = static_cast<int>(*streams);
  o.max_body_bytes = max_body_bytes;
  o.web_root = flags.Has("web-root") ? flags.Get("web-root") : DefaultWebRoot();
  return o;
}

// server: the serving process (it trains finished measurement campaigns and, unless
// --in-process, runs each job in a child); otherwise a child, which runs its work here.
StatusOr<ServerParts> OpenParts(const Flags& flags, bool server) {
  const std::string dir = flags.Get("data-dir", "data/server");
  if (!std::filesystem::is_directory(dir)) {
    return Status::FailedPrecondition("data dir '" + dir + "' does not exist; run 'acs-server --init' first");
  }
  ServerPartsOptions options{DbPath(dir), dir, {}, {}, server, {}};
  ACS_ASSIGN_OR_RETURN(options.farm, FarmOptionsOf(flags));
  ACS_ASSIGN_OR_RETURN(options.scheduler, SchedulerOptionsOf(flags, dir));
  BlobGcOptions& gc = options.blob_gc;
  ACS_ASSIGN_OR_RETURN(gc.interval_seconds, flags.GetInt("blob-gc-interval-seconds", gc.interval_seconds));
  ACS_ASSIGN_OR_RETURN(gc.grace_seconds, flags.GetInt("blob-gc-grace-seconds", gc.grace_seconds));
  if (server && !flags.Has("in-process")) {
    ACS_ASSIGN_OR_RETURN(options.scheduler.runner_program, OwnProgram());
    options.scheduler.runner_flags = FlagsAsArgs(flags);
  }
  return ServerParts::Open(options);
}

int Serve(const Flags& flags) {
  const std::string dir = flags.Get("data-dir", "data/server");
  const std::string listen = flags.Get("listen", "127.0.0.1:50051");
  spdlog::set_level(spdlog::level::from_str(flags.Get("log-level", "info")));
  const bool no_auth = flags.Has("no-auth");
  if (no_auth && !IsLoopbackAddress(listen)) {
    return Fail(Status::InvalidArgument("--no-auth is only allowed on a loopback address, not '" + listen + "'"));
  }
  auto opened = OpenParts(flags, /*server=*/true);
  if (!opened.ok()) return Fail(opened.status());
  ServerParts& p = *opened;
  Farm& farm = *p.farm;
  MeasurementCampaigns& measurement_campaigns = *p.measurement_campaigns;
  JobScheduler& jobs = *p.jobs;
  // Every check that can refuse start-up runs before any listener is up.
  if (Status s = jobs.Validate(); !s.ok()) return Fail(s);
  Authenticator auth(p.store.get(), no_auth);
  FarmService farm_service(&farm, p.blobs.get(), &auth);
  const JobServiceParts parts = JobServiceParts::Of(p);
  JobServiceOptions service_options;
  auto upload_mb = flags.GetInt("max-upload-mb", 1024);
  if (!upload_mb.ok()) return Fail(upload_mb.status());
  if (*upload_mb < 1) return Fail(Status::InvalidArgument("--max-upload-mb must be >= 1"));
  service_options.max_upload_bytes = *upload_mb << 20;
  auto user_storage_mb = flags.GetInt("max-user-storage-mb", service_options.max_user_stored_bytes >> 20);
  if (!user_storage_mb.ok()) return Fail(user_storage_mb.status());
  if (*user_storage_mb < 0) return Fail(Status::InvalidArgument("--max-user-storage-mb must be >= 0"));
  service_options.max_user_stored_bytes = *user_storage_mb << 20;
  auto watchers = flags.GetInt("max-watchers", service_options.max_watchers_per_user);
  if (!watchers.ok()) return Fail(watchers.status());
  if (*watchers < 1) return Fail(Status::InvalidArgument("--max-watchers must be >= 1"));
  service_options.max_watchers_per_user = static_cast<int>(*watchers);
  auto remeasure = flags.GetInt("max-remeasure-runs", service_options.max_open_remeasure_runs);
  if (!remeasure.ok()) return Fail(remeasure.status());
  if (*remeasure < 0 || *remeasure > 100000) {
    return Fail(Status::InvalidArgument("--max-remeasure-runs must be in 0 to 100000"));
  }
  service_options.max_open_remeasure_runs = static_cast<int>(*remeasure);
  auto request_mb = flags.GetInt("max-request-mb", 64);
  if (!request_mb.ok()) return Fail(request_mb.status());
  if (*request_mb < 1 || *request_mb > 1024) {
    return Fail(Status::InvalidArgument("--max-request-mb must be in 1 to 1024"));
  }
  auto http_options = HttpOptionsOf(flags, service_options.max_upload_bytes);
  if (!http_options.ok()) return Fail(http_options.status());
  JobService job_service(parts, service_options);
  AcsService acs_service(&job_service, &auth);

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (flags.Has("tls-cert") || flags.Has("tls-key")) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({ReadText(flags.Get("tls-key")), ReadText(flags.Get("tls-cert"))});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, creds, &port);
  builder.RegisterService(&farm_service);
  builder.RegisterService(&acs_service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(*request_mb << 20));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Fail(Status::Unavailable("cannot listen on '" + listen + "'"));
  spdlog::info("acs-server listening on {} (data {}, auth {}, jobs {})", listen, dir,
               no_auth ? "off (loopback)" : "tokens",
               jobs.options().runner_program.empty() ? "in the server's threads" : "in child processes");
  if (flags.Has(kTestProbeRunners)) spdlog::warn("test hook --{} is on: runners log their probes", kTestProbeRunners);
  if (!jobs.options().runner_program.empty() && !jobs.options().confine_writes) {
    spdlog::warn("job runners are not confined (--no-confine): they can read and write wherever this server can "
                 "(honest ones still reach the database only through the server)");
  } else if (!jobs.options().runner_program.empty()) {
    if (StatusOr<int> abi = acs::WriteConfinementSupport(); abi.ok()) {
      spdlog::info("job runners write only their own files (their job's directory) and read only the system, their "
                   "program and their job's blobs (Landlock ABI {}){}",
                   *abi, acs::IpSocketDenialSupport().ok() ? "; they open no IPv4 or IPv6 socket (seccomp)" : "");
    }
    if (const std::string warning = acs::ConfinementWarning("job runners", "this server"); !warning.empty()) {
      spdlog::warn("{}", warning);
    }
  }
  std::unique_ptr<HttpGateway> http;
  if (flags.Has("http-listen")) {
    http = std::make_unique<HttpGateway>(&job_service, &auth, *http_options);
    if (Status s = http->Start(); !s.ok()) return Fail(s);
    spdlog::info("HTTP API on {}, dashboard {}", http_options->listen,
                 http_options->web_root.empty() ? "not built (docs/dashboard.md)" : "from " + http_options->web_root);
  }
  if (Status s = jobs.Start(); !s.ok()) return Fail(s);

  // Housekeeping: expired leases back to the queue, finished measurement campaigns trained.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::thread housekeeping([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      cv.wait_for(lock, std::chrono::milliseconds(500));
      lock.unlock();
      if (auto n = farm.Sweep(); n.ok() && *n > 0) spdlog::info("re-queued or failed {} expired task(s)", *n);
      measurement_campaigns.PollAll();
      lock.lock();
    }
  });
  // SIGTERM / SIGINT: stop the jobs (they resume at the next start), stop accepting,
  // finish in-flight calls, exit 0.
  std::thread signals([&] {
    char sig = 0;
    while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    spdlog::info("signal {}: shutting down (running jobs checkpoint and resume at the next start)", int{sig});
    jobs.Stop();
    if (http) http->Stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  server->Wait();
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  housekeeping.join();
  signals.join();
  spdlog::info("acs-server stopped");
  return 0;
}

}  // namespace
}  // namespace acs::server

int main(int argc, char** argv) {
  using namespace acs::server;
  // Libraries start threads before main, so a handler (not a blocked mask) catches the
  // signals, whichever thread they land on, and wakes the signal thread through a pipe.
  if (pipe(g_signal_pipe) != 0) return 1;
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::cout << kUsage;
      return 0;
    }
  }
  // SIGPIPE: a job runner child may die before reading its input.
  signal(SIGPIPE, SIG_IGN);
  const std::string command = argc > 1 ? argv[1] : "";
  const bool run_job = command == kRunJob && argc > 2;
  const bool token = command == "token", check_job = command == kCheckJob;
  if (run_job || check_job) {
    // The children's logs join the server's on stderr; their stdout carries a result.
    spdlog::set_default_logger(spdlog::stderr_color_mt("acs-job"));
  }
  auto flags = acs::ParseFlags(argc, argv, run_job ? 3 : token || check_job ? 2 : 1, kValued, kSwitches);
  if (!flags.ok()) return Fail(flags.status());
  if (!flags->positional.empty() && !token) {
    return Fail(acs::Status::InvalidArgument("unexpected argument '" + flags->positional[0] + "'"));
  }
  auto with_config = WithConfig(*flags);
  if (!with_config.ok()) return Fail(with_config.status());
  if (token) return Token(*with_config);
  if (run_job) return RunJobChild(*with_config, argv[2]);
  if (check_job) return CheckJobChild(*with_config);
  if (with_config->Has("init")) return Init(*with_config);
  return Serve(*with_config);
}
