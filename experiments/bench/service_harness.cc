#include "experiments/bench/service_harness.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "core/sha256.h"
#include "core/sqlite_db.h"
#include "proto/grpc_status.h"

namespace acs::bench {
namespace {

namespace fs = std::filesystem;
using test_process::Process;

constexpr size_t kChunk = 1 << 20;

// The output of a shell command; Unavailable with it when the command fails.
StatusOr<std::string> Run(const std::string& command, const fs::path& dir) {
  const test_process::Output out = test_process::Command(command, dir);
  if (out.code != 0) return Status::Unavailable("'" + command + "' failed: " + out.out);
  return out.out;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

v1::SubmitJobRequest JobRequestOf(const JobSpec& spec, const std::string& model_sha256, int episodes) {
  v1::SubmitJobRequest r;
  r.set_model_sha256(model_sha256);
  for (int64_t d : spec.input) r.add_input_shape(d);
  r.set_dataset_name(spec.dataset);
  r.mutable_budget()->set_kind(spec.budget);
  r.mutable_budget()->set_ratio(spec.ratio);
  r.set_agent(spec.agent);
  r.set_episodes(episodes > 0 ? episodes : spec.episodes);
  r.set_seed(1);
  r.set_top_k(spec.top_k);
  return r;
}

StatusOr<std::unique_ptr<LocalService>> LocalService::Create(const ServiceOptions& options) {
  std::unique_ptr<LocalService> s(new LocalService());
  s->options_ = options;
  s->dir_ = options.dir.empty() ? (fs::temp_directory_path() / ("acs_bench_" + std::to_string(getpid()))).string()
                                : options.dir;
  s->remove_dir_ = options.dir.empty() && !options.keep;
  std::error_code ec;
  fs::remove_all(fs::path(s->dir_) / "data", ec);
  fs::create_directories(s->dir_, ec);
  if (ec) return Status::Unavailable("cannot make '" + s->dir_ + "': " + ec.message());
  s->data_ = (fs::path(s->dir_) / "data").string();
  s->address_ = "127.0.0.1:" + std::to_string(test_process::FreePort());
  const std::string server = options.bin_dir + "/server/acs-server";
  ACS_ASSIGN_OR_RETURN(std::string init, Run(server + " --init --data-dir " + s->data_, s->dir_));
  const std::string marker = "admin token (shown once): ";
  if (init.find(marker) == std::string::npos) return Status::Unavailable("acs-server --init said: " + init);
  s->admin_ = FirstLine(init.substr(init.find(marker) + marker.size()));
  ACS_ASSIGN_OR_RETURN(s->worker_token_, s->Token("fleet", "worker"));
  s->stub_ = s->NewStub();
  return s;
}

LocalService::~LocalService() {
  workers_.clear();  // SIGKILL, as Process does
  server_.reset();
  std::error_code ec;
  if (remove_dir_) fs::remove_all(dir_, ec);
}

StatusOr<std::string> LocalService::Token(const std::string& name, const std::string& role) {
  ACS_ASSIGN_OR_RETURN(std::string out, Run(options_.bin_dir + "/server/acs-server token --data-dir " + data_ +
                                                " --name " + name + " --role " + role,
                                            dir_));
  return FirstLine(out);
}

Status LocalService::StartServer(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {options_.bin_dir + "/server/acs-server", "--data-dir", data_, "--listen", address_};
  args.insert(args.end(), options_.server_flags.begin(), options_.server_flags.end());
  args.insert(args.end(), extra.begin(), extra.end());
  const std::string log = "server-" + std::to_string(++server_starts_) + ".log";
  server_ = std::make_unique<Process>(args, fs::path(dir_) / log);
  // Calls on a connection to a server killed before fail at once, whatever wait_for_ready
  // says: ask again until one is answered.
  v1::ListJobsRequest req;
  req.set_page_size(1);
  grpc::Status s;
  const bool answered = test_process::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        Prepare(&ctx, admin_, 5);
        v1::ListJobsReply reply;
        s = stub_->ListJobs(&ctx, req, &reply);
        return s.ok();
      },
      60);
  if (!answered) {
    return Status::Unavailable("the server did not answer (see " + dir_ + "/" + log + "): " + s.error_message());
  }
  return Status::Ok();
}

int LocalService::StopServer(int sig) {
  if (!server_) return -1;
  const int code = server_->Kill(sig);
  server_.reset();
  return code;
}

void LocalService::StartWorker(const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {options_.bin_dir + "/devices/acs-worker", "serve", "--server", address_,
                                   "--token", worker_token_, "--name", name};
  args.insert(args.end(), options_.worker_flags.begin(), options_.worker_flags.end());
  args.insert(args.end(), extra.begin(), extra.end());
  workers_[name] = std::make_unique<Process>(args, fs::path(dir_) / (name + ".log"));
}

int LocalService::StopWorker(const std::string& name, int sig) {
  auto it = workers_.find(name);
  if (it == workers_.end()) return -1;
  const int code = it->second->Kill(sig);
  workers_.erase(it);
  return code;
}

pid_t LocalService::worker_pid(const std::string& name) const {
  auto it = workers_.find(name);
  return it == workers_.end() ? -1 : it->second->pid();
}

bool LocalService::WaitForWorkers(int n, double seconds) {
  return test_process::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        Prepare(&ctx, admin_, 5);
        v1::ListDevicesReply reply;
        if (!stub_->ListDevices(&ctx, v1::ListDevicesRequest(), &reply).ok()) return false;
        return std::count_if(reply.devices().begin(), reply.devices().end(),
                             [](const v1::Device& d) { return d.online(); }) >= n;
      },
      seconds);
}

std::string LocalService::StoreIntegrity() const {
  StatusOr<std::unique_ptr<Db>> db = Db::Open((fs::path(data_) / "acs.db").string());
  if (!db.ok()) return db.status().ToString();
  StatusOr<Statement> check = (*db)->Prepare("PRAGMA integrity_check");
  if (!check.ok()) return check.status().ToString();
  StatusOr<bool> row = check->Step();
  if (!row.ok()) return row.status().ToString();
  return *row ? check->Text(0) : "no answer";
}

std::pair<int, double> LocalService::TempFiles() const {
  std::pair<int, double> out{0, 0};
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(fs::path(data_) / "tmp", ec)) {
    ++out.first;
    out.second += static_cast<double>(fs::file_size(f.path(), ec)) / (1 << 20);
  }
  return out;
}

std::unique_ptr<v1::Acs::Stub> LocalService::NewStub(int channel_id) const {
  grpc::ChannelArguments args;
  args.SetInt("acs.bench.channel", channel_id);  // distinct arguments: a connection of its own
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::Acs::NewStub(grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
}

void LocalService::Prepare(grpc::ClientContext* ctx, const std::string& token, double seconds) const {
  ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_wait_for_ready(true);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

StatusOr<v1::UploadReply> LocalService::Upload(const std::string& bytes, const std::string& token,
                                               const std::function<void(int64_t)>& after_chunk) {
  grpc::ClientContext ctx;
  Prepare(&ctx, token, 300);
  v1::UploadReply reply;
  auto writer = stub_->UploadModel(&ctx, &reply);
  for (size_t at = 0; at == 0 || at < bytes.size(); at += kChunk) {
    v1::UploadChunk chunk;
    if (at == 0) {
      chunk.set_name("bench");
      chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
    }
    chunk.set_data(bytes.substr(at, kChunk));
    if (!writer->Write(chunk)) break;  // the reason comes with Finish
    if (after_chunk) after_chunk(static_cast<int64_t>(std::min(bytes.size(), at + kChunk)));
  }
  writer->WritesDone();
  const grpc::Status s = writer->Finish();
  if (!s.ok()) return FromGrpc(s);
  return reply;
}

StatusOr<v1::Job> LocalService::Submit(const v1::SubmitJobRequest& request, const std::string& token) {
  return Unary<v1::Job>(&v1::Acs::Stub::SubmitJob, request, token, 180);
}

StatusOr<v1::Job> LocalService::Get(const std::string& id, const std::string& token) {
  v1::GetJobRequest req;
  req.set_id(id);
  return Unary<v1::Job>(&v1::Acs::Stub::GetJob, req, token, 60);
}

StatusOr<std::vector<v1::JobEvent>> LocalService::Watch(const std::string& id, const std::string& token,
                                                        double seconds) {
  grpc::ClientContext ctx;
  Prepare(&ctx, token, seconds);
  v1::WatchJobRequest req;
  req.set_id(id);
  auto reader = stub_->WatchJob(&ctx, req);
  std::vector<v1::JobEvent> events;
  for (v1::JobEvent e; reader->Read(&e);) events.push_back(e);
  const grpc::Status s = reader->Finish();
  if (!s.ok()) return FromGrpc(s);
  return events;
}

StatusOr<std::string> LocalService::DownloadSha256(const std::string& id, const std::string& name,
                                                   const std::string& token) {
  grpc::ClientContext ctx;
  Prepare(&ctx, token, 120);
  v1::DownloadArtifactRequest req;
  req.set_job_id(id);
  req.set_name(name);
  std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader = stub_->DownloadArtifact(&ctx, req);
  Sha256 digest;
  v1::ArtifactChunk chunk;
  while (reader->Read(&chunk)) digest.Update(chunk.data());
  if (const grpc::Status s = reader->Finish(); !s.ok()) return FromGrpc(s);
  return digest.HexDigest();
}

StatusOr<v1::Job> LocalService::WaitForJob(const std::string& id, const std::string& token,
                                           const std::function<bool(const v1::Job&)>& pred, double seconds) {
  StatusOr<v1::Job> job = Status::Unavailable("never asked");
  const bool met = test_process::WaitFor(
      [&] {
        job = Get(id, token);
        return job.ok() && pred(*job);
      },
      seconds);
  if (!job.ok() || met) return job;
  return Status::Unavailable("job " + id + " is still " + v1::JobState_Name(job->state()) + " after " +
                                  std::to_string(static_cast<int>(seconds)) + " s");
}

ProcStats ReadProcStats(pid_t pid) {
  ProcStats out;
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream status(base + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) out.rss_mib = std::stod(line.substr(6)) / 1024;
    if (line.rfind("Threads:", 0) == 0) out.threads = std::stoi(line.substr(8));
  }
  // /proc/PID/stat: fields 14 and 15 (utime, stime) after the parenthesized command name.
  const std::string stat = test_process::ReadFile(base + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string t; fields >> t;) f.push_back(t);
  if (f.size() > 12) {
    out.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return out;
}

nlohmann::json LatencySummary::ToJson() const {
  return {{"count", count}, {"p50_ms", p50}, {"p90_ms", p90}, {"p99_ms", p99}, {"max_ms", max}, {"mean_ms", mean}};
}

LatencySummary Summarize(std::vector<double> ms) {
  LatencySummary s;
  s.count = static_cast<int64_t>(ms.size());
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  // Nearest rank.
  auto rank = [&](double q) { return ms[static_cast<size_t>(std::ceil(q * ms.size())) - 1]; };
  s.p50 = rank(0.5);
  s.p90 = rank(0.9);
  s.p99 = rank(0.99);
  s.max = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean = sum / ms.size();
  return s;
}

std::string CodeName(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) return "RESOURCE_EXHAUSTED";
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return "DEADLINE_EXCEEDED";
  return StatusCodeName(FromGrpc(s).code());
}

StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read '" + path + "'");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

StatusOr<Flags> ParseBenchFlags(int argc, char** argv, std::set<std::string> valued, JobSpec* job,
                                ServiceOptions* service, std::string* json) {
  valued.insert({"model", "bin", "dir", "json"});
  ACS_ASSIGN_OR_RETURN(Flags f, ParseFlags(argc, argv, 1, valued, {"keep"}));
  if (!f.positional.empty()) return Status::InvalidArgument("unexpected argument '" + f.positional[0] + "'");
  job->model = f.Get("model", job->model);
  service->bin_dir = f.Get("bin", service->bin_dir);
  service->dir = f.Get("dir", service->dir);
  service->keep = f.Has("keep");
  *json = f.Get("json", *json);
  return f;
}

Status SetInt(const Flags& flags, const std::string& name, int* out) {
  ACS_ASSIGN_OR_RETURN(int64_t v, flags.GetInt(name, *out));
  if (v < INT32_MIN || v > INT32_MAX) return Status::InvalidArgument("--" + name + " is out of range");
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status SetDouble(const Flags& flags, const std::string& name, double* out) {
  ACS_ASSIGN_OR_RETURN(*out, flags.GetDouble(name, *out));
  return Status::Ok();
}

bool WantsHelp(int argc, char** argv, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("%s", usage);
      return true;
    }
  }
  return false;
}

}  // namespace acs::bench
