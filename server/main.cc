// acs-server: the gRPC service (client API and device farm) over an SQLite store and a
// blob directory under --data-dir.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <signal.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
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
#include "server/campaign.h"
#include "server/farm.h"
#include "server/farm_service.h"
#include "server/jobs.h"

namespace acs::server {
namespace {

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const char c = static_cast<char>(sig);
  (void)!write(g_signal_pipe[1], &c, 1);
}

const char kUsage[] =
    "usage: acs-server [--data-dir DIR] [--listen HOST:PORT] [options]\n"
    "       acs-server --init [--data-dir DIR]        create the data dir, print the first admin token\n"
    "       acs-server token --name NAME --role admin|user|worker [--data-dir DIR]\n"
    "\n"
    "  --data-dir DIR        SQLite store and blobs (default data/server)\n"
    "  --listen HOST:PORT    address to serve on (default 127.0.0.1:50051)\n"
    "  --config PATH         JSON file with any of these options as keys (flags win)\n"
    "  --no-auth             accept every caller as admin; only on a loopback address\n"
    "  --tls-cert PATH       serve TLS with this certificate chain (PEM) ...\n"
    "  --tls-key PATH        ... and this private key\n"
    "  --lease-seconds S     a task's lease without heartbeat (default 60)\n"
    "  --max-attempts N      leases per task before it fails (default 3)\n"
    "  --offline-seconds S   a worker silent this long shows offline (default 20)\n"
    "  --max-jobs N          jobs searching at once (default 1)\n"
    "  --max-upload-mb N     largest model or dataset upload (default 1024)\n"
    "  --datasets-dir DIR    datasets jobs may name (default /usr/share/datasets)\n"
    "  --campaign-samples N  kernels measured for a device class without predictor\n"
    "                        (default 600, plus a sixth held out)\n"
    "  --checkpoint-seconds S  at most this long between job checkpoints (default 5)\n"
    "  --budget-rounds N     latency jobs whose result misses the budget as measured: rounds\n"
    "                        of measuring its layers, retraining and searching on (default 3)\n"
    "  --no-model-measurement  latency jobs skip measuring the model's own layers and dense\n"
    "                        latency on the device class before the search\n"
    "  --fine-tune-epochs N  epochs for jobs that ask for fine-tuning (default 1)\n"
    "  --log-level LEVEL     trace, debug, info (default), warn, error\n";

const std::set<std::string> kValued = {"data-dir", "listen", "config", "tls-cert", "tls-key", "lease-seconds",
                                       "max-attempts", "offline-seconds", "log-level", "name", "role",
                                       "max-jobs", "max-upload-mb", "datasets-dir", "campaign-samples",
                                       "checkpoint-seconds", "fine-tune-epochs", "budget-rounds"};
// Flags without a value, also allowed as true / false keys of the config file.
const std::set<std::string> kSwitches = {"init", "no-auth", "no-model-measurement"};

std::string DbPath(const std::string& dir) { return (std::filesystem::path(dir) / "acs.db").string(); }

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
    if (!kValued.count(item.key()) && (!kSwitches.count(item.key()) || item.key() == "init")) {
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

bool IsLoopback(const std::string& listen) {
  return listen.rfind("127.", 0) == 0 || listen.rfind("localhost:", 0) == 0 || listen.rfind("[::1]:", 0) == 0;
}

int Fail(const Status& s) {
  std::cerr << "acs-server: " << s.message() << "\n";
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
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

int Token(const Flags& flags) {
  auto role = ParseRole(flags.Get("role", "user"));
  if (!role.ok()) return Fail(role.status());
  if (!flags.Has("name")) return Fail(Status::InvalidArgument("--name is required"));
  auto store = ServerStore::Open(DbPath(flags.Get("data-dir", "data/server")));
  if (!store.ok()) return Fail(store.status());
  auto token = (*store)->CreateToken(flags.Get("name"), *role);
  if (!token.ok()) return Fail(token.status());
  std::cout << *token << "\n";
  return 0;
}

StatusOr<SchedulerOptions> SchedulerOptionsOf(const Flags& flags, const std::string& dir) {
  SchedulerOptions o;
  ACS_ASSIGN_OR_RETURN(int64_t max_jobs, flags.GetInt("max-jobs", o.max_concurrent));
  ACS_ASSIGN_OR_RETURN(int64_t samples, flags.GetInt("campaign-samples", o.campaign.samples));
  ACS_ASSIGN_OR_RETURN(int64_t checkpoint, flags.GetInt("checkpoint-seconds", 5));
  ACS_ASSIGN_OR_RETURN(int64_t fine_tune_epochs, flags.GetInt("fine-tune-epochs", o.fine_tune_epochs));
  ACS_ASSIGN_OR_RETURN(int64_t budget_rounds, flags.GetInt("budget-rounds", o.budget_rounds));
  if (max_jobs < 1 || samples < 1 || checkpoint < 0 || fine_tune_epochs < 1 || budget_rounds < 0) {
    return Status::InvalidArgument("--max-jobs, --campaign-samples and --fine-tune-epochs must be >= 1, "
                                   "--checkpoint-seconds and --budget-rounds >= 0");
  }
  o.budget_rounds = static_cast<int>(budget_rounds);
  o.measure_model_layers = !flags.Has("no-model-measurement");
  o.fine_tune_epochs = static_cast<int>(fine_tune_epochs);
  o.max_concurrent = static_cast<int>(max_jobs);
  o.campaign.samples = static_cast<int>(samples);
  o.campaign.heldout = std::max(1, o.campaign.samples / 6);
  o.checkpoint_seconds = static_cast<double>(checkpoint);
  o.datasets_dir = flags.Get("datasets-dir", o.datasets_dir);
  o.work_dir = (std::filesystem::path(dir) / "work").string();
  return o;
}

int Serve(const Flags& flags) {
  const std::string dir = flags.Get("data-dir", "data/server");
  const std::string listen = flags.Get("listen", "127.0.0.1:50051");
  spdlog::set_level(spdlog::level::from_str(flags.Get("log-level", "info")));
  const bool no_auth = flags.Has("no-auth");
  if (no_auth && !IsLoopback(listen)) {
    return Fail(Status::InvalidArgument("--no-auth is only allowed on a loopback address, not '" + listen + "'"));
  }
  if (!std::filesystem::is_directory(dir)) {
    return Fail(Status::FailedPrecondition("data dir '" + dir + "' does not exist; run 'acs-server --init' first"));
  }
  auto store = ServerStore::Open(DbPath(dir));
  if (!store.ok()) return Fail(store.status());
  auto measurements = predictors::OpenSqliteStore(DbPath(dir));
  if (!measurements.ok()) return Fail(measurements.status());
  auto blobs = BlobStore::Open(dir);
  if (!blobs.ok()) return Fail(blobs.status());
  FarmOptions farm_options;
  auto lease = flags.GetInt("lease-seconds", 60);
  auto attempts = flags.GetInt("max-attempts", 3);
  if (!lease.ok()) return Fail(lease.status());
  if (!attempts.ok()) return Fail(attempts.status());
  if (*lease < 1 || *attempts < 1) return Fail(Status::InvalidArgument("--lease-seconds and --max-attempts must be >= 1"));
  farm_options.lease_ms = *lease * 1000;
  farm_options.heartbeat_seconds = static_cast<int>(std::max<int64_t>(1, *lease / 4));
  farm_options.max_attempts = static_cast<int>(*attempts);
  auto offline = flags.GetInt("offline-seconds", 20);
  if (!offline.ok()) return Fail(offline.status());
  farm_options.offline_after_ms = std::max<int64_t>(1, *offline) * 1000;
  Farm farm(store->get(), measurements->get(), farm_options);
  Campaigns campaigns(&farm, store->get(), measurements->get());
  if (Status s = campaigns.Resume(); !s.ok()) return Fail(s);
  Authenticator auth(store->get(), no_auth);
  auto scheduler_options = SchedulerOptionsOf(flags, dir);
  if (!scheduler_options.ok()) return Fail(scheduler_options.status());
  JobScheduler jobs(store->get(), blobs->get(), &farm, &campaigns, measurements->get(), *scheduler_options);
  FarmService farm_service(&farm, blobs->get(), &auth);
  AcsServiceParts parts;
  parts.store = store->get();
  parts.blobs = blobs->get();
  parts.jobs = &jobs;
  parts.farm = &farm;
  parts.campaigns = &campaigns;
  parts.measurements = measurements->get();
  parts.auth = &auth;
  auto upload_mb = flags.GetInt("max-upload-mb", 1024);
  if (!upload_mb.ok()) return Fail(upload_mb.status());
  if (*upload_mb < 1) return Fail(Status::InvalidArgument("--max-upload-mb must be >= 1"));
  parts.max_upload_bytes = *upload_mb << 20;
  AcsService acs_service(parts);

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
  builder.SetMaxReceiveMessageSize(64 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Fail(Status::Unavailable("cannot listen on '" + listen + "'"));
  spdlog::info("acs-server listening on {} (data {}, auth {})", listen, dir, no_auth ? "off (loopback)" : "tokens");
  if (Status s = jobs.Start(); !s.ok()) return Fail(s);

  // Housekeeping: expired leases back to the queue, finished campaigns trained.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::thread housekeeping([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      cv.wait_for(lock, std::chrono::milliseconds(500));
      lock.unlock();
      if (auto n = farm.Sweep(); n.ok() && *n > 0) spdlog::info("re-queued or failed {} expired task(s)", *n);
      campaigns.PollAll();
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
  const bool token = argc > 1 && std::string(argv[1]) == "token";
  auto flags = acs::ParseFlags(argc, argv, token ? 2 : 1, kValued, kSwitches);
  if (!flags.ok()) return Fail(flags.status());
  if (!flags->positional.empty()) return Fail(acs::Status::InvalidArgument("unexpected argument '" + flags->positional[0] + "'"));
  auto with_config = WithConfig(*flags);
  if (!with_config.ok()) return Fail(with_config.status());
  if (token) return Token(*with_config);
  if (with_config->Has("init")) return Init(*with_config);
  return Serve(*with_config);
}
