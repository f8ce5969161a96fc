#include "devices/worker/model_measure.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>

#include "core/compressor.h"
#include "core/dataset.h"
#include "core/importer.h"
#include "core/quantized_export.h"
#include "core/torchscript_model.h"

namespace acs::worker {
namespace {

constexpr int64_t kMaxTaskInputElements = int64_t{1} << 26;
constexpr int kMaxTaskThreads = 1024;
constexpr int kMaxTaskProfileRuns = 1000;

// What a "measure-model" task asks for.
struct ModelTaskSpec {
  Policy policy;
  Shape input_shape;
  int threads = 1;
  int profile_runs = 0;
};

// The integer `key` of a task spec into *out when present (else *out is kept); InvalidArgument
// naming the key and the range for anything but an integer in [lo, hi].
Status OptionalInt(const nlohmann::json& j, const char* key, int lo, int hi, int* out) {
  if (!j.contains(key)) return Status::Ok();
  const nlohmann::json& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    return Status::InvalidArgument(std::string("task spec '") + key + "' must be an integer between " +
                                   std::to_string(lo) + " and " + std::to_string(hi));
  }
  *out = v.get<int>();
  return Status::Ok();
}

StatusOr<ModelTaskSpec> ParseModelTaskSpec(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("task spec is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("task spec must be a JSON object");
  ModelTaskSpec spec;
  if (!j.contains("policy")) return Status::InvalidArgument("task spec has no 'policy'");
  if (!j["policy"].is_object()) return Status::InvalidArgument("task spec 'policy' must be a JSON object");
  StatusOr<Policy> policy = Policy::FromJson(j["policy"].dump());
  if (!policy.ok()) return Status::InvalidArgument("task spec 'policy': " + policy.status().message());
  spec.policy = std::move(*policy);

  const Status bad_shape =
      Status::InvalidArgument("task spec 'input_shape' must be 1 to 8 positive integers with at most " +
                              std::to_string(kMaxTaskInputElements) + " elements in all, e.g. [1, 1, 28, 28]");
  if (!j.contains("input_shape")) return Status::InvalidArgument("task spec has no 'input_shape'");
  const nlohmann::json& shape = j["input_shape"];
  if (!shape.is_array() || shape.empty() || shape.size() > 8) return bad_shape;
  int64_t elements = 1;
  for (const nlohmann::json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxTaskInputElements) return bad_shape;
    elements *= d.get<int64_t>();
    if (elements > kMaxTaskInputElements) return bad_shape;
    spec.input_shape.push_back(d.get<int64_t>());
  }

  ACS_RETURN_IF_ERROR(OptionalInt(j, "threads", 1, kMaxTaskThreads, &spec.threads));
  ACS_RETURN_IF_ERROR(OptionalInt(j, "profile_runs", 0, kMaxTaskProfileRuns, &spec.profile_runs));
  return spec;
}

// `bytes` in an anonymous in-memory file (memfd, close-on-exec); returns its descriptor,
// which the caller closes. Nothing reaches a disk or outlives the process, and a child whose
// writes are confined needs no writable directory for it.
StatusOr<int> InMemoryFile(const std::string& bytes) {
  const int fd = memfd_create("acs-model", MFD_CLOEXEC);
  if (fd < 0) {
    return Status::FailedPrecondition(std::string("cannot create an in-memory model file: ") + std::strerror(errno));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::strerror(errno);
      close(fd);
      return Status::FailedPrecondition("cannot write the in-memory model file: " + why);
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

// Closes a descriptor when it goes out of scope.
class CloseOnExit {
 public:
  explicit CloseOnExit(int fd) : fd_(fd) {}
  CloseOnExit(const CloseOnExit&) = delete;
  CloseOnExit& operator=(const CloseOnExit&) = delete;
  ~CloseOnExit() { close(fd_); }

 private:
  int fd_;
};

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

constexpr int64_t kSyntheticCalibrationSamples = 16;

bool HasInt8Layer(const Policy& policy) {
  if (policy.default_config && policy.default_config->precision == Precision::kInt8) return true;
  for (const auto& [name, config] : policy.layers) {
    if (config.precision == Precision::kInt8) return true;
  }
  return false;
}

}  // namespace

nlohmann::json LayerKernelJson(const runtime::LayerKernel& l) {
  Policy one;
  one.layers[l.name] = l.config;
  nlohmann::json config = nlohmann::json::parse(one.ToJson(-1))["layers"][l.name];
  return {{"name", l.name},
          {"op", l.op},
          {"kernel", runtime::KernelKindName(l.kind)},
          {"block", l.block},
          {"n", l.nm_n},
          {"m", l.nm_m},
          {"density", l.density},
          {"folded_batch_norm", l.folded_batch_norm},
          {"activation", l.activation},
          {"why_dense", l.why_dense},
          {"config", config}};
}

nlohmann::json ModelMeasurement::ToJson() const {
  nlohmann::json layer_json = nlohmann::json::array();
  for (const runtime::LayerKernel& l : layers) layer_json.push_back(LayerKernelJson(l));
  return {{"device_class", device.ToJson()},
          {"model", model},
          {"policy_hash", policy_hash},
          {"threads", threads},
          {"runtime", measure::ToJson(runtime)},
          {"dense", measure::ToJson(dense)},
          {"dense_baseline", dense_baseline},
          {"dense_plain", measure::ToJson(dense_plain)},
          {"stock", measure::ToJson(stock)},
          {"stock_form", stock_form},
          {"why_no_stock", why_no_stock},
          {"acs_file", measure::ToJson(acs_file)},
          {"acs_file_form", acs_file_form},
          {"why_no_acs_file", why_no_acs_file},
          {"runtime_dense_optimized", runtime_dense_optimized},
          {"why_not_optimized", why_not_optimized},
          {"speedup", speedup()},
          {"speedup_vs_plain", runtime.median_us > 0 ? dense_plain.median_us / runtime.median_us : 0.0},
          {"stock_speedup", stock_speedup()},
          {"acs_file_speedup", acs_file_speedup()},
          {"max_abs_diff", max_abs_diff},
          {"layers", layer_json},
          {"runtime_version", runtime_version}};
}

struct PreparedModel::Impl {
  ModelMeasurement info;  // all but the timings
  std::shared_ptr<ImportedModel> model;
  runtime::RuntimeModel rt;
  runtime::DenseModel dense, dense_plain;
  std::optional<torch::jit::Module> stock;     // none: see info.why_no_stock
  std::optional<torch::jit::Module> acs_file;  // none: see info.why_no_acs_file
  torch::Tensor input;
};

PreparedModel::PreparedModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PreparedModel::~PreparedModel() = default;
PreparedModel::PreparedModel(PreparedModel&&) noexcept = default;
PreparedModel& PreparedModel::operator=(PreparedModel&&) noexcept = default;

namespace {

// A file's bytes as torch.jit.load reads them; Internal naming `what` when they do not load.
StatusOr<torch::jit::Module> LoadBytes(const std::string& bytes, const std::string& what) {
  try {
    std::istringstream file(bytes);
    return torch::jit::load(file);
  } catch (const std::exception& e) {
    return Status::Internal(what + " does not load back: " + ShortError(e));
  }
}

// The fastest way to run a downloaded file that a PyTorch user has, as the dense baseline
// gets it: as loaded, frozen, or frozen and optimized for inference (where that computes
// the same function: runtime::FasterForInference), timed alternately on this machine.
// The frozen form comes from a second load of the bytes: freezing a loaded module with
// int8 layers as quantized ops left that module 2-3x slower. *form names the one returned.
StatusOr<torch::jit::Module> AsDeployed(const std::string& bytes, const std::string& what, const Shape& input_shape,
                                        int threads, std::string* form) {
  ACS_ASSIGN_OR_RETURN(torch::jit::Module loaded, LoadBytes(bytes, what));
  *form = "as loaded";
  StatusOr<torch::jit::Module> copy = LoadBytes(bytes, what);
  if (!copy.ok()) return loaded;
  runtime::InferenceModule frozen;
  try {
    copy->eval();
    frozen =
        runtime::FasterForInference(*torch::jit::freeze(*copy).get_method("forward").graph(), input_shape, threads);
  } catch (const std::exception&) {
    return loaded;
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand(input_shape);
  if (!RunModule(frozen.module, x).ok()) return loaded;
  const std::vector<measure::Measurement> t = measure::MeasureChoice(
      {[&] { (void)RunModule(loaded, x); }, [&] { (void)RunModule(frozen.module, x); }}, threads);
  if (t[0].median_us <= t[1].median_us) return loaded;
  *form = runtime::DenseFormName(frozen.optimized ? runtime::DenseForm::kOptimized : runtime::DenseForm::kPlain);
  return frozen.module;
}

// The bytes of the compressed.pt a job exports.
StatusOr<std::string> StockFile(const CompressedModel& compressed, const torch::Tensor& calibration) {
  QuantizedExportOptions options;
  options.calibration = calibration;
  ACS_ASSIGN_OR_RETURN(QuantizedExport exported, ExportQuantizedOps(compressed.module, options));
  try {
    std::ostringstream file;
    exported.module.save(file);
    return file.str();
  } catch (const std::exception& e) {
    return Status::Internal("the exported model does not save: " + ShortError(e));
  }
}

// The bytes of the runtime's file (RuntimeModel::Save).
StatusOr<std::string> AcsFile(const runtime::RuntimeModel& rt) {
  std::ostringstream file;
  ACS_RETURN_IF_ERROR(rt.Save(file));
  return file.str();
}

// `form` when it runs on x, else none and why in *why_not.
std::optional<torch::jit::Module> IfItRuns(StatusOr<torch::jit::Module> form, const torch::Tensor& x,
                                           std::string* why_not) {
  Status runs = form.ok() ? RunModule(*form, x).status() : form.status();
  if (runs.ok()) return std::move(*form);
  *why_not = runs.message();
  return std::nullopt;
}

}  // namespace

StatusOr<ModelMeasurement> MeasureModel(const ModelMeasureRequest& request) {
  ACS_ASSIGN_OR_RETURN(PreparedModel prepared, PreparedModel::Prepare(request));
  return prepared.Time(request.measure);
}

StatusOr<PreparedModel> PreparedModel::Prepare(const ModelMeasureRequest& request) {
  if (request.threads < 1) return Status::InvalidArgument("threads must be >= 1");
  ImportOptions import_options;
  import_options.input_shape = request.input_shape;
  ACS_ASSIGN_OR_RETURN(std::shared_ptr<ImportedModel> model, ImportTorchScript(request.model_path, import_options));

  CompressorOptions compress_options;
  if (!request.calibration_path.empty()) {
    DatasetOptions data_options = FitToInput(request.input_shape);
    data_options.limit = request.calibration_samples;
    ACS_ASSIGN_OR_RETURN(Dataset data, LoadDataset(request.calibration_path, data_options));
    compress_options.calibration = data.images;
  } else if (HasInt8Layer(request.policy) && request.input_shape.size() == 4) {
    // Timing only: int8 kernels run at the same speed whatever their activation range, so
    // synthetic inputs give the ranges; batch norms and weights stay as they are.
    std::vector<int64_t> shape = request.input_shape;
    shape[0] = kSyntheticCalibrationSamples;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
    compress_options.calibration = torch::rand(shape, gen);
    compress_options.recalibrate_batch_norm = false;
    compress_options.reconstruct = false;
  }
  ACS_ASSIGN_OR_RETURN(CompressedModel compressed, Compress(*model, request.policy, compress_options));

  runtime::RuntimeOptions runtime_options = request.runtime;
  runtime_options.threads = request.threads;
  ACS_ASSIGN_OR_RETURN(runtime::RuntimeModel rt,
                       runtime::CompileForRuntime(*model, request.policy, compressed, runtime_options));
  ACS_ASSIGN_OR_RETURN(runtime::DenseModel dense, runtime::DenseModel::Create(*model, request.threads));
  ACS_ASSIGN_OR_RETURN(runtime::DenseModel dense_plain,
                       runtime::DenseModel::Create(*model, request.threads, runtime::DenseForm::kPlain));

  ModelMeasurement m;
  m.model = request.model_path;
  m.policy_hash = request.policy.Hash();
  m.threads = request.threads;
  m.layers = rt.layers();
  m.runtime_version = runtime::RuntimeVersion();
  m.dense_baseline = runtime::DenseFormName(dense.form());
  m.runtime_dense_optimized = rt.dense_optimized();
  m.why_not_optimized = !dense.why_not_optimized().empty() ? "dense model: " + dense.why_not_optimized()
                        : !rt.dense_optimized()            ? "runtime: " + rt.why_dense_not_optimized()
                                                           : "";
  m.device = measure::DetectDeviceClass({request.threads, m.runtime_version});

  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand(request.input_shape);
  ACS_ASSIGN_OR_RETURN(torch::Tensor expect, compressed.Forward(x));
  ACS_ASSIGN_OR_RETURN(torch::Tensor got, rt.Forward(x));
  m.max_abs_diff = (got - expect).abs().max().item<double>();
  ACS_ASSIGN_OR_RETURN(torch::Tensor dense_out, dense.Forward(x));
  ACS_ASSIGN_OR_RETURN(torch::Tensor plain_out, dense_plain.Forward(x));
  (void)dense_out;
  (void)plain_out;
  // The forms of the download are second opinions: the measurement goes on without them.
  // Both are timed as deployed: what the dense baseline gets, they get.
  auto deployed = [&](StatusOr<std::string> bytes, const char* what,
                      std::string* form) -> StatusOr<torch::jit::Module> {
    if (!bytes.ok()) return bytes.status();
    return AsDeployed(*bytes, what, request.input_shape, request.threads, form);
  };
  std::optional<torch::jit::Module> stock =
      IfItRuns(deployed(StockFile(compressed, compress_options.calibration), "the exported model", &m.stock_form), x,
               &m.why_no_stock);
  std::optional<torch::jit::Module> acs_file =
      IfItRuns(deployed(AcsFile(rt), "the runtime's file", &m.acs_file_form), x, &m.why_no_acs_file);
  return PreparedModel(
      std::unique_ptr<Impl>(new Impl{std::move(m), model, std::move(rt), std::move(dense), std::move(dense_plain),
                                     std::move(stock), std::move(acs_file), x}));
}

StatusOr<ModelMeasurement> PreparedModel::Time(measure::MeasureOptions options) {
  torch::NoGradGuard no_grad;
  ModelMeasurement m = impl_->info;
  options.threads = m.threads;
  options.runs_per_turn = kModelRunsPerTurn;
  Status failure;
  const torch::Tensor& x = impl_->input;
  auto run = [&failure, &x](auto& model) {
    return [&failure, &x, &model] {
      StatusOr<torch::Tensor> y = model.Forward(x);
      if (!y.ok() && failure.ok()) failure = y.status();
    };
  };
  std::vector<std::function<void()>> forms = {run(impl_->rt), run(impl_->dense), run(impl_->dense_plain)};
  for (std::optional<torch::jit::Module>* form : {&impl_->stock, &impl_->acs_file}) {
    if (!*form) continue;
    forms.push_back([&failure, &x, form] {
      StatusOr<torch::Tensor> y = RunModule(**form, x);
      if (!y.ok() && failure.ok()) failure = y.status();
    });
  }
  std::vector<measure::Measurement> t = measure::MeasureAlternating(forms, options);
  ACS_RETURN_IF_ERROR(failure);
  m.runtime = std::move(t[0]);
  m.dense = std::move(t[1]);
  m.dense_plain = std::move(t[2]);
  size_t next = 3;
  if (impl_->stock) m.stock = std::move(t[next++]);
  if (impl_->acs_file) m.acs_file = std::move(t[next++]);
  return m;
}

const std::vector<runtime::LayerKernel>& PreparedModel::layers() const { return impl_->info.layers; }

StatusOr<PreparedModel::Profile> PreparedModel::ProfileOps(int runs) {
  torch::NoGradGuard no_grad;
  const torch::Tensor& x = impl_->input;
  auto run = [&x](auto& model) { return [&x, &model]() -> Status { return model.Forward(x).status(); }; };
  Profile p;
  ACS_ASSIGN_OR_RETURN(p.runtime, worker::ProfileOps(run(impl_->rt), runs));
  ACS_ASSIGN_OR_RETURN(p.dense, worker::ProfileOps(run(impl_->dense), runs));
  ACS_ASSIGN_OR_RETURN(p.dense_plain, worker::ProfileOps(run(impl_->dense_plain), runs));
  return p;
}

StatusOr<nlohmann::json> RunModelTask(const std::string& spec_json, const std::string& model_bytes,
                                      const ModelTaskOptions& options) {
  ACS_ASSIGN_OR_RETURN(ModelTaskSpec spec, ParseModelTaskSpec(spec_json));
  if (model_bytes.empty()) return Status::InvalidArgument("the task has no model bytes");
  // Read through this process's descriptor, so that nothing is left behind when the process
  // is killed (a hostile model in a child).
  ACS_ASSIGN_OR_RETURN(const int fd, InMemoryFile(model_bytes));
  CloseOnExit close_fd(fd);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  ModelMeasureRequest request;
  request.model_path = path;
  request.policy = std::move(spec.policy);
  request.input_shape = std::move(spec.input_shape);
  request.threads = spec.threads;
  request.measure = options.measure;
  request.runtime = options.runtime;
  auto named = [&](const Status& s) { return Status(s.code(), ReplaceAll(s.message(), path, options.model_name)); };
  StatusOr<PreparedModel> prepared = PreparedModel::Prepare(request);
  if (!prepared.ok()) return named(prepared.status());
  StatusOr<ModelMeasurement> m = prepared->Time(request.measure);
  if (!m.ok()) return named(m.status());
  m->model = options.model_name;
  nlohmann::json j = m->ToJson();
  if (spec.profile_runs > 0) {
    StatusOr<PreparedModel::Profile> profile = prepared->ProfileOps(spec.profile_runs);
    if (!profile.ok()) return named(profile.status());
    j["outside_layers_share"] = OutsideLayersShare(profile->dense_plain);
  }
  measure::MeasureOptions used = options.measure;
  used.threads = spec.threads;
  j["measure_options"] = measure::ToJson(used);
  return j;
}

StatusOr<nlohmann::json> RunModelTaskIsolated(const std::vector<std::string>& command, const ProcessLimits& limits,
                                              const std::string& spec_json, const std::string& model_bytes,
                                              const std::string& model_name) {
  const std::string line = nlohmann::json::parse(spec_json, nullptr, false).dump();  // one line
  if (model_name.find('\n') != std::string::npos) return Status::InvalidArgument("a model name is one line");
  ACS_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> child,
                       ChildProcess::Start(command, limits, line + "\n" + model_name + "\n" + model_bytes));
  const ProcessExit exit = child->WaitForExit();
  if (!exit.ok()) return Status::Unavailable("measuring the model " + DescribeExit(exit, limits));
  ACS_RETURN_IF_ERROR(StatusFromJsonLine(exit.output));
  // The result is the line before the status line.
  std::string out = exit.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  out = out.substr(0, out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n'));
  const size_t start = out.rfind('\n');
  nlohmann::json result =
      nlohmann::json::parse(start == std::string::npos ? out : out.substr(start + 1), nullptr, false);
  if (!result.is_object()) return Status::Internal("the measuring child process gave no result");
  return result;
}

void ServeModelTaskChild(std::istream& in, std::ostream& out, ModelTaskOptions options) {
  std::string spec;
  std::getline(in, spec);
  std::getline(in, options.model_name);
  const std::string model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatusOr<nlohmann::json> result = Status::Internal("not run");
  try {
    result = RunModelTask(spec, model, options);
  } catch (const std::exception& e) {
    result = Status::Internal(std::string("measuring failed: ") + e.what());
  }
  if (result.ok()) out << result->dump() << "\n";
  Status status = result.status();
  const std::string memory = status.ok() ? "" : OutOfMemoryMessage(status.message(), "the model task", "measuring");
  if (!memory.empty()) status = Status(status.code(), memory);
  out << StatusToJsonLine(status) << std::flush;
}

}  // namespace acs::worker
