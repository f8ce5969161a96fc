// int8 conv2d (uint8 im2col / pointwise + int8 GEMM) and int8 depthwise conv on every ISA:
// bit-identical to the scalar table, and within the three float roundings of the dequantization (3e-7 relative)
// of a direct convolution computed exactly on the quantized values.
#include "devices/kernels/int8_conv2d.h"
#include "devices/kernels/int8_depthwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/devices/kernel_test_util.h"

namespace acs::kernels {
namespace {

constexpr double kDequantTol = 3e-7;

struct Case {
  Conv2dGeometry g;
  int64_t out_channels;
};

Conv2dGeometry Geo(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t ph, int64_t pw,
                   int64_t dilation = 1) {
  Conv2dGeometry g;
  g.channels = c;
  g.height = h;
  g.width = w;
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.stride_h = g.stride_w = stride;
  g.pad_h = ph;
  g.pad_w = pw;
  g.dilation_h = g.dilation_w = dilation;
  return g;
}

const std::vector<Case> kCases = {
    {Geo(3, 9, 11, 3, 3, 1, 1, 1), 13},   {Geo(8, 7, 7, 1, 1, 1, 0, 0), 5},    {Geo(16, 10, 9, 1, 1, 2, 0, 0), 7},
    {Geo(5, 12, 13, 3, 3, 2, 1, 1), 11},  {Geo(4, 11, 8, 5, 5, 1, 2, 2, 2), 9}, {Geo(7, 6, 15, 3, 1, 1, 1, 0), 6},
    {Geo(33, 14, 14, 3, 3, 1, 1, 1), 17}, {Geo(2, 3, 3, 3, 3, 1, 0, 0), 3},    {Geo(64, 28, 28, 3, 3, 1, 1, 1), 20},
    {Geo(24, 20, 20, 1, 1, 1, 0, 0), 31},
};

// out[b, o, p] from the definition on quantized values; padded taps hold the zero point,
// so they add nothing.
testing::Reference DirectConv(const Conv2dGeometry& g, const Int8Weights& w, const std::vector<uint8_t>& in,
                              int64_t batch, const ActivationQuant& q, const std::vector<float>& bias, bool relu) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w(), p = oh_n * ow_n, o_n = w.rows;
  testing::Reference ref{std::vector<double>(batch * o_n * p), std::vector<double>(batch * o_n * p)};
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t o = 0; o < o_n; ++o) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          int64_t acc = 0;
          testing::ForEachTap(g, b, oh, ow, [&](int64_t k, int64_t x) {
            acc += int64_t{w.at(o, k)} * (int64_t{in[x]} - q.zero_point);
          });
          const double dq = static_cast<double>(w.scales[o]) * q.scale * static_cast<double>(acc);
          const double bo = bias.empty() ? 0.0 : bias[o];
          const size_t at = (b * o_n + o) * p + oh * ow_n + ow;
          ref.y[at] = relu ? std::max(dq + bo, 0.0) : dq + bo;
          ref.bound[at] = kDequantTol * (std::abs(dq) + std::abs(bo)) + 1e-30;
        }
      }
    }
  }
  return ref;
}

class Int8Conv2dTest : public ::testing::TestWithParam<Isa> {};

TEST_P(Int8Conv2dTest, MatchesScalarExactlyAndDirectConvolution) {
  const Int8KernelTable& table = *Int8KernelsFor(GetParam());
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(21);
  for (size_t n = 0; n < kCases.size(); ++n) {
    const Case& c = kCases[n];
    const Conv2dGeometry& g = c.g;
    SCOPED_TRACE(std::string(IsaName(GetParam())) + " case " + std::to_string(n));
    const int64_t batch = n % 3 == 0 ? 2 : 1;
    const std::vector<float> dense = testing::RandomVector(c.out_channels * g.k(), rng);
    const Int8Weights w = QuantizeInt8Weights(DenseView{dense.data(), c.out_channels, g.k()}).value();
    const std::vector<float> bias = n % 2 ? testing::RandomVector(c.out_channels, rng) : std::vector<float>{};
    Int8Conv2dOptions conv_options;
    conv_options.input_quant = ChooseActivationQuant(n % 4 == 1 ? 0.0f : -1.0f, 1.0f);  // zero point 0 or 128
    conv_options.relu = n % 3 == 1;
    const int64_t in_size = batch * g.channels * g.height * g.width;
    const int64_t out_size = batch * c.out_channels * g.p();
    std::vector<float> input = testing::RandomVector(in_size, rng);
    input[0] = 5.0f;  // clamps to 255
    std::vector<uint8_t> quantized(in_size);
    QuantizeActivations(input.data(), in_size, conv_options.input_quant, quantized.data(), &scalar);
    const testing::Reference ref =
        DirectConv(g, w, quantized, batch, conv_options.input_quant, bias, conv_options.relu);
    for (ConvLowering lowering : {ConvLowering::kIm2col, ConvLowering::kAuto}) {
      SCOPED_TRACE(lowering == ConvLowering::kIm2col ? "im2col" : "auto (direct)");
      conv_options.lowering = lowering;
      const Int8Conv2d conv = Int8Conv2d::Create(w, g, bias, conv_options).value();
      EXPECT_EQ(conv.lowering(), lowering == ConvLowering::kIm2col ? ConvLowering::kIm2col : ConvLowering::kDirect);

      std::vector<float> y(out_size), y_quantized(out_size), y_scalar(out_size), y_threads(out_size);
      Int8Options options;
      options.kernels = &table;
      ASSERT_TRUE(conv.Run(input.data(), batch, y.data(), options).ok());
      ASSERT_TRUE(conv.RunQuantized(quantized.data(), batch, y_quantized.data(), options).ok());
      options.threads = 2;
      options.min_macs_per_thread = 1;
      ASSERT_TRUE(conv.Run(input.data(), batch, y_threads.data(), options).ok());
      Int8Options scalar_options;
      scalar_options.kernels = &scalar;
      ASSERT_TRUE(conv.Run(input.data(), batch, y_scalar.data(), scalar_options).ok());

      EXPECT_EQ(std::memcmp(y.data(), y_quantized.data(), out_size * sizeof(float)), 0) << "Run vs RunQuantized";
      EXPECT_EQ(std::memcmp(y.data(), y_threads.data(), out_size * sizeof(float)), 0) << "1 vs 2 threads";
      int mismatches = 0;
      for (int64_t i = 0; i < out_size; ++i) {
        if (std::memcmp(&y[i], &y_scalar[i], sizeof(float)) != 0 && ++mismatches <= 3) {
          ADD_FAILURE() << "y[" << i << "] = " << y[i] << ", scalar table " << y_scalar[i];
        }
      }
      testing::ExpectNear(ref, y.data(), 1, out_size, out_size, "vs direct convolution");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8Conv2dTest, ::testing::ValuesIn(Int8SupportedIsas()), testing::IsaParamName);

TEST(Int8Conv2dCreateTest, RejectsBadArguments) {
  const Conv2dGeometry g = Geo(2, 4, 4, 3, 3, 1, 1, 1);
  const std::vector<float> dense(3 * 18, 0.5f);
  const Int8Weights w = QuantizeInt8Weights(DenseView{dense.data(), 3, 18}).value();
  EXPECT_TRUE(Int8Conv2d::Create(w, g).ok());
  const Int8Weights narrow = QuantizeInt8Weights(DenseView{dense.data(), 3, 17}).value();
  EXPECT_EQ(Int8Conv2d::Create(narrow, g).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Int8Conv2d::Create(w, g, {1.0f}).status().code(), StatusCode::kInvalidArgument);
  Int8Conv2dOptions bad;
  bad.input_quant.scale = -1.0f;
  EXPECT_EQ(Int8Conv2d::Create(w, g, {}, bad).status().code(), StatusCode::kInvalidArgument);
  const Int8Conv2d conv = Int8Conv2d::Create(w, g).value();
  std::vector<float> in(32), out(48);
  EXPECT_EQ(conv.Run(nullptr, 1, out.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(conv.Run(in.data(), 0, out.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(conv.Run(in.data(), 1, out.data()).ok());
}

TEST(Im2colU8Test, PadsWithTheGivenValue) {
  const Conv2dGeometry g = Geo(1, 2, 2, 3, 3, 1, 1, 1);
  const std::vector<uint8_t> image = {1, 2, 3, 4};
  std::vector<uint8_t> cols(9 * 4);
  Im2colU8(g, image.data(), 0, 4, 200, cols.data(), 4);
  // Tap (0, 0) sees the input only at output (1, 1); the centre tap sees every pixel.
  EXPECT_EQ((std::vector<uint8_t>(cols.begin(), cols.begin() + 4)), (std::vector<uint8_t>{200, 200, 200, 1}));
  EXPECT_EQ((std::vector<uint8_t>(cols.begin() + 16, cols.begin() + 20)), (std::vector<uint8_t>{1, 2, 3, 4}));
}

// Depthwise: 33, 40 and 48 channels fill whole and partial vectors of 16 channels (and of 8
// on AVX2); small maps as EfficientNet's at 32x32 inputs.
const std::vector<Conv2dGeometry> kDepthwiseCases = {
    Geo(5, 9, 11, 3, 3, 1, 1, 1), Geo(7, 12, 13, 3, 3, 2, 1, 1), Geo(4, 8, 8, 5, 5, 2, 2, 2),
    Geo(3, 6, 17, 5, 5, 1, 2, 2), Geo(2, 3, 3, 3, 3, 1, 0, 0),   Geo(33, 20, 21, 3, 3, 1, 1, 1),
    Geo(40, 2, 2, 5, 5, 1, 2, 2), Geo(48, 1, 1, 3, 3, 1, 1, 1),  Geo(3, 7, 7, 7, 7, 2, 3, 3),
    Geo(9, 4, 4, 5, 5, 2, 2, 2),  Geo(3, 10, 9, 3, 5, 1, 0, 2),  Geo(48, 4, 4, 3, 3, 2, 1, 1),
};

// Each (image, channel) plane convolved on its own: ForEachTap on a one-channel geometry
// with the plane as the image.
testing::Reference DirectDepthwise(const Conv2dGeometry& g, const Int8Weights& w, const std::vector<uint8_t>& in,
                                   int64_t batch, const ActivationQuant& q, const std::vector<float>& bias,
                                   float lo, float hi) {
  Conv2dGeometry one = g;
  one.channels = 1;
  const int64_t p = g.out_h() * g.out_w(), items = batch * g.channels;
  testing::Reference ref{std::vector<double>(items * p), std::vector<double>(items * p)};
  for (int64_t item = 0; item < items; ++item) {
    const int64_t c = item % g.channels;
    for (int64_t oh = 0; oh < g.out_h(); ++oh) {
      for (int64_t ow = 0; ow < g.out_w(); ++ow) {
        int64_t acc = 0;
        testing::ForEachTap(one, item, oh, ow, [&](int64_t k, int64_t x) {
          acc += int64_t{w.at(c, k)} * (int64_t{in[x]} - q.zero_point);
        });
        const double dq = static_cast<double>(w.scales[c]) * q.scale * static_cast<double>(acc);
        const double bc = bias.empty() ? 0.0 : bias[c];
        const size_t at = item * p + oh * g.out_w() + ow;
        ref.y[at] = std::min(std::max(dq + bc, static_cast<double>(lo)), static_cast<double>(hi));
        ref.bound[at] = kDequantTol * (std::abs(dq) + std::abs(bc)) + 1e-30;
      }
    }
  }
  return ref;
}

class Int8DepthwiseTest : public ::testing::TestWithParam<Isa> {};

TEST_P(Int8DepthwiseTest, MatchesScalarExactlyAndDirectConvolution) {
  const Int8KernelTable& table = *Int8KernelsFor(GetParam());
  const Int8KernelTable& scalar = *Int8KernelsFor(Isa::kScalar);
  std::mt19937 rng(23);
  for (size_t n = 0; n < kDepthwiseCases.size(); ++n) {
    const Conv2dGeometry& g = kDepthwiseCases[n];
    SCOPED_TRACE(std::string(IsaName(GetParam())) + " depthwise case " + std::to_string(n));
    const int64_t batch = n % 3 == 0 ? 2 : 1, taps = g.kernel_h * g.kernel_w;
    const std::vector<float> dense = testing::RandomVector(g.channels * taps, rng);
    const Int8Weights w = QuantizeInt8Weights(DenseView{dense.data(), g.channels, taps}).value();
    const std::vector<float> bias = n % 2 ? testing::RandomVector(g.channels, rng) : std::vector<float>{};
    Int8DepthwiseOptions options;
    options.input_quant = ChooseActivationQuant(n % 4 == 1 ? 0.0f : -1.0f, 1.0f);  // zero point 0 or 128
    if (n % 3 == 1) {  // a fused relu6
      options.min = 0.0f;
      options.max = 6.0f * static_cast<float>(w.scales[0]);
    }
    const int64_t in_size = batch * g.channels * g.height * g.width, out_size = batch * g.channels * g.p();
    std::vector<float> input = testing::RandomVector(in_size, rng);
    input[0] = 5.0f;  // clamps to 255
    std::vector<uint8_t> quantized(in_size);
    QuantizeActivations(input.data(), in_size, options.input_quant, quantized.data(), &scalar);
    const testing::Reference ref =
        DirectDepthwise(g, w, quantized, batch, options.input_quant, bias, options.min, options.max);
    const Int8DepthwiseConv2d conv = Int8DepthwiseConv2d::Create(w, g, bias, options).value();
    std::vector<float> y(out_size), y_again(out_size), y_scalar(out_size), y_threads(out_size);
    Int8Options run;
    run.kernels = &table;
    ASSERT_TRUE(conv.Run(input.data(), batch, y.data(), run).ok());
    ASSERT_TRUE(conv.Run(input.data(), batch, y_again.data(), run).ok());  // the reused plane
    run.threads = 2;
    run.min_macs_per_thread = 1;
    ASSERT_TRUE(conv.Run(input.data(), batch, y_threads.data(), run).ok());
    Int8Options scalar_run;
    scalar_run.kernels = &scalar;
    ASSERT_TRUE(conv.Run(input.data(), batch, y_scalar.data(), scalar_run).ok());
    EXPECT_EQ(std::memcmp(y.data(), y_again.data(), out_size * sizeof(float)), 0) << "second run";
    EXPECT_EQ(std::memcmp(y.data(), y_threads.data(), out_size * sizeof(float)), 0) << "1 vs 2 threads";
    EXPECT_EQ(std::memcmp(y.data(), y_scalar.data(), out_size * sizeof(float)), 0) << "vs the scalar table";
    testing::ExpectNear(ref, y.data(), 1, out_size, out_size, "vs direct convolution");
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8DepthwiseTest, ::testing::ValuesIn(Int8SupportedIsas()), testing::IsaParamName);

TEST(Int8DepthwiseCreateTest, RejectsBadArguments) {
  const Conv2dGeometry g = Geo(2, 4, 4, 3, 3, 1, 1, 1);
  const std::vector<float> dense(2 * 9, 0.5f);
  const Int8Weights w = QuantizeInt8Weights(DenseView{dense.data(), 2, 9}).value();
  EXPECT_TRUE(Int8DepthwiseConv2d::Create(w, g).ok());
  const Int8Weights wide = QuantizeInt8Weights(DenseView{dense.data(), 2, 8}).value();
  EXPECT_EQ(Int8DepthwiseConv2d::Create(wide, g).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Int8DepthwiseConv2d::Create(w, g, {1.0f}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Int8DepthwiseConv2d::Create(w, Geo(2, 4, 4, 3, 3, 3, 1, 1)).status().code(),
            StatusCode::kInvalidArgument);  // stride 3
  EXPECT_EQ(Int8DepthwiseConv2d::Create(w, Geo(2, 6, 6, 3, 3, 1, 2, 2, 2)).status().code(),
            StatusCode::kInvalidArgument);  // dilation 2
  Int8DepthwiseOptions bad;
  bad.input_quant.scale = -1.0f;
  EXPECT_EQ(Int8DepthwiseConv2d::Create(w, g, {}, bad).status().code(), StatusCode::kInvalidArgument);
  const Int8DepthwiseConv2d conv = Int8DepthwiseConv2d::Create(w, g).value();
  std::vector<float> in(32), out(32);
  EXPECT_EQ(conv.Run(nullptr, 1, out.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(conv.Run(in.data(), 0, out.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(conv.Run(in.data(), 1, out.data()).ok());
}

}  // namespace
}  // namespace acs::kernels
