// RuntimeModel::Save: a compiled model with each acs_rt class saves, loads with
// torch::jit::load (the classes registered by acs_runtime, linked in) and computes what the
// in-memory model does; the classes' saved states (packed_state.h) round-trip and bad ones
// are refused with errors naming the class.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <string>
#include <vector>

#include "devices/runtime/packed_state.h"
#include "tests/devices/runtime_test_util.h"

namespace acs::runtime {
namespace {

using runtime_test::AllSparse;
using runtime_test::Build;
using runtime_test::Built;
using runtime_test::Import;
using runtime_test::LowPrecisionPolicy;

int CountKind(torch::jit::Module& m, const char* kind) {
  int n = 0;
  for (torch::jit::Node* node : m.get_method("forward").graph()->nodes()) {
    n += node->kind() == c10::Symbol::fromQualString(kind);
  }
  return n;
}

// Saves b.rt, loads it back and expects the loaded module to run `ops` as b.rt does and to
// compute b.rt's output on x within float tolerance.
void ExpectSavedModelMatches(Built& b, const std::vector<const char*>& ops, const torch::Tensor& x,
                             const std::string& what) {
  for (const char* op : ops) ASSERT_GE(b.rt.CountNodes(op), 1) << what << ": " << op;
  const std::string path = test_models::TempPath(".acs.pt");
  ASSERT_TRUE(b.rt.Save(path).ok()) << what;
  torch::jit::Module loaded = torch::jit::load(path);
  for (const char* op : ops) EXPECT_EQ(CountKind(loaded, op), b.rt.CountNodes(op)) << what << ": " << op;
  StatusOr<torch::Tensor> expect = b.rt.Forward(x);
  ASSERT_TRUE(expect.ok()) << what << ": " << expect.status().ToString();
  torch::NoGradGuard no_grad;
  const torch::Tensor got = loaded.forward({x}).toTensor();
  ASSERT_EQ(got.sizes(), expect->sizes()) << what;
  const double scale = std::max(1.0, expect->abs().max().item<double>());
  EXPECT_LE((got - *expect).abs().max().item<double>(), 1e-5 * scale) << what;
}

Policy SparsePolicy() {
  Policy p;
  p.layers["features.conv1"] = LayerConfig{0.5, Pattern::kBlock, 4};
  p.layers["features.conv2"] = LayerConfig{0.5, Pattern::kUnstructured};
  p.layers["classifier.fc1"] = LayerConfig{0.0, Pattern::kNM, 1, 2, 4};
  return p;
}

TEST(RuntimeSaveTest, SparseLayersSaveAndLoad) {
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  for (int threads : {1, 2}) {
    RuntimeOptions options = AllSparse(threads);
    options.optimize_dense = false;
    Built b = Build(*model, SparsePolicy(), options);
    ExpectSavedModelMatches(b, {kSparseConv2dOp, kSparseLinearOp}, torch::randn({3, 3, 16, 16}),
                            "sparse t" + std::to_string(threads));
  }
}

TEST(RuntimeSaveTest, Int8AndInt4LayersSaveAndLoad) {
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  CompressorOptions calibrate;
  calibrate.calibration = torch::rand({8, 3, 16, 16});
  RuntimeOptions options = AllSparse(1);
  options.optimize_dense = false;
  Built b = Build(*model, LowPrecisionPolicy(), options, calibrate);
  ExpectSavedModelMatches(b, {kSparseConv2dOp, kInt8Conv2dOp, kInt8LinearOp, kInt4LinearOp}, calibrate.calibration,
                          "int8");
  ExpectSavedModelMatches(b, {kInt8Conv2dOp}, torch::rand({1, 3, 16, 16}), "int8 batch 1");
}

TEST(RuntimeSaveTest, DepthwiseLayersSaveAndLoad) {
  std::shared_ptr<ImportedModel> model = Import("depthwise");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["block.expand"] = LayerConfig{0.5, Pattern::kBlock, 8};
  RuntimeOptions options = AllSparse(1);
  options.optimize_dense = false;
  Built b = Build(*model, policy, options);
  ExpectSavedModelMatches(b, {kDepthwiseConv2dOp, kSparseConv2dOp}, torch::randn({2, 3, 16, 16}), "depthwise");
}

TEST(RuntimeSaveTest, Int8DepthwiseLayersSaveAndLoad) {
  std::shared_ptr<ImportedModel> model = Import("depthwise");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["block.dw"] = LayerConfig{0.0, Pattern::kDense, 1, 2, 4, Precision::kInt8};
  CompressorOptions calibrate;
  calibrate.calibration = torch::rand({8, 3, 16, 16});
  RuntimeOptions options = AllSparse(1);
  options.optimize_dense = false;
  Built b = Build(*model, policy, options, calibrate);
  ExpectSavedModelMatches(b, {kInt8DepthwiseConv2dOp}, calibrate.calibration, "int8 depthwise");
}

// Dense layers on prepacked oneDNN weights (per layer, or the whole graph optimized for
// inference) are saved as the aten ops they were before, whose oneDNN forms cannot be
// saved: the loaded model runs them as plain LibTorch ops and agrees within the rounding.
TEST(RuntimeSaveTest, DenseLayersOnOneDnnSaveAsAtenOps) {
  std::shared_ptr<ImportedModel> model = Import("residual");
  ASSERT_NE(model, nullptr);
  Policy policy;
  policy.layers["layer1.conv1"] = LayerConfig{0.8, Pattern::kBlock, 4};
  for (bool prepack : {true, false}) {
    RuntimeOptions options = AllSparse(1);
    options.prepack_dense = prepack;
    Built b = Build(*model, policy, options);
    const std::string path = test_models::TempPath(".acs.pt");
    if (prepack) {
      EXPECT_GT(b.rt.CountNodes("mkldnn_prepacked::conv2d_run"), 0);
    } else if (b.rt.dense_optimized()) {
      EXPECT_GT(b.rt.CountNodes("prim::mkldnn_convolution"), 0);
    }
    ASSERT_TRUE(b.rt.Save(path).ok());
    torch::jit::Module loaded = torch::jit::load(path);
    EXPECT_EQ(CountKind(loaded, kSparseConv2dOp), 1);
    EXPECT_EQ(CountKind(loaded, "mkldnn_prepacked::conv2d_run") + CountKind(loaded, "prim::mkldnn_convolution") +
                  CountKind(loaded, "aten::to_mkldnn"),
              0);
    EXPECT_GT(CountKind(loaded, "aten::conv2d") + CountKind(loaded, "aten::_convolution"), 0);
    const torch::Tensor x = torch::randn({2, 3, 16, 16});
    StatusOr<torch::Tensor> expect = b.rt.Forward(x);
    ASSERT_TRUE(expect.ok());
    torch::NoGradGuard no_grad;
    const torch::Tensor got = loaded.forward({x}).toTensor();
    EXPECT_LE((got - *expect).abs().max().item<double>(), 1e-4 * std::max(1.0, expect->abs().max().item<double>()))
        << (prepack ? "prepacked" : "whole graph");
  }
}

TEST(RuntimeSaveTest, SaveErrors) {
  RuntimeModel not_compiled;
  EXPECT_EQ(not_compiled.Save(test_models::TempPath(".acs.pt")).code(), StatusCode::kFailedPrecondition);
  std::shared_ptr<ImportedModel> model = Import("plain");
  ASSERT_NE(model, nullptr);
  Built b = Build(*model, SparsePolicy(), AllSparse(1));
  Status s = b.rt.Save("/nonexistent-dir/x.acs.pt");
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
}

// The class's registered __getstate__ / __setstate__, as torch::jit::load calls them.
class PackedStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PackOptions options;
    options.kernel.kind = KernelKind::kBlockSparse;
    options.kernel.block = 4;
    options.activation = Activation{true, 0.0f, 6.0f, "relu6"};
    options.threads = 2;
    PackedConv::Geometry g;
    g.padding = {1, 1};
    g.height = g.width = 6;
    torch::manual_seed(3);
    weight_ = torch::randn({8, 3, 3, 3}) * (torch::rand({8, 1, 1, 1}) > 0.5);
    StatusOr<c10::intrusive_ptr<PackedConv>> p = PackedConv::Create(weight_, torch::randn({8}), g, options);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    packed_ = *p;
    type_ = c10::getCustomClassType<c10::intrusive_ptr<PackedConv>>();
  }
  c10::IValue GetState() { return type_->getMethod("__getstate__")({c10::IValue(packed_)}); }
  // Runs __setstate__ on `state`; the message of the c10::Error it throws, else "".
  std::string SetState(const c10::IValue& state, c10::intrusive_ptr<PackedConv>* out = nullptr) {
    auto obj = c10::ivalue::Object::create(c10::StrongTypePtr(nullptr, type_), 1);
    try {
      type_->getMethod("__setstate__")({c10::IValue(obj), state});
    } catch (const c10::Error& e) {
      return e.what_without_backtrace();
    }
    if (out != nullptr) *out = c10::IValue(obj).toCustomClass<PackedConv>();
    return "";
  }
  // The state with element i replaced.
  c10::IValue With(size_t i, c10::IValue v) {
    std::vector<c10::IValue> e = GetState().toTupleRef().elements().vec();
    e[i] = std::move(v);
    return c10::ivalue::Tuple::create(std::move(e));
  }

  torch::Tensor weight_;
  c10::intrusive_ptr<PackedConv> packed_;
  c10::ClassTypePtr type_;
};

TEST_F(PackedStateTest, RoundTripsTheCreateInputs) {
  c10::intrusive_ptr<PackedConv> loaded;
  ASSERT_EQ(SetState(GetState(), &loaded), "");
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(torch::equal(loaded->source().weight, weight_));
  EXPECT_EQ(loaded->options().kernel.block, 4);
  EXPECT_EQ(loaded->options().activation.name, "relu6");
  EXPECT_EQ(loaded->options().activation.max, 6.0f);
  EXPECT_EQ(loaded->options().threads, 2);
  EXPECT_EQ(loaded->source().geometry.padding[0], 1);
  const torch::Tensor x = torch::randn({2, 3, 6, 6});
  EXPECT_TRUE(torch::equal(loaded->Run(x), packed_->Run(x)));
}

TEST_F(PackedStateTest, RefusesBadStatesNamingTheClass) {
  EXPECT_NE(SetState(With(0, c10::IValue(int64_t{7})))
                .find("acs_rt.PackedConv: saved with format version 7, this library reads version 1"),
            std::string::npos);
  EXPECT_NE(SetState(c10::IValue(std::string("x"))).find("acs_rt.PackedConv: bad saved state"), std::string::npos);
  EXPECT_NE(SetState(With(1, c10::IValue(1.5))).find("state.weight is a Double, expected Tensor"), std::string::npos)
      << SetState(With(1, c10::IValue(1.5)));
  EXPECT_NE(SetState(With(3, c10::IValue())).find("geometry is not a list of 8 ints"), std::string::npos);
  // A state that Create refuses: the weights do not fit a sparse kernel kind it names.
  const std::vector<c10::IValue> state = GetState().toTupleRef().elements().vec();
  std::vector<c10::IValue> options = state.at(5).toTupleRef().elements().vec();
  options[0] = c10::IValue(std::string("int8"));
  const std::string msg = SetState(With(5, c10::ivalue::Tuple::create(std::move(options))));
  EXPECT_NE(msg.find("acs_rt.PackedConv: the saved layer does not pack: PackedConv needs a sparse kernel"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace acs::runtime
