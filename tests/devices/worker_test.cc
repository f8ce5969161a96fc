// acs-worker: kernel and model measurements, farm "measure-model" tasks, and the binary's arguments,
// errors and JSON records (with the smallest timing settings: nothing here checks a latency).
#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/policy.h"
#include "devices/worker/kernel_measure.h"
#include "devices/worker/model_measure.h"
#include "core/kernel_spec.h"
#include "tests/core/test_models.h"

namespace acs::worker {
namespace {

nlohmann::json ConvSpec() {
  return nlohmann::json::parse(R"({"op": "conv2d", "in_channels": 8, "out_channels": 16, "kernel": [3, 3],
    "stride": 2, "padding": 1, "input": [1, 8, 12, 12],
    "config": {"pattern": "block", "sparsity": 0.75, "block": 8, "precision": "fp32"}, "threads": 1})");
}

TEST(KernelMeasureTest, MeasuresTheRuntimeKernelBesideDense) {
  KernelMeasureOptions options;
  options.measure.warmup = 1;
  options.measure.min_repeats = 3;
  options.measure.min_seconds = 0;
  StatusOr<KernelMeasurement> m = MeasureKernel(*ParseKernelSpec(ConvSpec()), options);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kernel.kind, runtime::KernelKind::kBlockSparse);
  EXPECT_EQ(m->timing.repeats, 3);
  EXPECT_EQ(m->dense.repeats, 3);
  EXPECT_LT(m->max_rel_error, 1e-5);
  EXPECT_DOUBLE_EQ(m->features.flops, 2.0 * 16 * 8 * 9 * 36);
  EXPECT_NEAR(m->features.flops_after_sparsity / m->features.flops, 0.25, 0.01);
  EXPECT_NEAR(m->features.density, 0.25, 0.01);
  EXPECT_LT(m->features.weight_bytes, m->features.dense_weight_bytes);

  nlohmann::json channel = ConvSpec();
  channel["config"] = {{"pattern", "channel"}, {"sparsity", 0.5}};
  StatusOr<KernelMeasurement> c = MeasureKernel(*ParseKernelSpec(channel), options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kernel.kind, runtime::KernelKind::kDense);
  EXPECT_EQ(c->features.out_channels_run, 8);

}

TEST(KernelMeasureTest, Int8Int4AndDepthwiseSpecsRunTheirKernels) {
  KernelMeasureOptions options;
  options.measure.warmup = 1;
  options.measure.min_repeats = 2;
  options.measure.min_seconds = 0;
  // int8 on top of a sparsity pattern: the int8 kernel computes the simulated layer.
  nlohmann::json int8 = ConvSpec();
  int8["config"]["precision"] = "int8";
  StatusOr<KernelMeasurement> m = MeasureKernel(*ParseKernelSpec(int8), options);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kernel.kind, runtime::KernelKind::kInt8);
  EXPECT_LT(m->max_rel_error, 1e-2);
  EXPECT_EQ(m->timing.repeats, 2);
  EXPECT_EQ(m->features.weight_bytes, 16 * 72 + 16 * 4);  // int8 values and one scale per row
  EXPECT_DOUBLE_EQ(m->features.flops_stored, m->features.flops);

  nlohmann::json fc = nlohmann::json::parse(R"({"op": "linear", "in_channels": 100, "out_channels": 24,
    "input": [3, 100], "config": {"pattern": "dense", "precision": "int8"}})");
  StatusOr<KernelMeasurement> l = MeasureKernel(*ParseKernelSpec(fc), options);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->kernel.kind, runtime::KernelKind::kInt8);
  fc["config"]["precision"] = "int4w";
  StatusOr<KernelMeasurement> l4 = MeasureKernel(*ParseKernelSpec(fc), options);
  ASSERT_TRUE(l4.ok()) << l4.status().ToString();
  EXPECT_EQ(l4->kernel.kind, runtime::KernelKind::kInt4w);
  EXPECT_LT(l4->max_rel_error, 1e-4);

  nlohmann::json dw = ConvSpec();
  dw["in_channels"] = dw["out_channels"] = dw["groups"] = 8;
  dw["config"] = {{"pattern", "dense"}};
  StatusOr<KernelMeasurement> d = MeasureKernel(*ParseKernelSpec(dw), options);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->kernel.kind, runtime::KernelKind::kDepthwise);
  EXPECT_LT(d->max_rel_error, 1e-5);
  // A grouped int8 layer has no int8 kernel: it is timed as the fake-quant simulation.
  nlohmann::json grouped = ConvSpec();
  grouped["groups"] = 2;
  grouped["config"] = {{"pattern", "dense"}, {"precision", "int8"}};
  StatusOr<KernelMeasurement> g = MeasureKernel(*ParseKernelSpec(grouped), options);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->kernel.kind, runtime::KernelKind::kInt8Simulated);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Policy TaskPolicy() {
  Policy policy;
  policy.default_config = LayerConfig{0.8, Pattern::kBlock, 4};
  policy.layers["fc"] = LayerConfig{};
  return policy;
}

nlohmann::json TaskSpec() {
  return {{"policy", nlohmann::json::parse(TaskPolicy().ToJson())}, {"input_shape", {1, 3, 16, 16}}};
}

ModelTaskOptions QuickTaskOptions() {
  ModelTaskOptions options;
  options.measure.warmup = 1;
  options.measure.min_repeats = 2;
  options.measure.min_seconds = 0;
  options.model_name = "sha256:0123abcd";
  return options;
}

TEST(ModelTaskTest, MeasuresTheModelUnderThePolicy) {
  const std::string bytes = ReadBytes(test_models::BuildTestModel("residual"));
  ASSERT_FALSE(bytes.empty());
  nlohmann::json spec = TaskSpec();
  spec["job_id"] = "ignored";  // extra keys are allowed
  StatusOr<nlohmann::json> j = RunModelTask(spec.dump(), bytes, QuickTaskOptions());
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_GT((*j)["runtime"]["median_us"].get<double>(), 0);
  EXPECT_GT((*j)["dense"]["median_us"].get<double>(), 0);
  EXPECT_EQ((*j)["runtime"]["samples_us"].size(), 2u);
  EXPECT_EQ((*j)["policy_hash"], TaskPolicy().Hash());
  EXPECT_EQ((*j)["model"], "sha256:0123abcd");
  EXPECT_EQ((*j)["threads"], 1);
  EXPECT_EQ((*j)["measure_options"]["min_repeats"], 2);
  EXPECT_LT((*j)["max_abs_diff"].get<double>(), 1e-3);
  int sparse = 0;
  for (const auto& layer : (*j)["layers"]) sparse += layer["kernel"] == "block";
  EXPECT_GT(sparse, 0);

  spec["threads"] = 2;
  StatusOr<nlohmann::json> two = RunModelTask(spec.dump(), bytes, QuickTaskOptions());
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ((*two)["threads"], 2);
  EXPECT_FALSE(two->contains("outside_layers_share"));

  spec["profile_runs"] = 3;  // the residual model's adds and ReLUs run outside its layers
  StatusOr<nlohmann::json> profiled = RunModelTask(spec.dump(), bytes, QuickTaskOptions());
  ASSERT_TRUE(profiled.ok()) << profiled.status().ToString();
  const double share = (*profiled)["outside_layers_share"].get<double>();
  EXPECT_GT(share, 0);
  EXPECT_LT(share, 1);
}

// A model task in a child acs-worker, writing no file as acs-worker serve runs it: a good
// model measures as in this process; a model that hogs memory or never returns fails its
// task with the limit named, and this process (the worker) carries on.
TEST(ModelTaskTest, IsolatedTasksFailHostileModelsWithTheLimitNamed) {
  const std::vector<std::string> command = {std::string(ACS_BINARY_DIR) + "/devices/acs-worker", "run-model-task",
                                            "--warmup", "1", "--min-repeats", "2", "--min-seconds", "0"};
  WriteConfinement writes_nothing;
  writes_nothing.enabled = true;
  ProcessLimits limits{int64_t{3} << 30, 0, 20, writes_nothing};
  StatusOr<nlohmann::json> good = RunModelTaskIsolated(command, limits, TaskSpec().dump(),
                                                       ReadBytes(test_models::BuildTestModel("residual")), "sha256:good");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_GT((*good)["runtime"]["median_us"].get<double>(), 0);
  EXPECT_EQ((*good)["model"], "sha256:good");

  nlohmann::json batch2 = TaskSpec();
  batch2["input_shape"] = {2, 3, 16, 16};  // the hostile models misbehave past batch 1
  StatusOr<nlohmann::json> hog = RunModelTaskIsolated(command, limits, batch2.dump(),
                                                      ReadBytes(test_models::BuildTestModel("hog_memory")), "sha256:hog");
  ASSERT_FALSE(hog.ok());
  EXPECT_NE(hog.status().message().find("ran out of memory"), std::string::npos) << hog.status().message();
  EXPECT_NE(hog.status().message().find("3 GiB"), std::string::npos) << hog.status().message();

  limits.wall_seconds = 10;
  const std::string looping = ReadBytes(test_models::BuildTestModel("loop_forever"));
  StatusOr<nlohmann::json> loop = RunModelTaskIsolated(command, limits, batch2.dump(), looping, "sha256:loop");
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.status().message().find("exceeded the 10 s wall-clock limit"), std::string::npos)
      << loop.status().message();

  // A child that exits without reading its input: an error, and no SIGPIPE for this process.
  StatusOr<nlohmann::json> gone =
      RunModelTaskIsolated({"/bin/true"}, limits, TaskSpec().dump(), std::string(8 << 20, 'x'), "sha256:gone");
  EXPECT_FALSE(gone.ok());
}

// One warm-up run, then `repeats` timed runs however short.
measure::MeasureOptions QuickTiming(int repeats) {
  measure::MeasureOptions timing;
  timing.warmup = 1;
  timing.min_repeats = repeats;
  timing.min_seconds = 0;
  return timing;
}

TEST(ModelMeasureTest, APreparedModelIsTimedAgainAndAgain) {
  ModelMeasureRequest req;
  req.model_path = test_models::BuildTestModel("residual");
  req.policy = TaskPolicy();
  req.input_shape = {1, 3, 16, 16};
  req.threads = 1;
  StatusOr<PreparedModel> prepared = PreparedModel::Prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  const measure::MeasureOptions timing = QuickTiming(3);
  for (int round = 0; round < 2; ++round) {
    StatusOr<ModelMeasurement> m = prepared->Time(timing);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->runtime.samples_us.size(), 4u);  // turns of 2 timed runs (kModelRunsPerTurn)
    EXPECT_GT(m->runtime.median_us, 0);
    EXPECT_GT(m->dense.median_us, 0);
    // The exported compressed.pt, run by LibTorch alone, is timed in the same turns.
    EXPECT_EQ(m->stock.samples_us.size(), 4u);
    EXPECT_GT(m->stock.median_us, 0);
    EXPECT_DOUBLE_EQ(m->ToJson()["stock_speedup"].get<double>(), m->dense.median_us / m->stock.median_us);
    // So is the runtime's own file (compressed.acs.pt), read back.
    EXPECT_EQ(m->acs_file.samples_us.size(), 4u) << m->why_no_acs_file;
    EXPECT_GT(m->acs_file.median_us, 0);
    EXPECT_DOUBLE_EQ(m->ToJson()["acs_file_speedup"].get<double>(), m->dense.median_us / m->acs_file.median_us);
    // Each deployed the fastest way PyTorch offers, named in the record.
    const std::set<std::string> forms = {"as loaded", "frozen", "frozen + optimize_for_inference"};
    EXPECT_EQ(forms.count(m->stock_form), 1u) << m->stock_form;
    EXPECT_EQ(forms.count(m->acs_file_form), 1u) << m->acs_file_form;
    EXPECT_EQ(m->ToJson()["stock_form"], m->stock_form);
    EXPECT_EQ(m->policy_hash, req.policy.Hash());
    EXPECT_LT(m->max_abs_diff, 1e-3);
  }
  req.model_path = "/nonexistent/model.pt";
  EXPECT_FALSE(PreparedModel::Prepare(req).ok());
}

// A job's task carries no data: int8 layers get their activation ranges from synthetic
// inputs (their speed does not depend on them) and run on the int8 kernels.
TEST(ModelMeasureTest, Int8LayersAreTimedWithoutCalibrationData) {
  ModelMeasureRequest req;
  req.model_path = test_models::BuildTestModel("residual");
  req.policy.default_config = LayerConfig{};
  req.policy.default_config->precision = Precision::kInt8;
  req.input_shape = {1, 3, 16, 16};
  StatusOr<PreparedModel> prepared = PreparedModel::Prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  const measure::MeasureOptions timing = QuickTiming(2);
  StatusOr<ModelMeasurement> m = prepared->Time(timing);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GT(m->runtime.median_us, 0);
  EXPECT_GT(m->stock.median_us, 0);  // its int8 layers as quantized ops, ranges from the same inputs
  bool int8_kernel = false;
  for (const runtime::LayerKernel& l : m->layers) int8_kernel |= l.kind == KernelKind::kInt8;
  EXPECT_TRUE(int8_kernel);
}

TEST(OpProfileTest, TheShareOutsideLayersIsOfTheRunsWallTime) {
  // A hidden convolution (oneDNN) is not among the ops; its time is in run_us, with the layers.
  // A batch norm folds into the layer before it wherever the runtime runs.
  const OpProfile profile{
      {{"aten::conv2d", {}, 50}, {"aten::batch_norm", {}, 30}, {"aten::add_", {}, 20}, {"aten::relu_", {}, 10}}, 200};
  EXPECT_DOUBLE_EQ(OutsideLayersShare(profile), 0.15);
  EXPECT_EQ(OutsideLayersShare(OpProfile{}), 0);
}

TEST(ModelMeasureTest, TheProfileShowsEveryLayerOfTheRuntime) {
  ModelMeasureRequest req;
  req.model_path = test_models::BuildTestModel("residual");
  req.policy = TaskPolicy();
  req.input_shape = {1, 3, 16, 16};
  req.runtime.optimize_dense = false;  // optimized dense layers run inside oneDNN ops the profiler misses
  StatusOr<PreparedModel> prepared = PreparedModel::Prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  StatusOr<ModelMeasurement> m = prepared->Time({});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  StatusOr<PreparedModel::Profile> profile = prepared->ProfileOps(3);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  size_t layer_ops = 0, acs_ops = 0;
  for (const OpTime& op : profile->runtime.ops) {
    EXPECT_GE(op.us, 0) << op.name;
    layer_ops += IsLayerOp(op.name) ? 1 : 0;
    acs_ops += op.name.rfind("acs_rt::", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(layer_ops, m->layers.size());
  size_t packed = 0;
  for (const runtime::LayerKernel& l : m->layers) packed += l.kind != runtime::KernelKind::kDense ? 1 : 0;
  EXPECT_EQ(acs_ops, packed);
  EXPECT_FALSE(profile->dense.ops.empty());
  // The ops between layers (adds, ReLUs) take some, not all, of a run.
  const double share = OutsideLayersShare(profile->runtime);
  EXPECT_GT(share, 0);
  EXPECT_LT(share, 1);
  // The plain dense model's layers are aten ops the hooks see, one per layer.
  size_t plain_layer_ops = 0;
  for (const OpTime& op : profile->dense_plain.ops) plain_layer_ops += IsLayerOp(op.name) ? 1 : 0;
  EXPECT_EQ(plain_layer_ops, m->layers.size());
  const double plain_share = OutsideLayersShare(profile->dense_plain);
  EXPECT_GT(plain_share, 0);
  EXPECT_LT(plain_share, 1);
  EXPECT_FALSE(prepared->ProfileOps(0).ok());
}

TEST(ModelTaskTest, BadTasksAreNamed) {
  const std::string bytes = ReadBytes(test_models::BuildTestModel("residual"));
  auto error = [&](const nlohmann::json& spec, const std::string& model, StatusCode code = StatusCode::kInvalidArgument) {
    StatusOr<nlohmann::json> r = RunModelTask(spec.is_string() ? spec.get<std::string>() : spec.dump(), model,
                                              QuickTaskOptions());
    EXPECT_FALSE(r.ok()) << spec.dump();
    if (r.ok()) return std::string();
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    return r.status().message();
  };
  EXPECT_NE(error("{policy: 1", bytes).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error(nlohmann::json::array({1, 2}), bytes).find("JSON object"), std::string::npos);
  nlohmann::json j = TaskSpec();
  j.erase("policy");
  EXPECT_NE(error(j, bytes).find("no 'policy'"), std::string::npos);
  j = TaskSpec();
  j["policy"] = TaskPolicy().ToJson();  // a string, not an object
  EXPECT_NE(error(j, bytes).find("'policy'"), std::string::npos);
  j = TaskSpec();
  j["policy"]["default"] = {{"pattern", "diagonal"}};
  EXPECT_NE(error(j, bytes).find("'policy'"), std::string::npos);
  j = TaskSpec();
  j.erase("input_shape");
  EXPECT_NE(error(j, bytes).find("no 'input_shape'"), std::string::npos);
  for (const nlohmann::json& shape : {nlohmann::json("1x3x16x16"), nlohmann::json::array(), nlohmann::json({1, 3, 0, 16}),
                                      nlohmann::json({1, 3, 16.5, 16}), nlohmann::json({1, 3, 100000, 100000})}) {
    j = TaskSpec();
    j["input_shape"] = shape;
    EXPECT_NE(error(j, bytes).find("'input_shape'"), std::string::npos) << shape.dump();
  }
  j = TaskSpec();
  j["threads"] = 0;
  EXPECT_NE(error(j, bytes).find("'threads'"), std::string::npos);
  j = TaskSpec();
  j["profile_runs"] = -1;
  EXPECT_NE(error(j, bytes).find("'profile_runs'"), std::string::npos);
  EXPECT_NE(error(TaskSpec(), "").find("no model bytes"), std::string::npos);

  // Shapes the model rejects: the importer says so.
  j = TaskSpec();
  j["input_shape"] = {1, 3, 16};
  EXPECT_NE(error(j, bytes).find("input shape 1x3x16"), std::string::npos);
  j["input_shape"] = {1, 4, 16, 16};
  EXPECT_NE(error(j, bytes).find("does not run on input shape 1x4x16x16"), std::string::npos);
  // Bytes TorchScript cannot load: the importer's error, naming the model, not the file.
  const std::string corrupt = error(TaskSpec(), "not a TorchScript archive", StatusCode::kDataLoss);
  EXPECT_NE(corrupt.find("cannot load 'sha256:0123abcd' as a TorchScript model"), std::string::npos) << corrupt;
  EXPECT_EQ(corrupt.find("acs-model-"), std::string::npos) << corrupt;
}

struct WorkerRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

WorkerRun Worker(const std::string& args) {
  const std::string command = std::string(ACS_BINARY_DIR) + "/devices/acs-worker " + args + " 2>&1";
  WorkerRun r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) r.output.append(buffer, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Write(const std::string& suffix, const std::string& text) {
  const std::string path = test_models::TempPath(suffix);
  std::ofstream(path) << text;
  return path;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str(), nullptr, false);
}

TEST(WorkerCliTest, HelpAndUsageErrors) {
  EXPECT_EQ(Worker("--help").code, 0);
  EXPECT_EQ(Worker("measure --help").code, 0);
  EXPECT_EQ(Worker("measure-kernel --help").code, 0);
  EXPECT_EQ(Worker("").code, 2);
  WorkerRun unknown = Worker("benchmark");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.output.find("unknown command 'benchmark'"), std::string::npos);
  WorkerRun missing = Worker("measure --policy p.json --input 1x3x16x16");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.output.find("--model is required"), std::string::npos) << missing.output;
  WorkerRun bad_flag = Worker("measure-kernel --spec x.json --speed 3");
  EXPECT_EQ(bad_flag.code, 2);
  EXPECT_NE(bad_flag.output.find("unknown option --speed"), std::string::npos);
  WorkerRun no_file = Worker("measure-kernel --spec /nonexistent/spec.json");
  EXPECT_EQ(no_file.code, 1);
  EXPECT_NE(no_file.output.find("does not exist"), std::string::npos);
}

TEST(WorkerCliTest, DevicePrintsTheDeviceClass) {
  WorkerRun r = Worker("device --threads 2");
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["id"].get<std::string>().substr(j["id"].get<std::string>().size() - 3), "-t2");
  EXPECT_EQ(Worker("device --threads 0").code, 2);
}

TEST(WorkerCliTest, BadSpecFieldIsNamed) {
  nlohmann::json j = ConvSpec();
  j["config"]["block"] = "eight";
  WorkerRun r = Worker("measure-kernel --spec " + Write(".json", j.dump()));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("'config.block'"), std::string::npos) << r.output;
  WorkerRun not_json = Worker("measure-kernel --spec " + Write(".json", "{op: conv2d"));
  EXPECT_EQ(not_json.code, 2);
  EXPECT_NE(not_json.output.find("not valid JSON"), std::string::npos) << not_json.output;
}

TEST(WorkerCliTest, MeasureKernelWritesARecord) {
  const std::string out = test_models::TempPath(".json");
  WorkerRun r = Worker("measure-kernel --spec " + Write(".json", ConvSpec().dump()) +
                 " --min-repeats 2 --min-seconds 0 --warmup 1 --json " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["kernel_key"], "conv2d c8 o16 k3x3 s2x2 p1x1 d1x1 g1 in1x8x12x12 block8 sp0.75 fp32");
  EXPECT_EQ(j["kernel"]["kind"], "block");
  EXPECT_EQ(j["samples_us"].size(), 2u);
  for (const char* key : {"median_us", "iqr_us", "runtime_version", "speedup"}) EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_TRUE(j["device_class"]["id"].get<std::string>().find("-t1") != std::string::npos);
  EXPECT_GT(j["features"]["flops"].get<double>(), 0);

  nlohmann::json int8 = ConvSpec();
  int8["config"] = {{"pattern", "dense"}, {"precision", "int8"}};
  WorkerRun q = Worker("measure-kernel --spec " + Write(".json", int8.dump()) +
                       " --min-repeats 2 --min-seconds 0 --warmup 1 --json " + out);
  ASSERT_EQ(q.code, 0) << q.output;
  const nlohmann::json k = ReadJson(out);
  EXPECT_EQ(k["kernel"]["kind"], "int8");
  EXPECT_EQ(k["kernel_key"], "conv2d c8 o16 k3x3 s2x2 p1x1 d1x1 g1 in1x8x12x12 dense int8");
}

TEST(WorkerCliTest, MeasureModelWritesARecord) {
  const std::string model = test_models::BuildTestModel("residual");
  Policy policy;
  policy.default_config = LayerConfig{0.8, Pattern::kBlock, 4};
  policy.layers["fc"] = LayerConfig{};
  const std::string policy_path = Write(".json", policy.ToJson());
  const std::string out = test_models::TempPath(".json");
  WorkerRun r = Worker("measure --model " + model + " --policy " + policy_path +
                 " --input 1x3x16x16 --threads 2 --min-repeats 2 --min-seconds 0 --json " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("speedup"), std::string::npos);
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["policy_hash"], policy.Hash());
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["runtime"]["samples_us"].size(), 2u);
  EXPECT_EQ(j["dense"]["samples_us"].size(), 2u);
  EXPECT_EQ(j["dense_plain"]["samples_us"].size(), 2u);
  // The faster dense form on this machine, said by name.
  EXPECT_TRUE(j["dense_baseline"] == "frozen + optimize_for_inference" || j["dense_baseline"] == "frozen")
      << j["dense_baseline"];
  EXPECT_LT(j["max_abs_diff"].get<double>(), 1e-3);
  EXPECT_TRUE(j["device_class"]["id"].get<std::string>().find("-t2") != std::string::npos);
  int sparse = 0;
  for (const auto& layer : j["layers"]) sparse += layer["kernel"] == "block";
  EXPECT_GT(sparse, 0);

  WorkerRun bad_shape = Worker("measure --model " + model + " --policy " + policy_path + " --input 1x3xbad");
  EXPECT_EQ(bad_shape.code, 2);
  EXPECT_NE(bad_shape.output.find("bad input shape"), std::string::npos) << bad_shape.output;
  WorkerRun bad_threads =
      Worker("measure --model " + model + " --policy " + policy_path + " --input 1x3x16x16 --threads 0");
  EXPECT_EQ(bad_threads.code, 2);
  WorkerRun no_model = Worker("measure --model /nonexistent.pt --policy " + policy_path + " --input 1x3x16x16");
  EXPECT_EQ(no_model.code, 1);
  EXPECT_NE(no_model.output.find("does not exist"), std::string::npos) << no_model.output;
}

}  // namespace
}  // namespace acs::worker
