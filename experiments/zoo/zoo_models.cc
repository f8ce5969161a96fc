#include "experiments/zoo/zoo_models.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/api/compilation_unit.h>

#include <cctype>
#include <cmath>
#include <iomanip>
#include <memory>
#include <sstream>
#include <utility>

namespace acs {
namespace {

using torch::jit::Module;

// Formats a non-integral constant for TorchScript source, to 6 significant digits.
std::string Num(double v) {
  std::ostringstream out;
  out << std::setprecision(6) << v;
  return out.str();
}

// The first statement of every model's forward: dataset normalization.
std::string NormalizeStatement() {
  return "    x = (x - " + Num(kZooMean) + ") / " + Num(kZooStd) + "\n";
}

// "self.<name>" for a child name; numeric names ("0", "1") need getattr. Source compiled
// with Module::define sees children as plain objects, so calls spell out `.forward(...)`;
// the graph is the same prim::CallMethod that torch.jit.script emits for `self.child(x)`.
std::string Child(const std::string& name) {
  if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) {
    return "getattr(self, \"" + name + "\")";
  }
  return "self." + name;
}

// Creates the modules of one model. All classes live in one compilation unit; class names
// are mangled when they repeat, as torch.jit.script does for differently configured
// instances of one nn.Module class. Not thread-safe.
class ModelBuilder {
 public:
  explicit ModelBuilder(uint64_t seed)
      : cu_(std::make_shared<torch::jit::CompilationUnit>()),
        generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  // An empty module with a `training` attribute (true), as Module::train() requires.
  Module NewModule(const std::string& class_name) {
    Module m(c10::QualifiedName("__torch__.acs_zoo." + class_name), cu_, /*shouldMangle=*/true);
    m.register_attribute("training", c10::BoolType::get(), true);
    return m;
  }

  Module Conv3x3(int64_t in, int64_t out, int64_t stride) {
    return Conv(in, out, /*kernel=*/3, stride, /*groups=*/1);
  }
  Module Conv1x1(int64_t in, int64_t out, int64_t stride) {
    return Conv(in, out, /*kernel=*/1, stride, /*groups=*/1);
  }
  Module DepthwiseConv3x3(int64_t channels, int64_t stride) {
    return Conv(channels, channels, /*kernel=*/3, stride, /*groups=*/channels);
  }

  // BatchNorm2d(channels), momentum 0.1, eps 1e-5, with running statistics.
  Module BatchNorm(int64_t channels) {
    Module m = NewModule("BatchNorm2d");
    AddParameter(&m, "weight", torch::ones({channels}));
    AddParameter(&m, "bias", torch::zeros({channels}));
    m.register_buffer("running_mean", torch::zeros({channels}));
    m.register_buffer("running_var", torch::ones({channels}));
    m.define(R"(
def forward(self, x):
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-5, True)
)");
    return m;
  }

  // Linear(in, out) with bias, initialized as torch.nn.Linear.
  Module Linear(int64_t in, int64_t out) {
    Module m = NewModule("Linear");
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    AddParameter(&m, "weight", torch::empty({out, in}).uniform_(-bound, bound, generator_));
    AddParameter(&m, "bias", torch::empty({out}).uniform_(-bound, bound, generator_));
    m.define(R"(
def forward(self, x):
    return torch.linear(x, self.weight, self.bias)
)");
    return m;
  }

 private:
  // Conv2d without bias, padding kernel / 2, Kaiming-normal (fan-out, ReLU gain) weights.
  Module Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
    Module m = NewModule("Conv2d");
    double fan_out = static_cast<double>(out * kernel * kernel);
    torch::Tensor w = torch::empty({out, in / groups, kernel, kernel})
                          .normal_(0.0, std::sqrt(2.0 / fan_out), generator_);
    AddParameter(&m, "weight", w);
    std::string s = std::to_string(stride), p = std::to_string(kernel / 2);
    m.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, None, [" + s + ", " +
             s + "], [" + p + ", " + p + "], [1, 1], " + std::to_string(groups) + ")\n");
    return m;
  }

  static void AddParameter(Module* m, const std::string& name, torch::Tensor value) {
    value.set_requires_grad(true);
    m->register_parameter(name, value, /*is_buffer=*/false);
  }

  std::shared_ptr<torch::jit::CompilationUnit> cu_;
  at::Generator generator_;
};

// VGG-shaped: three stacks of two conv3x3-BN-ReLU (16, 32, 64 channels), each followed by
// 2x2 max pooling (28 -> 14 -> 7 -> 3), then flatten without global pooling, so fc1 sees
// 64 * 3 * 3 features in channel-major order.
Module BuildVgg(ModelBuilder* b) {
  const std::vector<int64_t> cfg = {16, 16, 0, 32, 32, 0, 64, 64, 0};  // 0 = 2x2 max pool
  Module features = b->NewModule("VGGFeatures");
  std::string src = "def forward(self, x):\n";
  int64_t in = 1, index = 0;
  for (int64_t c : cfg) {
    if (c == 0) {
      src += "    x = torch.max_pool2d(x, [2, 2], [2, 2])\n";
      continue;
    }
    std::string i = std::to_string(++index);
    features.register_module("conv" + i, b->Conv3x3(in, c, 1));
    features.register_module("bn" + i, b->BatchNorm(c));
    src += "    x = torch.relu(self.bn" + i + ".forward(self.conv" + i + ".forward(x)))\n";
    in = c;
  }
  features.define(src + "    return x\n");

  Module classifier = b->NewModule("VGGClassifier");
  classifier.register_module("fc1", b->Linear(in * 3 * 3, 256));
  classifier.register_module("fc2", b->Linear(256, kZooClasses));
  classifier.define(R"(
def forward(self, x):
    return self.fc2.forward(torch.relu(self.fc1.forward(x)))
)");

  Module m = b->NewModule("VGG");
  m.register_module("features", features);
  m.register_module("classifier", classifier);
  m.define("def forward(self, x):\n" + NormalizeStatement() +
           "    x = self.features.forward(x)\n"
           "    x = torch.flatten(x, 1)\n"
           "    return self.classifier.forward(x)\n");
  return m;
}

// ResNet basic block: conv3x3-BN-ReLU, conv3x3-BN, plus the input (through a 1x1 conv-BN
// "downsample" when the shape changes), then ReLU.
Module BasicBlock(ModelBuilder* b, int64_t in, int64_t out, int64_t stride) {
  Module m = b->NewModule("BasicBlock");
  m.register_module("conv1", b->Conv3x3(in, out, stride));
  m.register_module("bn1", b->BatchNorm(out));
  m.register_module("conv2", b->Conv3x3(out, out, 1));
  m.register_module("bn2", b->BatchNorm(out));
  std::string shortcut = "x";
  if (stride != 1 || in != out) {
    Module down = b->NewModule("Downsample");
    down.register_module("0", b->Conv1x1(in, out, stride));
    down.register_module("1", b->BatchNorm(out));
    down.define("def forward(self, x):\n    return " + Child("1") + ".forward(" + Child("0") +
                ".forward(x))\n");
    m.register_module("downsample", down);
    shortcut = "self.downsample.forward(x)";
  }
  m.define(
      "def forward(self, x):\n"
      "    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
      "    out = self.bn2.forward(self.conv2.forward(out))\n"
      "    out = out + " + shortcut + "\n"
      "    return torch.relu(out)\n");
  return m;
}

// ResNet-20 as in He et al. for CIFAR: 3 stages of 3 basic blocks, widths 16/32/64,
// stride 2 at the first block of stages 2 and 3. The stem convolution has stride 2 to keep
// training cheap on a CPU: 28x28 -> 14 -> 14 -> 7 -> 4 -> global pool.
Module BuildResNet20(ModelBuilder* b) {
  Module m = b->NewModule("ResNet");
  m.register_module("conv1", b->Conv3x3(1, 16, 2));
  m.register_module("bn1", b->BatchNorm(16));
  int64_t in = 16;
  const int64_t widths[] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage) {
    Module layer = b->NewModule("Stage");
    std::string src = "def forward(self, x):\n";
    for (int i = 0; i < 3; ++i) {
      int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      std::string name = std::to_string(i);
      layer.register_module(name, BasicBlock(b, in, widths[stage], stride));
      src += "    x = " + Child(name) + ".forward(x)\n";
      in = widths[stage];
    }
    layer.define(src + "    return x\n");
    m.register_module("layer" + std::to_string(stage + 1), layer);
  }
  m.register_module("fc", b->Linear(in, kZooClasses));
  m.define("def forward(self, x):\n" + NormalizeStatement() +
           "    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
           "    x = self.layer3.forward(self.layer2.forward(self.layer1.forward(x)))\n"
           "    x = torch.adaptive_avg_pool2d(x, [1, 1])\n"
           "    x = torch.flatten(x, 1)\n"
           "    return self.fc.forward(x)\n");
  return m;
}

// MobileNetV2 inverted residual: 1x1 expand conv-BN-ReLU6 (absent when expand == 1),
// 3x3 depthwise conv-BN-ReLU6, 1x1 project conv-BN, plus the input when stride is 1 and
// the channel count is kept. Names follow timm: conv_pw/bn1, conv_dw/bn2, conv_pwl/bn3.
Module InvertedResidual(ModelBuilder* b, int64_t in, int64_t out, int64_t stride,
                        int64_t expand) {
  Module m = b->NewModule("InvertedResidual");
  int64_t hidden = in * expand;
  std::string src = "def forward(self, x):\n    out = x\n";
  if (expand != 1) {
    m.register_module("conv_pw", b->Conv1x1(in, hidden, 1));
    m.register_module("bn1", b->BatchNorm(hidden));
    src += "    out = torch.hardtanh(self.bn1.forward(self.conv_pw.forward(out)), 0.0, 6.0)\n";
  }
  m.register_module("conv_dw", b->DepthwiseConv3x3(hidden, stride));
  m.register_module("bn2", b->BatchNorm(hidden));
  m.register_module("conv_pwl", b->Conv1x1(hidden, out, 1));
  m.register_module("bn3", b->BatchNorm(out));
  src +=
      "    out = torch.hardtanh(self.bn2.forward(self.conv_dw.forward(out)), 0.0, 6.0)\n"
      "    out = self.bn3.forward(self.conv_pwl.forward(out))\n";
  src += (stride == 1 && in == out) ? "    return out + x\n" : "    return out\n";
  m.define(src);
  return m;
}

// MobileNetV2-shaped, scaled to 28x28: stem conv3x3-BN-ReLU6 (16 channels, stride 2),
// seven inverted residual blocks (14 -> 7 -> 4), 1x1 head conv-BN-ReLU6 to 256, global
// pool, linear.
Module BuildMobileNetV2(ModelBuilder* b) {
  struct Stage {
    int64_t expand, channels, blocks, stride;
  };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 2, 2}, {6, 64, 2, 1}};
  const int64_t head = 256;

  Module m = b->NewModule("MobileNetV2");
  m.register_module("conv_stem", b->Conv3x3(1, 16, 2));
  m.register_module("bn1", b->BatchNorm(16));
  Module blocks = b->NewModule("Blocks");
  std::string src = "def forward(self, x):\n";
  int64_t in = 16, index = 0;
  for (const Stage& s : stages) {
    for (int64_t i = 0; i < s.blocks; ++i) {
      std::string name = std::to_string(index++);
      blocks.register_module(name,
                             InvertedResidual(b, in, s.channels, i == 0 ? s.stride : 1, s.expand));
      src += "    x = " + Child(name) + ".forward(x)\n";
      in = s.channels;
    }
  }
  blocks.define(src + "    return x\n");
  m.register_module("blocks", blocks);
  m.register_module("conv_head", b->Conv1x1(in, head, 1));
  m.register_module("bn2", b->BatchNorm(head));
  m.register_module("classifier", b->Linear(head, kZooClasses));
  m.define("def forward(self, x):\n" + NormalizeStatement() +
           "    x = torch.hardtanh(self.bn1.forward(self.conv_stem.forward(x)), 0.0, 6.0)\n"
           "    x = self.blocks.forward(x)\n"
           "    x = torch.hardtanh(self.bn2.forward(self.conv_head.forward(x)), 0.0, 6.0)\n"
           "    x = torch.adaptive_avg_pool2d(x, [1, 1])\n"
           "    x = torch.flatten(x, 1)\n"
           "    return self.classifier.forward(x)\n");
  return m;
}

struct ZooEntry {
  const char* name;
  Module (*build)(ModelBuilder*);
};

const ZooEntry kZoo[] = {
    {"vgg", BuildVgg},
    {"resnet20", BuildResNet20},
    {"mobilenetv2", BuildMobileNetV2},
};

}  // namespace

std::vector<int64_t> ZooInputShape() { return {1, 1, 28, 28}; }

std::vector<std::string> ZooModelNames() {
  std::vector<std::string> names;
  for (const ZooEntry& e : kZoo) names.emplace_back(e.name);
  return names;
}

StatusOr<torch::jit::Module> BuildZooModel(const std::string& name, uint64_t seed) {
  for (const ZooEntry& e : kZoo) {
    if (name != e.name) continue;
    try {
      ModelBuilder builder(seed);
      Module m = e.build(&builder);
      m.train(true);
      return m;
    } catch (const c10::Error& err) {
      return Status::Internal("building zoo model " + name + ": " + err.what_without_backtrace());
    }
  }
  std::string known;
  for (const std::string& n : ZooModelNames()) known += (known.empty() ? "" : ", ") + n;
  return Status::NotFound("no zoo model named '" + name + "' (known: " + known + ")");
}

int64_t CountParameters(const torch::jit::Module& module) {
  int64_t total = 0;
  for (const torch::Tensor& p : module.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

}  // namespace acs
