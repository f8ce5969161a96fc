#include "devices/worker/model_measure.h"

#include <torch/torch.h>

#include "core/compressor.h"
#include "core/dataset.h"
#include "core/importer.h"

namespace acs::worker {

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
          {"speedup", speedup()},
          {"max_abs_diff", max_abs_diff},
          {"layers", layer_json},
          {"runtime_version", runtime_version}};
}

StatusOr<ModelMeasurement> MeasureModel(const ModelMeasureRequest& request) {
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
  }
  ACS_ASSIGN_OR_RETURN(CompressedModel compressed, Compress(*model, request.policy, compress_options));

  runtime::RuntimeOptions runtime_options = request.runtime;
  runtime_options.threads = request.threads;
  ACS_ASSIGN_OR_RETURN(runtime::RuntimeModel rt,
                       runtime::CompileForRuntime(*model, request.policy, compressed, runtime_options));
  runtime::DenseModel dense(*model, request.threads);

  ModelMeasurement m;
  m.model = request.model_path;
  m.policy_hash = request.policy.Hash();
  m.threads = request.threads;
  m.layers = rt.layers();
  m.runtime_version = runtime::RuntimeVersion();
  m.device = measure::DetectDeviceClass({request.threads, m.runtime_version});

  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand(request.input_shape);
  ACS_ASSIGN_OR_RETURN(torch::Tensor expect, compressed.Forward(x));
  ACS_ASSIGN_OR_RETURN(torch::Tensor got, rt.Forward(x));
  m.max_abs_diff = (got - expect).abs().max().item<double>();
  ACS_ASSIGN_OR_RETURN(torch::Tensor dense_out, dense.Forward(x));
  (void)dense_out;

  measure::MeasureOptions mo = request.measure;
  mo.threads = request.threads;
  Status failure;
  auto run = [&failure, &x](auto& model) {
    return [&failure, &x, &model] {
      StatusOr<torch::Tensor> y = model.Forward(x);
      if (!y.ok() && failure.ok()) failure = y.status();
    };
  };
  std::vector<measure::Measurement> t = measure::MeasureAlternating({run(rt), run(dense)}, mo);
  ACS_RETURN_IF_ERROR(failure);
  m.runtime = std::move(t[0]);
  m.dense = std::move(t[1]);
  return m;
}

}  // namespace acs::worker
