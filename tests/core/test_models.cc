#include "tests/core/test_models.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/script.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "core/torchscript_model.h"
#include "tests/temp_dir.h"

namespace acs::test_models {
namespace {

using torch::jit::Module;
namespace fs = std::filesystem;

// A per-process directory for model files, removed when the process exits.
ScopedTempDir& Dir() {
  static ScopedTempDir dir("acs_test_models_");
  return dir;
}

// "self.<name>", or getattr for numeric child names such as "0".
std::string Child(const std::string& name) {
  if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) {
    return "getattr(self, \"" + name + "\")";
  }
  return "self." + name;
}

struct ConvSpec {
  int64_t in = 0, out = 0, kernel = 3, stride = 1, groups = 1;
  bool bias = false;
  int64_t dilation = 1;  // with dilation > 1 the padding is "same"
};

// Creates modules in one compilation unit with weights from one seeded generator.
class Builder {
 public:
  explicit Builder(uint64_t seed)
      : cu_(std::make_shared<torch::jit::CompilationUnit>()),
        gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  Module New(const std::string& class_name) {
    Module m(c10::QualifiedName("__torch__.acs_test." + class_name), cu_, /*shouldMangle=*/true);
    m.register_attribute("training", c10::BoolType::get(), true);
    return m;
  }

  // Padding kernel / 2; Kaiming-normal weights so activations keep their scale.
  Module Conv(const ConvSpec& s) {
    Module m = New("Conv2d");
    double fan_in = static_cast<double>(s.in / s.groups * s.kernel * s.kernel);
    Param(&m, "weight", torch::empty({s.out, s.in / s.groups, s.kernel, s.kernel})
                            .normal_(0.0, std::sqrt(2.0 / fan_in), gen_));
    if (s.bias) Param(&m, "bias", torch::empty({s.out}).uniform_(-0.2, 0.2, gen_));
    std::string st = std::to_string(s.stride), p = std::to_string(s.kernel / 2), d = std::to_string(s.dilation);
    std::string padding = s.dilation > 1 ? "\"same\"" : "[" + p + ", " + p + "]";
    m.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, " +
             std::string(s.bias ? "self.bias" : "None") + ", [" + st + ", " + st + "], " + padding +
             ", [" + d + ", " + d + "], " + std::to_string(s.groups) + ")\n");
    return m;
  }
  Module Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
    return Conv(ConvSpec{in, out, kernel, stride, 1, false});
  }

  // Random affine parameters and running statistics, eps 1e-5.
  Module BatchNorm(int64_t c) {
    Module m = New("BatchNorm2d");
    Param(&m, "weight", torch::empty({c}).uniform_(0.5, 1.5, gen_));
    Param(&m, "bias", torch::empty({c}).uniform_(-0.3, 0.3, gen_));
    m.register_buffer("running_mean", torch::empty({c}).uniform_(-0.3, 0.3, gen_));
    m.register_buffer("running_var", torch::empty({c}).uniform_(0.5, 1.5, gen_));
    m.define(R"(
def forward(self, x):
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-5, True)
)");
    return m;
  }

  // A parameter drawn uniformly from [lo, hi).
  void AddParameter(Module* m, const std::string& name, std::vector<int64_t> shape, double lo, double hi) {
    Param(m, name, torch::empty(shape).uniform_(lo, hi, gen_));
  }

  Module Linear(int64_t in, int64_t out) {
    Module m = New("Linear");
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Param(&m, "weight", torch::empty({out, in}).uniform_(-bound, bound, gen_));
    Param(&m, "bias", torch::empty({out}).uniform_(-bound, bound, gen_));
    m.define("def forward(self, x):\n    return torch.linear(x, self.weight, self.bias)\n");
    return m;
  }

 private:
  static void Param(Module* m, const std::string& name, torch::Tensor value) {
    m->register_parameter(name, value, /*is_buffer=*/false);
  }

  std::shared_ptr<torch::jit::CompilationUnit> cu_;
  at::Generator gen_;
};

// Registers children and defines forward from its source lines.
Module Compose(Builder* b, const std::string& class_name,
               const std::vector<std::pair<std::string, Module>>& children,
               const std::string& body) {
  Module m = b->New(class_name);
  for (const auto& [name, child] : children) m.register_module(name, child);
  m.define("def forward(self, x):\n" + body);
  return m;
}

const char* kPoolFc =
    "    x = torch.adaptive_avg_pool2d(x, [1, 1])\n"
    "    x = torch.flatten(x, 1)\n"
    "    return self.fc.forward(x)\n";

// "plain", flattening with `flatten` (a TorchScript expression of x).
Module PlainFlattenedBy(Builder* b, const std::string& flatten) {
  Module features = Compose(b, "Features",
                            {{"conv1", b->Conv(ConvSpec{3, 8, 3, 1, 1, true})},
                             {"bn1", b->BatchNorm(8)},
                             {"conv2", b->Conv(8, 16, 3)},
                             {"bn2", b->BatchNorm(16)}},
                            "    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
                            "    x = torch.max_pool2d(x, [2, 2], [2, 2])\n"
                            "    x = torch.relu(self.bn2.forward(self.conv2.forward(x)))\n"
                            "    return torch.max_pool2d(x, [2, 2], [2, 2])\n");
  Module classifier = Compose(b, "Classifier",
                              {{"fc1", b->Linear(16 * 4 * 4, 32)}, {"fc2", b->Linear(32, 10)}},
                              "    return self.fc2.forward(torch.relu(self.fc1.forward(x)))\n");
  return Compose(b, "Plain", {{"features", features}, {"classifier", classifier}},
                 "    x = self.features.forward(x)\n"
                 "    x = " + flatten + "\n"
                 "    return self.classifier.forward(x)\n");
}

Module Plain(Builder* b) { return PlainFlattenedBy(b, "torch.flatten(x, 1)"); }
Module PlainView(Builder* b) { return PlainFlattenedBy(b, "x.view(x.size(0), -1)"); }

// ResNet basic block; `in_place` adds the shortcut with += (aten::add_).
Module BasicBlock(Builder* b, int64_t in, int64_t out, int64_t stride, bool in_place) {
  std::vector<std::pair<std::string, Module>> children = {
      {"conv1", b->Conv(in, out, 3, stride)}, {"bn1", b->BatchNorm(out)},
      {"conv2", b->Conv(out, out, 3)}, {"bn2", b->BatchNorm(out)}};
  std::string identity = "x";
  if (stride != 1 || in != out) {
    children.push_back({"downsample", Compose(b, "Downsample",
                                              {{"0", b->Conv(in, out, 1, stride)}, {"1", b->BatchNorm(out)}},
                                              "    return " + Child("1") + ".forward(" + Child("0") +
                                                  ".forward(x))\n")});
    identity = "self.downsample.forward(x)";
  }
  return Compose(b, "BasicBlock", children,
                 "    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
                 "    out = self.bn2.forward(self.conv2.forward(out))\n"
                 "    identity = " + identity + "\n" +
                     (in_place ? "    out += identity\n" : "    out = out + identity\n") +
                     "    return torch.relu(out)\n");
}

Module Residual(Builder* b) {
  return Compose(b, "Residual",
                 {{"conv1", b->Conv(3, 8, 3)},
                  {"bn1", b->BatchNorm(8)},
                  {"layer1", BasicBlock(b, 8, 8, 1, false)},
                  {"layer2", BasicBlock(b, 8, 16, 2, true)},
                  {"fc", b->Linear(16, 10)}},
                 std::string("    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
                             "    x = self.layer1.forward(x)\n"
                             "    x = self.layer2.forward(x)\n") + kPoolFc);
}

Module Concat(Builder* b) {
  return Compose(b, "Concat",
                 {{"branch_a", b->Conv(3, 4, 3)},
                  {"branch_b", b->Conv(3, 6, 1)},
                  {"bn_cat", b->BatchNorm(10)},
                  {"dw", b->Conv(ConvSpec{10, 10, 3, 1, 10, false})},
                  {"fuse", b->Conv(10, 8, 3)},
                  {"grow", b->Conv(8, 4, 3)},
                  {"transition", b->Conv(12, 8, 1)},
                  {"fc", b->Linear(8, 10)}},
                 std::string("    a = torch.relu(self.branch_a.forward(x))\n"
                             "    b = torch.relu(self.branch_b.forward(x))\n"
                             "    y = torch.relu(self.bn_cat.forward(torch.cat([a, b], 1)))\n"
                             "    y = torch.relu(self.fuse.forward(torch.relu(self.dw.forward(y))))\n"
                             "    z = torch.cat([y, torch.relu(self.grow.forward(y))], 1)\n"
                             "    x = torch.relu(self.transition.forward(z))\n") + kPoolFc);
}

Module Depthwise(Builder* b) {
  Module block = Compose(b, "InvertedResidual",
                         {{"expand", b->Conv(8, 16, 1)},
                          {"expand_bn", b->BatchNorm(16)},
                          {"dw", b->Conv(ConvSpec{16, 16, 3, 1, 16, false})},
                          {"dw_bn", b->BatchNorm(16)},
                          {"project", b->Conv(16, 8, 1)},
                          {"project_bn", b->BatchNorm(8)}},
                         "    out = torch.hardtanh(self.expand_bn.forward(self.expand.forward(x)), 0.0, 6.0)\n"
                         "    out = torch.hardtanh(self.dw_bn.forward(self.dw.forward(out)), 0.0, 6.0)\n"
                         "    out = self.project_bn.forward(self.project.forward(out))\n"
                         "    return x + out\n");
  return Compose(b, "MobileNet",
                 {{"stem", b->Conv(3, 8, 3)},
                  {"stem_bn", b->BatchNorm(8)},
                  {"block", block},
                  {"head", b->Conv(8, 16, 1)},
                  {"head_bn", b->BatchNorm(16)},
                  {"fc", b->Linear(16, 10)}},
                 std::string("    x = torch.hardswish(self.stem_bn.forward(self.stem.forward(x)))\n"
                             "    x = self.block.forward(x)\n"
                             "    x = torch.hardswish(self.head_bn.forward(self.head.forward(x)))\n") +
                     kPoolFc);
}

Module Grouped(Builder* b) {
  return Compose(b, "Grouped",
                 {{"conv1", b->Conv(3, 8, 3)},
                  {"bn1", b->BatchNorm(8)},
                  {"gconv", b->Conv(ConvSpec{8, 8, 3, 1, 2, false})},
                  {"bn2", b->BatchNorm(8)},
                  {"conv3", b->Conv(8, 8, 1)},
                  {"fc", b->Linear(8, 10)}},
                 std::string("    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
                             "    x = torch.relu(self.bn2.forward(self.gconv.forward(x)))\n"
                             "    x = torch.relu(self.conv3.forward(x))\n") + kPoolFc);
}

Module Se(Builder* b) {
  Module se = Compose(b, "SqueezeExcitation",
                      {{"reduce", b->Conv(ConvSpec{16, 4, 1, 1, 1, true})},
                       {"expand", b->Conv(ConvSpec{4, 16, 1, 1, 1, true})}},
                      "    s = torch.adaptive_avg_pool2d(x, [1, 1])\n"
                      "    s = torch.relu(self.reduce.forward(s))\n"
                      "    s = torch.sigmoid(self.expand.forward(s))\n"
                      "    return x * s\n");
  return Compose(b, "SeNet",
                 {{"conv1", b->Conv(3, 16, 3)},
                  {"bn1", b->BatchNorm(16)},
                  {"se", se},
                  {"conv2", b->Conv(ConvSpec{16, 8, 3, 1, 1, false, 2})},
                  {"fc", b->Linear(8, 10)}},
                 std::string("    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
                             "    x = self.se.forward(x)\n"
                             "    x = torch.relu(self.conv2.forward(x))\n") + kPoolFc);
}

Module UnknownOps(Builder* b) {
  return Compose(b, "UnknownOps",
                 {{"conv1", b->Conv(3, 8, 3)},
                  {"conv2", b->Conv(8, 8, 3)},
                  {"conv3", b->Conv(8, 8, 1)},
                  {"fc", b->Linear(8, 10)}},
                 std::string("    x = torch.relu(self.conv1.forward(x))\n"
                             "    n = x.size(0)\n"
                             "    h = x.size(2)\n"
                             "    w = x.size(3)\n"
                             "    x = x.reshape([n, 2, 4, h, w]).transpose(1, 2).reshape([n, 8, h, w])\n"
                             "    x = torch.relu(self.conv2.forward(x))\n"
                             "    x = torch.roll(x, [1], [1])\n"
                             "    x = self.conv3.forward(x)\n") + kPoolFc);
}

Module ChannelConstants(Builder* b) {
  Module m = b->New("ChannelConstants");
  m.register_module("conv1", b->Conv(3, 8, 3));
  m.register_module("conv2", b->Conv(8, 8, 3));
  m.register_module("fc", b->Linear(8, 10));
  b->AddParameter(&m, "scale", {1, 8, 1, 1}, 0.5, 1.5);
  b->AddParameter(&m, "shift", {8, 1, 1}, -0.3, 0.3);
  m.define(std::string("def forward(self, x):\n"
                       "    x = self.conv1.forward(x) * self.scale + self.shift\n"
                       "    x = torch.relu(self.conv2.forward(torch.relu(x)))\n") + kPoolFc);
  return m;
}

Module SharedWeights(Builder* b) {
  return Compose(b, "SharedWeights",
                 {{"conv1", b->Conv(3, 8, 3)}, {"conv2", b->Conv(8, 8, 3)}, {"fc", b->Linear(8, 10)}},
                 std::string("    x = torch.relu(self.conv1.forward(x))\n"
                             "    x = torch.relu(self.conv2.forward(x))\n"
                             "    x = torch.relu(self.conv2.forward(x))\n") + kPoolFc);
}

Module TwoInputs(Builder* b) {
  Module m = b->New("TwoInputs");
  m.define("def forward(self, x, y):\n    return x + y\n");
  return m;
}

Module HogMemory(Builder* b) {
  return Compose(b, "HogMemory", {{"conv1", b->Conv(3, 8, 3)}, {"conv2", b->Conv(8, 8, 3)}, {"fc", b->Linear(8, 10)}},
                 std::string("    x = torch.relu(self.conv2.forward(torch.relu(self.conv1.forward(x))))\n"
                             "    if x.size(0) > 1:\n"
                             "        hoard: List[Tensor] = []\n"
                             "        while len(hoard) >= 0:\n"
                             "            hoard.append(x.new_empty([1 << 24]))\n") + kPoolFc);
}

Module LoopForever(Builder* b) {
  return Compose(b, "LoopForever", {{"conv1", b->Conv(3, 8, 3)}, {"conv2", b->Conv(8, 8, 3)}, {"fc", b->Linear(8, 10)}},
                 std::string("    x = torch.relu(self.conv2.forward(torch.relu(self.conv1.forward(x))))\n"
                             "    while x.size(0) > 1:\n"
                             "        x = x + 0.0\n") + kPoolFc);
}

const std::map<std::string, std::function<Module(Builder*)>>& Factories() {
  static const std::map<std::string, std::function<Module(Builder*)>> factories = {
      {"plain", Plain},
      {"plain_view", PlainView},
      {"residual", Residual},
      {"concat", Concat},
      {"depthwise", Depthwise},
      {"grouped", Grouped},
      {"se", Se},
      {"channel_constants", ChannelConstants},
      {"unknown_ops", UnknownOps},
      {"shared_weights", SharedWeights},
      {"two_inputs", TwoInputs},
      {"hog_memory", HogMemory},
      {"loop_forever", LoopForever},
  };
  return factories;
}

std::mutex& CacheMutex() {
  static std::mutex mu;
  return mu;
}

// Exports a torchvision model; argv: name, "trace" or "script", output path.
const char* kExportScript = R"(import sys
import torch
import torchvision
name, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
model = getattr(torchvision.models, name)(num_classes=10)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
model.eval()
example = torch.rand(1, 3, 64, 64)
module = torch.jit.trace(model, example) if mode == "trace" else torch.jit.script(model)
module.save(path)
)";

}  // namespace

Shape TestInputShape() { return {1, 3, 16, 16}; }

std::vector<std::string> TestModelNames() {
  return {"plain", "residual", "concat", "depthwise", "grouped", "se", "channel_constants", "unknown_ops"};
}

std::string TempPath(const std::string& suffix) {
  static int counter = 0;
  std::lock_guard<std::mutex> lock(CacheMutex());
  return Dir().path() + "/f" + std::to_string(counter++) + suffix;
}

std::string BuildTestModel(const std::string& name, uint64_t seed) {
  auto it = Factories().find(name);
  if (it == Factories().end() || Dir().path().empty()) return "";
  std::string path = Dir().path() + "/" + name + "_" + std::to_string(seed) + ".pt";
  std::lock_guard<std::mutex> lock(CacheMutex());
  if (fs::exists(path)) return path;
  Builder builder(seed);
  Module m = it->second(&builder);
  m.eval();
  m.save(path);
  return path;
}

bool RunPython(const std::string& script, const std::vector<std::string>& args, std::string* output) {
  output->clear();
  const std::string python = "/usr/bin/python3";
  if (access(python.c_str(), X_OK) != 0 || Dir().path().empty()) return false;
  std::string script_path = TempPath(".py");
  std::ofstream(script_path) << script;
  std::string command = python + " " + script_path;
  for (const std::string& a : args) command += " " + a;
  command += " 2>" + script_path + ".log";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return false;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  bool ok = pclose(pipe) == 0;
  if (!ok) output->clear();
  return ok;
}

std::string ExportTorchvisionModel(const std::string& name, bool trace) {
  static std::map<std::string, std::string> cache;
  const std::string key = name + (trace ? "_trace" : "_script");
  {
    std::lock_guard<std::mutex> lock(CacheMutex());
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::string path = TempPath("_" + key + ".pt"), output;
  bool ok = RunPython(kExportScript, {name, trace ? "trace" : "script", path}, &output) && fs::exists(path);
  std::lock_guard<std::mutex> lock(CacheMutex());
  cache[key] = ok ? path : "";
  return cache[key];
}

std::vector<StoredLayer> StoredLayers(torch::jit::Module& module) {
  std::shared_ptr<torch::jit::Graph> graph =
      torch::jit::toGraphFunction(module.get_method("forward").function()).graph();
  std::vector<StoredLayer> out;
  for (torch::jit::Node* node : graph->nodes()) {
    if (IsWeightedOpKind(node->kind().toQualString())) out.push_back({Input(node, 1), Input(node, 2)});
  }
  return out;
}

torch::jit::Node* FirstNodeOfKind(torch::jit::Module& module, const std::string& kind) {
  std::shared_ptr<torch::jit::Graph> graph =
      torch::jit::toGraphFunction(module.get_method("forward").function()).graph();
  for (torch::jit::Node* node : graph->nodes()) {
    if (node->kind() == c10::Symbol::fromQualString(kind)) return node;
  }
  return nullptr;
}

torch::Tensor Input(torch::jit::Node* node, size_t input) {
  c10::optional<c10::IValue> v = torch::jit::toIValue(node->input(input));
  return v && v->isTensor() ? v->toTensor() : torch::Tensor();
}

torch::Tensor Param(const torch::jit::Module& module, const std::string& path) {
  for (const auto& p : module.named_parameters()) {
    if (p.name == path) return p.value;
  }
  for (const auto& b : module.named_buffers()) {
    if (b.name == path) return b.value;
  }
  return torch::Tensor();
}

}  // namespace acs::test_models
