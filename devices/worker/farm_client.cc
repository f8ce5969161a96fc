#include "devices/worker/farm_client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/sandbox.h"
#include "core/sha256.h"
#include "devices/measure/device_class.h"
#include "devices/runtime/runtime.h"
#include "devices/worker/model_measure.h"
#include "proto/farm.grpc.pb.h"
#include "proto/grpc_status.h"

namespace acs::worker {
namespace {

namespace fv1 = acs::farm::v1;

void Log(const std::string& line) { std::fprintf(stderr, "acs-worker: %s\n", line.c_str()); }

class Session {
 public:
  Session(const ServeOptions& o, std::shared_ptr<grpc::Channel> channel)
      : options_(o), stub_(fv1::Farm::NewStub(std::move(channel))) {}

  void Prepare(grpc::ClientContext* ctx, double seconds = 30) const {
    if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }

  Status Register() {
    const measure::DeviceClass device = measure::DetectDeviceClass({1, runtime::RuntimeVersion()});
    fv1::RegisterRequest req;
    req.set_device_class_json(device.ToJson().dump());
    req.set_machine_id(device.MachineId());
    req.add_capabilities("measure-kernel");
    req.add_capabilities("measure-model");
    req.set_worker_version(runtime::RuntimeVersion());
    std::string name = options_.name;
    if (name.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof host - 1);
      name = std::string(host) + "-" + std::to_string(getpid());
    }
    req.set_worker_name(name);
    fv1::RegisterReply reply;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    ACS_RETURN_IF_ERROR(FromGrpc(stub_->Register(&ctx, req, &reply)));
    worker_id_ = reply.worker_id();
    heartbeat_seconds_ = std::max(1, reply.heartbeat_seconds());
    Log("registered as " + worker_id_ + " (" + device.MachineId() + ") with " + options_.server);
    return Status::Ok();
  }

  StatusOr<std::vector<fv1::Task>> Lease() {
    fv1::LeaseRequest req;
    req.set_worker_id(worker_id_);
    req.set_max_tasks(1);
    fv1::LeaseReply reply;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    ACS_RETURN_IF_ERROR(FromGrpc(stub_->Lease(&ctx, req, &reply)));
    return std::vector<fv1::Task>(reply.tasks().begin(), reply.tasks().end());
  }

  // Measures while a thread heartbeats the lease; reports unless the lease was lost.
  Status Run(const fv1::Task& task) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false, lost = false;
    std::thread heartbeat([&] {
      std::unique_lock<std::mutex> lock(mu);
      while (!cv.wait_for(lock, std::chrono::seconds(heartbeat_seconds_), [&] { return done; })) {
        lock.unlock();
        fv1::HeartbeatRequest req;
        req.set_worker_id(worker_id_);
        req.add_task_ids(task.id());
        fv1::HeartbeatReply reply;
        grpc::ClientContext ctx;
        Prepare(&ctx, 10);
        const grpc::Status s = stub_->Heartbeat(&ctx, req, &reply);
        lock.lock();
        if (s.ok() && reply.cancelled_task_ids_size() > 0) lost = true;
      }
    });
    StatusOr<nlohmann::json> result = Status::Internal("not measured");
    try {
      result = Measure(task);
    } catch (const std::exception& e) {  // a task must not take the worker down
      result = Status::Internal(std::string("measuring failed: ") + e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    heartbeat.join();
    if (lost) {
      Log("lease of " + task.id() + " was lost; result dropped");
      return Status::Ok();
    }
    fv1::ReportRequest req;
    req.set_worker_id(worker_id_);
    req.set_task_id(task.id());
    req.set_ok(result.ok());
    req.set_result_json(result.ok() ? result->dump() : "");
    req.set_error(result.ok() ? "" : result.status().message());
    fv1::ReportReply reply;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return FromGrpc(stub_->Report(&ctx, req, &reply));
  }

 private:
  // The measurement record of a task, or why there is none.
  StatusOr<nlohmann::json> Measure(const fv1::Task& task) const {
    if (task.kind() == "measure-kernel") {
      const nlohmann::json j = nlohmann::json::parse(task.spec_json(), nullptr, false);
      if (!j.is_object()) return Status::InvalidArgument("task spec is not JSON");
      ACS_ASSIGN_OR_RETURN(KernelSpec spec, ParseKernelSpec(j.value("spec", nlohmann::json())));
      ACS_ASSIGN_OR_RETURN(KernelMeasurement m, MeasureKernel(spec, options_.measure));
      return m.ToJson();
    }
    if (task.kind() == "measure-model") {
      ModelTaskOptions model_options;
      model_options.measure = options_.measure.measure;
      model_options.measure.min_repeats = options_.model_min_repeats;
      model_options.runtime.selection = options_.measure.selection;
      if (!task.model_sha256().empty()) model_options.model_name = "sha256:" + task.model_sha256();
      ACS_ASSIGN_OR_RETURN(std::string model, FetchModel(task));
      if (options_.task_command.empty()) return RunModelTask(task.spec_json(), model, model_options);
      return RunModelTaskIsolated(options_.task_command, options_.task_limits, task.spec_json(), model,
                                  model_options.model_name);
    }
    return Status::Unimplemented("this worker does not run '" + task.kind() + "' tasks");
  }

  // The task's model, streamed from the server and checked against its sha256.
  StatusOr<std::string> FetchModel(const fv1::Task& task) const {
    fv1::FetchModelRequest req;
    req.set_worker_id(worker_id_);
    req.set_task_id(task.id());
    grpc::ClientContext ctx;
    Prepare(&ctx, 600);
    auto reader = stub_->FetchModel(&ctx, req);
    std::string bytes, expected_sha256;
    int64_t expected = -1;
    Sha256 sha;
    for (fv1::ModelChunk chunk; reader->Read(&chunk);) {
      if (expected < 0) {
        expected = chunk.total_bytes();
        expected_sha256 = chunk.sha256();
      }
      sha.Update(chunk.data());
      bytes += chunk.data();
    }
    ACS_RETURN_IF_ERROR(FromGrpc(reader->Finish()));
    if (static_cast<int64_t>(bytes.size()) != expected || sha.HexDigest() != expected_sha256) {
      return Status::DataLoss("the model of task " + task.id() + " arrived incomplete or damaged");
    }
    return bytes;
  }

  const ServeOptions& options_;
  std::unique_ptr<fv1::Farm::Stub> stub_;
  std::string worker_id_;
  int heartbeat_seconds_ = 5;
};

void Sleep(double seconds, const std::atomic<bool>* stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until && !(stop && *stop)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Status Serve(const ServeOptions& options, const std::atomic<bool>* stop) {
  if (options.server.empty()) return Status::InvalidArgument("--server is required");
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.root_certs.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.root_certs;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);  // models arrive in chunks (FetchModel)
  if (!options.task_command.empty() && options.task_limits.writes.enabled) {
    if (const std::string warning = ConfinementWarning("model tasks", "this worker"); !warning.empty()) Log(warning);
  }
  double backoff = 0.25;
  int tasks_done = 0;
  while (!(stop && *stop)) {
    Session session(options, grpc::CreateCustomChannel(options.server, creds, args));
    Status s = session.Register();
    while (s.ok() && !(stop && *stop)) {
      StatusOr<std::vector<fv1::Task>> tasks = session.Lease();
      if (!tasks.ok()) {
        s = tasks.status();
        break;
      }
      backoff = 0.25;
      if (tasks->empty()) {
        Sleep(options.poll_seconds, stop);
        continue;
      }
      for (const fv1::Task& t : *tasks) {
        s = session.Run(t);
        if (!s.ok()) break;
        if (options.max_tasks > 0 && ++tasks_done >= options.max_tasks) return Status::Ok();
      }
    }
    if (stop && *stop) break;
    if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
      return Status(s.code(), "the server refused this worker: " + s.message());
    }
    Log("server " + options.server + ": " + s.message() + "; retrying in " + std::to_string(backoff).substr(0, 4) +
        " s");
    Sleep(backoff, stop);
    backoff = std::min(options.max_backoff_seconds, backoff * 2);
  }
  return Status::Ok();
}

}  // namespace acs::worker
