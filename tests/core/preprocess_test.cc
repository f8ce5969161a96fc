// Preprocessing specs: JSON round trip, errors that name the step, and each transform's
// pixels (torchvision's semantics: shorter-side resize, centre crop offsets, pad orders,
// 8-bit values before to_tensor).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/dataset.h"
#include "core/preprocess.h"

namespace acs {
namespace {

PreprocessSpec Spec(const std::string& json) {
  StatusOr<PreprocessSpec> spec = PreprocessSpec::Parse(json);
  EXPECT_TRUE(spec.ok()) << json << ": " << spec.status().ToString();
  return spec.ok() ? *spec : PreprocessSpec{};
}

void ExpectRefused(const std::string& json, const std::string& words) {
  StatusOr<PreprocessSpec> spec = PreprocessSpec::Parse(json);
  ASSERT_FALSE(spec.ok()) << json;
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find(words), std::string::npos) << spec.status().message();
}

TEST(PreprocessSpecTest, RoundTripsThroughJsonTextAndFile) {
  const std::string text =
      R"([{"op": "resize", "size": 36}, {"op": "center_crop", "size": [32, 30]}, {"op": "pad", "padding": [1, 2],)"
      R"( "fill": 7}, {"op": "grayscale_to_rgb"}, {"op": "to_tensor"},)"
      R"( {"op": "normalize", "mean": [0.5, 0.4, 0.3], "std": 0.25}])";
  const PreprocessSpec spec = Spec(text);
  ASSERT_EQ(spec.steps.size(), 6u);
  EXPECT_EQ(spec.steps[0].size, (std::vector<int64_t>{36}));
  EXPECT_EQ(spec.steps[2].PadSides(), (std::array<int64_t, 4>{1, 2, 1, 2}));
  EXPECT_EQ(spec.steps[2].fill, 7);
  EXPECT_EQ(spec.steps[3].channels, 3);
  EXPECT_EQ(spec.steps[5].std, (std::vector<double>{0.25}));
  EXPECT_TRUE(spec.has_to_tensor());
  StatusOr<PreprocessSpec> again = PreprocessSpec::FromJson(spec.ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), spec.ToJson());

  const std::filesystem::path file = std::filesystem::temp_directory_path() / "acs_preprocess_spec.json";
  std::ofstream(file) << spec.ToJson().dump(2);
  EXPECT_EQ(Spec(file.string()).ToJson(), spec.ToJson());
  std::filesystem::remove(file);
  EXPECT_TRUE(Spec("[]").empty());
}

TEST(PreprocessSpecTest, RefusesMalformedStepsNamingThem) {
  ExpectRefused(R"({"op": "resize"})", "a JSON list of steps");
  ExpectRefused(R"([{"op": "resize", "size": 32}, {"op": "blur"}])", "step 2 (blur): unknown op \"blur\"");
  ExpectRefused(R"([{"op": "resize", "size": 32, "interpolation": "nearest"}])", "unknown key \"interpolation\"");
  ExpectRefused(R"([{"op": "resize"}])", "step 1 (resize): needs \"size\"");
  ExpectRefused(R"([{"op": "resize", "size": [0, 4]}])", "size must be");
  ExpectRefused(R"([{"op": "center_crop", "size": [1, 2, 3]}])", "size must be");
  ExpectRefused(R"([{"op": "pad", "padding": [1, 2, 3]}])", "padding must be");
  ExpectRefused(R"([{"op": "pad", "padding": -1}])", "padding must be");
  ExpectRefused(R"([{"op": "normalize", "mean": [0.5, 0.5], "std": [1, 1, 1]}])", "same length");
  ExpectRefused(R"([{"op": "normalize", "mean": 0.5, "std": 0}])", "std values must be positive");
  ExpectRefused(R"([{"op": "to_tensor"}, {"op": "to_tensor"}])", "step 2 (to_tensor): to_tensor may come only once");
  ExpectRefused(R"([{"op": "normalize", "mean": 0.5, "std": 1}, {"op": "to_tensor"}])",
                "step 1 (normalize): normalize comes after to_tensor");
  ExpectRefused(R"([{"size": 3}])", "needs \"op\"");
  ExpectRefused("[1, 2", "not valid JSON");
  ExpectRefused("/nonexistent/spec.json", "neither a JSON list nor a readable file");
}

TEST(PreprocessSpecTest, ShapesFollowTorchvision) {
  // Resize(int) scales the shorter side and truncates the longer: 28x40 -> 14x20; 40x28 -> 20x14.
  auto shapes = PreprocessedShapes({1, 28, 40}, Spec(R"([{"op": "resize", "size": 14}])"));
  ASSERT_TRUE(shapes.ok());
  EXPECT_EQ(shapes->back(), (std::vector<int64_t>{1, 14, 20}));
  shapes = PreprocessedShapes({1, 40, 28}, Spec(R"([{"op": "resize", "size": 14}])"));
  EXPECT_EQ(shapes->back(), (std::vector<int64_t>{1, 20, 14}));
  shapes = PreprocessedShapes({1, 28, 28}, Spec(R"([{"op": "resize", "size": 32}, {"op": "grayscale_to_rgb"},)"
                                                R"( {"op": "pad", "padding": [1, 2, 3, 4]}])"));
  ASSERT_TRUE(shapes.ok());
  EXPECT_EQ(shapes->back(), (std::vector<int64_t>{3, 38, 36}));
  // Steps that do not fit the images.
  shapes = PreprocessedShapes({2, 8, 8}, Spec(R"([{"op": "grayscale_to_rgb"}])"));
  EXPECT_EQ(shapes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(shapes.status().message().find("step 1 (grayscale_to_rgb)"), std::string::npos);
  shapes = PreprocessedShapes({1, 8, 8}, Spec(R"([{"op": "normalize", "mean": [1, 2, 3], "std": [1, 1, 1]}])"));
  EXPECT_NE(shapes.status().message().find("3 values for 1 channels"), std::string::npos);
  // Past a byte limit, before anything is made.
  shapes = PreprocessedShapes({1, 28, 28}, Spec(R"([{"op": "resize", "size": 60000}])"), 2, int64_t{1} << 30);
  EXPECT_EQ(shapes.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(shapes.status().message().find("2 images of 1x60000x60000 after resizing come to"), std::string::npos)
      << shapes.status().message();
}

TEST(ApplyPreprocessTest, CropsPadsAndNormalizesLikeTorchvision) {
  const torch::Tensor image = torch::arange(25, torch::kFloat).view({1, 1, 5, 5}) / 255;
  // CenterCrop(3) of 5x5: top = left = round(1.0) = 1.
  auto out = ApplyPreprocess(image, Spec(R"([{"op": "center_crop", "size": 3}])"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->equal(image.narrow(2, 1, 3).narrow(3, 1, 3)));
  // CenterCrop(2) of 5x5: round(1.5) = 2 (ties to even, as Python).
  out = ApplyPreprocess(image, Spec(R"([{"op": "center_crop", "size": 2}])"));
  EXPECT_TRUE(out->equal(image.narrow(2, 2, 2).narrow(3, 2, 2)));
  // A crop larger than the image pads it with zeros first: 5 -> 8 is 1 left/top, 2 right/bottom.
  out = ApplyPreprocess(image, Spec(R"([{"op": "center_crop", "size": 8}])"));
  ASSERT_EQ(out->sizes(), (std::vector<int64_t>{1, 1, 8, 8}));
  EXPECT_TRUE(out->narrow(2, 1, 5).narrow(3, 1, 5).equal(image));
  EXPECT_EQ(out->sum().item<float>(), image.sum().item<float>());
  // Pad [left, top, right, bottom] with a fill in pixel values before to_tensor.
  out = ApplyPreprocess(image, Spec(R"([{"op": "pad", "padding": [1, 0, 2, 3], "fill": 51}, {"op": "to_tensor"}])"));
  ASSERT_EQ(out->sizes(), (std::vector<int64_t>{1, 1, 8, 8}));
  EXPECT_FLOAT_EQ((*out)[0][0][0][0].item<float>(), 0.2f);
  EXPECT_FLOAT_EQ((*out)[0][0][7][7].item<float>(), 0.2f);
  EXPECT_TRUE(out->narrow(2, 0, 5).narrow(3, 1, 5).allclose(image));
  // Grey to three channels, then per-channel normalization.
  out = ApplyPreprocess(image, Spec(R"([{"op": "grayscale_to_rgb"}, {"op": "normalize", "mean": [0, 0.5, 1],)"
                                    R"( "std": [1, 2, 0.5]}])"));
  ASSERT_EQ(out->sizes(), (std::vector<int64_t>{1, 3, 5, 5}));
  EXPECT_TRUE((*out)[0][0].allclose(image[0][0]));
  EXPECT_TRUE((*out)[0][1].allclose((image[0][0] - 0.5) / 2));
  EXPECT_TRUE((*out)[0][2].allclose((image[0][0] - 1) / 0.5));
}

TEST(ApplyPreprocessTest, ResamplesOnWholePixelValuesBeforeToTensor) {
  torch::manual_seed(5);
  const torch::Tensor bytes = torch::randint(0, 256, {2, 1, 28, 28}).to(torch::kFloat);
  const torch::Tensor image = bytes / 255;
  // Before to_tensor the resized values are whole 0..255 values, as in an 8-bit PIL image.
  auto out = ApplyPreprocess(image, Spec(R"([{"op": "resize", "size": 32}, {"op": "to_tensor"}])"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const torch::Tensor scaled = *out * 255;
  EXPECT_TRUE(scaled.allclose(scaled.round(), 0, 1e-3));
  EXPECT_GE(out->min().item<float>(), 0.0f);
  EXPECT_LE(out->max().item<float>(), 1.0f);
  // Without to_tensor the values stay as resampled, and within a level of the 8-bit path.
  auto tensor_path = ApplyPreprocess(image, Spec(R"([{"op": "resize", "size": 32}])"));
  ASSERT_TRUE(tensor_path.ok());
  EXPECT_FALSE((*tensor_path * 255).allclose((*tensor_path * 255).round(), 0, 1e-3));
  EXPECT_LE((*tensor_path - *out).abs().max().item<float>(), 0.5f / 255 + 1e-6f);
  // Shrinking is antialiased, as PIL: every 4th column lit, 4x narrower, averages about a
  // quarter (a plain bilinear resize samples between columns 1 and 2, 5 and 6: 0).
  const torch::Tensor columns =
      (torch::arange(8).remainder(4) == 0).to(torch::kFloat).view({1, 1, 1, 8}).expand({1, 1, 8, 8}).contiguous();
  auto narrow = ApplyPreprocess(columns, Spec(R"([{"op": "resize", "size": [8, 2]}])"));
  ASSERT_TRUE(narrow.ok());
  EXPECT_GT(narrow->min().item<float>(), 0.1f);
  EXPECT_LT(narrow->max().item<float>(), 0.4f);
}

TEST(ApplyPreprocessTest, DatasetOptionsTakeASpecOrTheFixedOrderNotBoth) {
  const torch::Tensor grey = torch::rand({2, 1, 28, 28});
  DatasetOptions options;
  options.preprocess = Spec(R"([{"op": "resize", "size": 32}, {"op": "grayscale_to_rgb"}])");
  options = FitToInput({1, 3, 32, 32}, options);
  EXPECT_TRUE(options.resize.empty());  // the spec makes the input itself
  EXPECT_EQ(options.input_chw, (std::vector<int64_t>{3, 32, 32}));
  auto out = TransformImages(grey, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  // A spec that does not make the model's input.
  DatasetOptions wrong = FitToInput({1, 3, 64, 64}, options);
  out = TransformImages(grey, wrong);
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("makes images of 3x32x32, but the model's input is 3x64x64"),
            std::string::npos)
      << out.status().message();
  options.mean = {0.5};
  options.std = {0.25};
  EXPECT_NE(TransformImages(grey, options).status().message().find("not both"), std::string::npos);
}

}  // namespace
}  // namespace acs
