// acs-worker: measures models and kernels on this machine with the runtime's real kernels.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "core/flags.h"
#include "core/importer.h"
#include "devices/measure/device_class.h"
#include "devices/measure/process_env.h"
#include "devices/runtime/runtime.h"
#include "devices/worker/farm_client.h"
#include "devices/worker/kernel_measure.h"
#include "devices/worker/model_measure.h"

namespace acs::worker {
namespace {

const char kUsage[] =
    "acs-worker - latency measurements with the acs runtime\n"
    "\n"
    "usage: acs-worker COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  measure         whole-model latency of the compiled runtime vs the dense model in LibTorch\n"
    "  measure-kernel  one layer (a JSON spec) with its runtime kernel vs the dense LibTorch op\n"
    "  device          print this machine's device class as JSON\n"
    "  serve           dial an acs-server, register, and measure the tasks it leases\n"
    "\n"
    "Run 'acs-worker COMMAND --help' for a command's options.\n";

const char kMeasureUsage[] =
    "usage: acs-worker measure --model M.pt --policy P.json --input SHAPE [options]\n"
    "\n"
    "  --model PATH        TorchScript model\n"
    "  --policy PATH       policy JSON (per-layer configs)\n"
    "  --input SHAPE       input shape, e.g. 1x3x32x32 (also the measured batch)\n"
    "  --threads T         threads of the runtime and of LibTorch (default 1)\n"
    "  --calib DATA        calibration data (batch-norm recalibration, int8 ranges)\n"
    "  --json PATH         write the measurement record as JSON\n"
    "  --plain-aten        the runtime's aten layers as imported, not optimized for inference\n"
    "  --prepack-dense     the runtime's dense convolutions on prepacked oneDNN weights, one op\n"
    "                      each (RuntimeOptions::prepack_dense)\n"
    "  --profile N         also time every op inside the runtime, the dense model and the plain\n"
    "                      dense model (LibTorch's op hooks, mean of N runs) and print where the\n"
    "                      time goes\n";

const char kKernelUsage[] =
    "usage: acs-worker measure-kernel --spec K.json [options]\n"
    "\n"
    "  --spec PATH         kernel spec: {\"op\": \"conv2d\"|\"linear\", \"in_channels\", \"out_channels\",\n"
    "                      \"kernel\": [kh,kw], \"stride\", \"padding\", \"dilation\", \"groups\",\n"
    "                      \"input\": [N,C,H,W] or [N,F], \"config\": {\"pattern\", \"sparsity\",\n"
    "                      \"block\", \"n\", \"m\", \"precision\"}, \"threads\", \"seed\"}\n"
    "  --json PATH         write the measurement record as JSON\n";

const char kTimingUsage[] =
    "\ntiming options:\n"
    "  --warmup N          untimed runs first (default 3)\n"
    "  --min-repeats N     timed runs at least (default 10; of whole models 40)\n"
    "  --min-seconds S     timed seconds at least (default 0.2)\n"
    "  --flush-cache BYTES evict caches between samples with a buffer this large (default 0)\n"
    "  --pin               pin the measuring threads to the first T CPUs\n"
    "\nkernel choice:\n"
    "  --max-density D     sparse kernels for sparse configs with at most this non-zero share\n"
    "                      (default: the runtime's per-kernel thresholds)\n";

const std::set<std::string> kTimingFlags = {"warmup", "min-repeats", "min-seconds", "flush-cache", "max-density"};

// --max-density, when given, replaces every threshold of the kernel selection.
// Flags after the command; acs-worker takes no positional arguments.
StatusOr<Flags> ParseWorkerFlags(int argc, char** argv, const std::set<std::string>& valued,
                                 const std::set<std::string>& switches) {
  ACS_ASSIGN_OR_RETURN(Flags flags, ParseFlags(argc, argv, 2, valued, switches));
  if (!flags.positional.empty()) return Status::InvalidArgument("unexpected argument '" + flags.positional[0] + "'");
  return flags;
}

Status ReadSelection(const Flags& flags, runtime::KernelSelection* s) {
  if (!flags.Has("max-density")) return Status::Ok();
  ACS_ASSIGN_OR_RETURN(double d, flags.GetDouble("max-density", 1.0));
  if (d < 0 || d > 1) return Status::InvalidArgument("--max-density must be in [0, 1]");
  s->max_density_block = s->max_density_unstructured = s->max_density_nm = d;
  return Status::Ok();
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  }
  return false;
}

int Fail(const std::string& command, const Status& status) {
  std::cerr << "acs-worker " << command << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

Status ReadTiming(const Flags& flags, measure::MeasureOptions* o) {
  ACS_ASSIGN_OR_RETURN(int64_t warmup, flags.GetInt("warmup", o->warmup));
  ACS_ASSIGN_OR_RETURN(int64_t repeats, flags.GetInt("min-repeats", o->min_repeats));
  ACS_ASSIGN_OR_RETURN(o->min_seconds, flags.GetDouble("min-seconds", o->min_seconds));
  ACS_ASSIGN_OR_RETURN(o->flush_cache_bytes, flags.GetInt("flush-cache", 0));
  if (warmup < 0 || repeats < 1 || o->min_seconds < 0 || o->flush_cache_bytes < 0) {
    return Status::InvalidArgument("timing options must be non-negative (--min-repeats >= 1)");
  }
  o->warmup = static_cast<int>(warmup);
  o->min_repeats = static_cast<int>(repeats);
  o->pin_threads = flags.Has("pin");
  return Status::Ok();
}

Status WriteJson(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return Status::Ok();
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return Status::FailedPrecondition("cannot write '" + path + "'");
  return Status::Ok();
}

// The ops of a profiled model; its layer ops named by the layers, in order, when their
// counts agree.
void PrintProfile(const char* what, const OpProfile& profile, const std::vector<runtime::LayerKernel>& layers,
                  int64_t runs) {
  const std::vector<OpTime>& ops = profile.ops;
  int64_t layer_ops = 0;
  for (const OpTime& op : ops) layer_ops += IsLayerOp(op.name) ? 1 : 0;
  const bool named = layer_ops == static_cast<int64_t>(layers.size());
  std::printf("\n%s: time in the model per op (mean of %lld profiled runs)\n", what, static_cast<long long>(runs));
  std::printf("%-34s %-32s %-18s %9s\n", "op", "layer", "input", "us");
  double in_layers = 0, in_batch_norms = 0, other = 0;
  int64_t batch_norms = 0;
  size_t next_layer = 0;
  for (const OpTime& op : ops) {
    const bool layer = IsLayerOp(op.name), batch_norm = FoldsIntoLayer(op.name);
    (layer ? in_layers : batch_norm ? in_batch_norms : other) += op.us;
    batch_norms += batch_norm ? 1 : 0;
    std::string shape;
    for (int64_t d : op.input_shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    const std::string name = layer && named ? layers[next_layer++].name : "";
    std::printf("%-34s %-32s %-18s %9.1f\n", op.name.c_str(), name.c_str(), shape.c_str(), op.us);
  }
  std::printf(
      "%s: %.1f us a run, %.1f us in %lld layer ops, %.1f us in %lld batch norms, %.1f us (%.1f%%) in %lld other ops\n",
      what, profile.run_us, in_layers, static_cast<long long>(layer_ops), in_batch_norms,
      static_cast<long long>(batch_norms), other, 100 * OutsideLayersShare(profile),
      static_cast<long long>(ops.size()) - layer_ops - batch_norms);
}

int MeasureCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::cout << kMeasureUsage << kTimingUsage;
    return 0;
  }
  std::set<std::string> valued = {"model", "policy", "input", "threads", "calib", "json", "profile"};
  valued.insert(kTimingFlags.begin(), kTimingFlags.end());
  StatusOr<Flags> flags = ParseWorkerFlags(argc, argv, valued, {"pin", "plain-aten", "prepack-dense"});
  if (!flags.ok()) return Fail("measure", flags.status());
  ModelMeasureRequest request;
  request.runtime.optimize_dense = !flags->Has("plain-aten");
  request.runtime.prepack_dense = flags->Has("prepack-dense");
  int64_t profile_runs = 0;
  auto parse = [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(request.model_path, flags->Required("model"));
    ACS_ASSIGN_OR_RETURN(std::string policy_path, flags->Required("policy"));
    ACS_ASSIGN_OR_RETURN(std::string shape, flags->Required("input"));
    ACS_ASSIGN_OR_RETURN(request.input_shape, ParseShape(shape));
    ACS_ASSIGN_OR_RETURN(int64_t threads, flags->GetInt("threads", 1));
    if (threads < 1 || threads > 1024) return Status::InvalidArgument("--threads must be between 1 and 1024");
    request.threads = static_cast<int>(threads);
    request.calibration_path = flags->Get("calib");
    ACS_ASSIGN_OR_RETURN(profile_runs, flags->GetInt("profile", 0));
    if (profile_runs < 0 || profile_runs > 10000)
      return Status::InvalidArgument("--profile must be between 0 and 10000");
    request.measure.min_repeats = kModelMinRepeats;
    ACS_RETURN_IF_ERROR(ReadTiming(*flags, &request.measure));
    ACS_RETURN_IF_ERROR(ReadSelection(*flags, &request.runtime.selection));
    StatusOr<Policy> policy = Policy::FromFile(policy_path);
    if (!policy.ok()) return Status(policy.status().code(), "--policy: " + policy.status().message());
    request.policy = *policy;
    return Status::Ok();
  };
  if (Status s = parse(); !s.ok()) return Fail("measure", s);
  StatusOr<PreparedModel> prepared = PreparedModel::Prepare(request);
  if (!prepared.ok()) return Fail("measure", prepared.status());
  StatusOr<ModelMeasurement> m = prepared->Time(request.measure);
  if (!m.ok()) return Fail("measure", m.status());

  std::printf("device class %s (%s)\n", m->device.Id().c_str(), m->runtime_version.c_str());
  std::printf("%-32s %-7s %-15s %-8s %7s  %s\n", "layer", "op", "config", "kernel", "density", "notes");
  for (const runtime::LayerKernel& l : m->layers) {
    std::string config = PatternName(l.config.pattern);
    if (l.config.pattern == Pattern::kBlock) config += "1x" + std::to_string(l.config.block);
    if (l.config.pattern == Pattern::kNM) config += std::to_string(l.config.nm_n) + ":" + std::to_string(l.config.nm_m);
    if (l.config.precision != Precision::kFp32) config += std::string(" ") + PrecisionName(l.config.precision);
    std::string notes = l.folded_batch_norm ? "bn folded" : "";
    if (!l.activation.empty()) notes += (notes.empty() ? "" : ", ") + l.activation + " fused";
    if (!l.why_dense.empty()) notes += (notes.empty() ? "" : ", ") + l.why_dense;
    std::printf("%-32s %-7s %-15s %-8s %6.1f%%  %s\n", l.name.c_str(), l.op.c_str(), config.c_str(),
                runtime::KernelKindName(l.kind), 100.0 * l.density, notes.c_str());
  }
  std::printf("\n%-10s %12s %10s %8s\n", "", "median us", "iqr us", "repeats");
  std::printf("%-10s %12.1f %10.1f %8d\n", "runtime", m->runtime.median_us, m->runtime.iqr_us, m->runtime.repeats);
  std::printf("%-10s %12.1f %10.1f %8d  (%s)\n", "dense", m->dense.median_us, m->dense.iqr_us, m->dense.repeats,
              m->dense_baseline.c_str());
  std::printf("%-10s %12.1f %10.1f %8d  (%s)\n", "dense", m->dense_plain.median_us, m->dense_plain.iqr_us,
              m->dense_plain.repeats, runtime::DenseFormName(runtime::DenseForm::kPlain));
  std::printf("%-10s %12.1f %10.1f %8d  (compressed.pt in LibTorch alone, %s: %.2fx)\n", "stock", m->stock.median_us,
              m->stock.iqr_us, m->stock.repeats, m->stock_form.c_str(), m->stock_speedup());
  std::printf(
      "%-10s %12.1f %10.1f %8d  (compressed.acs.pt, the runtime's file loaded back with the acs_rt ops, %s: "
      "%.2fx)\n",
      "acs file", m->acs_file.median_us, m->acs_file.iqr_us, m->acs_file.repeats, m->acs_file_form.c_str(),
      m->acs_file_speedup());
  if (!m->why_no_stock.empty()) std::printf("stock: not timed: %s\n", m->why_no_stock.c_str());
  if (!m->why_no_acs_file.empty()) std::printf("acs file: not timed: %s\n", m->why_no_acs_file.c_str());
  std::printf(
      "speedup %.2fx over the strongest dense model (%s; %.2fx over the plain one) at %d thread(s); "
      "max |runtime - compressed| = %.3g\n",
      m->speedup(), m->dense_baseline.c_str(),
      m->runtime.median_us > 0 ? m->dense_plain.median_us / m->runtime.median_us : 0.0, m->threads, m->max_abs_diff);
  if (!m->why_not_optimized.empty()) std::printf("not optimized for inference: %s\n", m->why_not_optimized.c_str());
  if (profile_runs > 0) {
    StatusOr<PreparedModel::Profile> profile = prepared->ProfileOps(static_cast<int>(profile_runs));
    if (!profile.ok()) return Fail("measure", profile.status());
    PrintProfile("runtime", profile->runtime, m->layers, profile_runs);
    PrintProfile("dense baseline", profile->dense, m->layers, profile_runs);
    PrintProfile("plain dense model", profile->dense_plain, m->layers, profile_runs);
  }
  nlohmann::json j = m->ToJson();
  j["measure_options"] = measure::ToJson(request.measure);
  if (Status s = WriteJson(flags->Get("json"), j); !s.ok()) return Fail("measure", s);
  return 0;
}

int MeasureKernelCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::cout << kKernelUsage << kTimingUsage;
    return 0;
  }
  std::set<std::string> valued = {"spec", "json"};
  valued.insert(kTimingFlags.begin(), kTimingFlags.end());
  StatusOr<Flags> flags = ParseWorkerFlags(argc, argv, valued, {"pin"});
  if (!flags.ok()) return Fail("measure-kernel", flags.status());
  KernelMeasureOptions options;
  KernelSpec spec;
  auto parse = [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(std::string path, flags->Required("spec"));
    ACS_RETURN_IF_ERROR(ReadTiming(*flags, &options.measure));
    ACS_RETURN_IF_ERROR(ReadSelection(*flags, &options.selection));
    ACS_ASSIGN_OR_RETURN(spec, ReadKernelSpec(path));
    return Status::Ok();
  };
  if (Status s = parse(); !s.ok()) return Fail("measure-kernel", s);
  StatusOr<KernelMeasurement> m = MeasureKernel(spec, options);
  if (!m.ok()) return Fail("measure-kernel", m.status());
  std::printf("device class %s\nkernel key   %s\n", m->device.Id().c_str(), spec.Key().c_str());
  std::printf("kernel       %s%s\n", runtime::KernelKindName(m->kernel.kind),
              m->kernel.why_dense.empty() ? "" : (" (" + m->kernel.why_dense + ")").c_str());
  std::printf("%-10s %12s %10s %8s\n", "", "median us", "iqr us", "repeats");
  std::printf("%-10s %12.2f %10.2f %8d\n", "kernel", m->timing.median_us, m->timing.iqr_us, m->timing.repeats);
  std::printf("%-10s %12.2f %10.2f %8d\n", "dense", m->dense.median_us, m->dense.iqr_us, m->dense.repeats);
  std::printf("speedup %.2fx, density %.1f%%\n", m->speedup(), 100.0 * m->features.density);
  nlohmann::json j = m->ToJson();
  j["measure_options"] = measure::ToJson(options.measure);
  if (Status s = WriteJson(flags->Get("json"), j); !s.ok()) return Fail("measure-kernel", s);
  return 0;
}

int DeviceCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::cout << "usage: acs-worker device [--threads T]\n";
    return 0;
  }
  StatusOr<Flags> flags = ParseWorkerFlags(argc, argv, {"threads"}, {});
  if (!flags.ok()) return Fail("device", flags.status());
  StatusOr<int64_t> threads = flags->GetInt("threads", 1);
  if (!threads.ok()) return Fail("device", threads.status());
  if (*threads < 1) return Fail("device", Status::InvalidArgument("--threads must be >= 1"));
  std::cout << measure::DetectDeviceClass({static_cast<int>(*threads), runtime::RuntimeVersion()}).ToJson().dump(2)
            << "\n";
  return 0;
}

const char kServeUsage[] =
    "usage: acs-worker serve --server HOST:PORT [options]\n"
    "\n"
    "  --server HOST:PORT  the acs-server to dial (default 127.0.0.1:50051)\n"
    "  --token TOKEN       bearer token with the worker role (default: $ACS_TOKEN, or the\n"
    "                      file named by --token-file)\n"
    "  --token-file PATH   read the token from this file\n"
    "  --tls-ca PATH       PEM of the server's CA: dial with TLS\n"
    "  --name NAME         shown in device listings (default: host name and pid)\n"
    "  --max-tasks N       exit after N tasks (default: serve until SIGTERM)\n"
    "  --task-memory-mb N  address-space limit of a model task's process (default 8192; 0: none)\n"
    "  --task-seconds N    wall-clock limit of a model task's process (default 1800; 0: none)\n"
    "  --in-process        measure models in this process, without those limits (a model's\n"
    "                      crash then takes the worker down)\n";

std::atomic<bool> g_stop{false};

int ServeCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::cout << kServeUsage << kTimingUsage;
    return 0;
  }
  std::set<std::string> valued = {"server", "token",     "token-file",     "tls-ca",
                                  "name",   "max-tasks", "task-memory-mb", "task-seconds"};
  valued.insert(kTimingFlags.begin(), kTimingFlags.end());
  StatusOr<Flags> flags = ParseWorkerFlags(argc, argv, valued, {"pin", "in-process"});
  if (!flags.ok()) return Fail("serve", flags.status());
  ServeOptions options;
  auto parse = [&]() -> Status {
    options.server = flags->Get("server", options.server);
    options.name = flags->Get("name");
    const char* env = std::getenv("ACS_TOKEN");
    options.token = flags->Get("token", env ? env : "");
    if (flags->Has("token-file")) {
      std::ifstream in(flags->Get("token-file"));
      if (!in) return Status::NotFound("token file '" + flags->Get("token-file") + "' cannot be read");
      std::getline(in, options.token);
    }
    if (flags->Has("tls-ca")) {
      std::ifstream in(flags->Get("tls-ca"));
      if (!in) return Status::NotFound("CA file '" + flags->Get("tls-ca") + "' cannot be read");
      std::stringstream pem;
      pem << in.rdbuf();
      options.root_certs = pem.str();
    }
    ACS_ASSIGN_OR_RETURN(int64_t max_tasks, flags->GetInt("max-tasks", 0));
    if (max_tasks < 0) return Status::InvalidArgument("--max-tasks must be >= 0");
    options.max_tasks = static_cast<int>(max_tasks);
    ACS_RETURN_IF_ERROR(ReadTiming(*flags, &options.measure.measure));
    ACS_RETURN_IF_ERROR(ReadSelection(*flags, &options.measure.selection));
    if (flags->Has("min-repeats")) options.model_min_repeats = options.measure.measure.min_repeats;
    ACS_ASSIGN_OR_RETURN(int64_t memory_mb, flags->GetInt("task-memory-mb", options.task_limits.memory_bytes >> 20));
    ACS_ASSIGN_OR_RETURN(int64_t seconds, flags->GetInt("task-seconds", 1800));
    if (memory_mb < 0 || seconds < 0)
      return Status::InvalidArgument("--task-memory-mb and --task-seconds must be >= 0");
    options.task_limits.memory_bytes = memory_mb << 20;
    options.task_limits.wall_seconds = static_cast<double>(seconds);
    if (flags->Has("in-process")) return Status::Ok();
    // Model tasks in a child of this program with the same timing flags.
    ACS_ASSIGN_OR_RETURN(std::string self, OwnProgram());
    options.task_command = {self, "run-model-task"};
    for (const auto& [name, value] : flags->values) {
      if (!kTimingFlags.count(name) && name != "pin") continue;
      options.task_command.push_back("--" + name);
      if (name != "pin") options.task_command.push_back(value);
    }
    return Status::Ok();
  };
  if (Status s = parse(); !s.ok()) return Fail("serve", s);
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  if (Status s = Serve(options, &g_stop); !s.ok()) return Fail("serve", s);
  return 0;
}

// `acs-worker run-model-task [timing flags]`: the child of `serve` that measures one
// model task (the spec line and the model on stdin; the result and a status on stdout).
int RunModelTaskCommand(int argc, char** argv) {
  std::set<std::string> valued(kTimingFlags.begin(), kTimingFlags.end());
  StatusOr<Flags> flags = ParseWorkerFlags(argc, argv, valued, {"pin"});
  ModelTaskOptions options;
  options.measure.min_repeats = kModelMinRepeats;
  Status s = flags.status();
  if (s.ok()) s = ReadTiming(*flags, &options.measure);
  if (s.ok()) s = ReadSelection(*flags, &options.runtime.selection);
  if (!s.ok()) {
    std::cout << StatusToJsonLine(s) << std::flush;
    return 0;
  }
  ServeModelTaskChild(std::cin, std::cout, options);
  return 0;
}

}  // namespace
}  // namespace acs::worker

int main(int argc, char** argv) {
  using namespace acs::worker;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "measure" || command == "measure-kernel" || command == "serve" || command == "run-model-task") {
    acs::measure::EnsureMeasuringOpenMpEnvironment(argv);
  }
  if (command == "measure") return MeasureCommand(argc, argv);
  if (command == "measure-kernel") return MeasureKernelCommand(argc, argv);
  if (command == "device") return DeviceCommand(argc, argv);
  if (command == "serve") return ServeCommand(argc, argv);
  if (command == "run-model-task") return RunModelTaskCommand(argc, argv);
  std::cerr << "acs-worker: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
