// The decoded-size limit (DatasetOptions::max_decoded_bytes) in every reader and transform.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <string>

#include "core/dataset.h"
#include "tests/core/dataset_test_util.h"

namespace acs {
namespace {

using namespace dataset_test;

std::string IdxHeaderOnly(uint32_t n, uint32_t h, uint32_t w, size_t zeros) {
  std::string bytes;
  PutU32(&bytes, 0x00000803);
  PutU32(&bytes, n);
  PutU32(&bytes, h);
  PutU32(&bytes, w);
  bytes.append(zeros, '\0');
  return bytes;
}

TEST_F(DatasetTest, GzipBombFailsBeforeItsPixelsAreRead) {
  // 4 KB of zeros behind a header that promises 10^6 images of 60000x60000: 13 million GiB
  // as float32. The limit is checked before any pixel is read, so this is ResourceExhausted
  // (not DataLoss for the missing pixels, nor memory growing while it decodes).
  const std::string bomb = WriteGz("bomb-images-idx3-ubyte.gz", IdxHeaderOnly(1000000, 60000, 60000, 4096));
  ExpectError(LoadDataset(bomb), StatusCode::kResourceExhausted, bomb,
              "1000000 images of 1x60000x60000 decode to 13411045 GiB of float32, past the limit of 4 GiB "
              "(read fewer with a limit/offset)");
  // One image of that size is still past it (Submit's check reads one).
  DatasetOptions one;
  one.limit = 1;
  ExpectError(LoadDataset(bomb, one), StatusCode::kResourceExhausted, bomb,
              "1 images of 1x60000x60000 decode to 13.4 GiB");

  // The same in a directory: the error names the file in it.
  const std::string dir = (fs::path(dir_) / "bombs").string();
  fs::create_directory(dir);
  const std::string inside = (fs::path(dir) / "t10k-images-idx3-ubyte.gz").string();
  fs::copy_file(bomb, inside);
  ExpectError(LoadDataset(dir), StatusCode::kResourceExhausted, inside, "past the limit of 4 GiB");
}

TEST_F(DatasetTest, LimitAppliesToEveryReader) {
  const std::string idx = Write("s-images-idx3-ubyte", IdxImages(5, 4, 3));  // 240 B as float32
  const std::string gz = WriteGz("z-images-idx3-ubyte.gz", IdxImages(5, 4, 3));
  const std::string dir = (fs::path(dir_) / "split").string();
  fs::create_directory(dir);
  fs::copy_file(idx, (fs::path(dir) / "t10k-images-idx3-ubyte").string());
  const std::string cifar = Write("c.bin", CifarRecords({1, 2, 3, 4}));  // 48 KiB
  const std::string bytes = WriteTorch("u8.pt", torch::zeros({4, 5, 6}, torch::kUInt8));  // 480 B
  const std::string doubles = WriteTorch("f64.pt", torch::rand({3, 2, 4, 4}, torch::kDouble));  // 384 B
  struct Case {
    std::string path;
    std::string named;     // the file the error names
    int64_t float_bytes;   // the whole file's images as float32
    std::string message;   // with a limit 1 byte short
  };
  const std::vector<Case> cases = {
      {idx, idx, 240, "5 images of 1x4x3 decode to 240 B of float32, past the limit of 239 B"},
      {gz, gz, 240, "5 images of 1x4x3 decode to 240 B of float32, past the limit of 239 B"},
      {dir, (fs::path(dir) / "t10k-images-idx3-ubyte").string(), 240, "5 images of 1x4x3 decode to 240 B"},
      {cifar, cifar, 49152, "4 images of 3x32x32 decode to 49152 B of float32, past the limit of 49151 B"},
      {bytes, bytes, 480, "4 images of 1x5x6 decode to 480 B of float32, past the limit of 479 B"},
      {doubles, doubles, 384, "3 images of 2x4x4 decode to 384 B of float32, past the limit of 383 B"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    DatasetOptions options;
    options.max_decoded_bytes = c.float_bytes - 1;
    ExpectError(LoadDataset(c.path, options), StatusCode::kResourceExhausted, c.named, c.message);
    options.max_decoded_bytes = c.float_bytes;  // exactly at the limit
    StatusOr<Dataset> at = LoadDataset(c.path, options);
    ASSERT_TRUE(at.ok()) << at.status().ToString();
    EXPECT_EQ(at->images.numel() * 4, c.float_bytes);
    // Fewer samples fit under the smaller limit; only they count.
    options.max_decoded_bytes = c.float_bytes - 1;
    options.offset = 1;
    StatusOr<Dataset> fewer = LoadDataset(c.path, options);
    ASSERT_TRUE(fewer.ok()) << fewer.status().ToString();
    EXPECT_LT(fewer->images.numel() * 4, c.float_bytes);
    options = {};
    options.max_decoded_bytes = 0;  // no limit
    EXPECT_TRUE(LoadDataset(c.path, options).ok());
  }
  DatasetOptions negative;
  negative.max_decoded_bytes = -1;
  ExpectError(LoadDataset(idx, negative), StatusCode::kInvalidArgument, idx, "max_decoded_bytes");
}

TEST_F(DatasetTest, TorchWindowIsConvertedAlone) {
  const torch::Tensor images = torch::rand({4, 1, 3, 3}, torch::kDouble);
  const std::string path = WriteTorch("window.pt", images);
  DatasetOptions options;
  options.offset = 1;
  options.limit = 2;
  options.max_decoded_bytes = 2 * 9 * 4;  // the window fits; the whole file would not
  StatusOr<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.scalar_type(), torch::kFloat);
  EXPECT_TRUE(data->images.allclose(images.narrow(0, 1, 2).to(torch::kFloat)));
}


TEST(TransformTest, RejectsOutputPastTheLimitBeforeMakingIt) {
  const torch::Tensor grey = torch::rand({2, 1, 28, 28});
  DatasetOptions options;
  options.resize = {1024, 1024};
  options.channels = 3;
  options.max_decoded_bytes = int64_t{16} << 20;
  StatusOr<torch::Tensor> out = TransformImages(grey, options);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().ToString();
  EXPECT_EQ(out.status().message(),
            "2 images of 3x1024x1024 after repeating channels come to 24 MiB of float32, past the limit of 16 MiB "
            "(read fewer with a limit/offset)");
  options.max_decoded_bytes = int64_t{24} << 20;
  out = TransformImages(grey, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sizes(), (std::vector<int64_t>{2, 3, 1024, 1024}));

  // At the default limit: 13.4 GiB (40.2 with the channels) would be allocated without the check.
  DatasetOptions huge;
  huge.resize = {60000, 60000};
  huge.channels = 3;
  out = TransformImages(grey.narrow(0, 0, 1), huge);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("1 images of 1x60000x60000 after resizing come to 13.4 GiB of float32, past "
                                        "the limit of 4 GiB"),
            std::string::npos)
      << out.status().ToString();

  // Padding is made before the resize: its size counts even when the resize shrinks it.
  DatasetOptions padded;
  padded.pad = 2;
  padded.resize = {8, 8};
  padded.max_decoded_bytes = 3000;  // 2x1x32x32 floats are 8 KiB; 2x1x8x8 are 512 B
  out = TransformImages(grey, padded);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("2 images of 1x32x32 after padding come to 8 KiB"), std::string::npos)
      << out.status().ToString();
}

TEST_F(DatasetTest, LoadRejectsTransformsPastTheLimit) {
  const std::string path = Write("t-images-idx3-ubyte", IdxImages(5, 4, 3));
  DatasetOptions options = FitToInput({1, 3, 64, 64});
  options.max_decoded_bytes = 100 << 10;
  ExpectError(LoadDataset(path, options), StatusCode::kResourceExhausted, path,
              "5 images of 3x64x64 after repeating channels come to 240 KiB of float32, past the limit of 100 KiB");
  options.limit = 2;  // 96 KiB
  StatusOr<Dataset> fewer = LoadDataset(path, options);
  ASSERT_TRUE(fewer.ok()) << fewer.status().ToString();
  EXPECT_EQ(fewer->images.sizes(), (std::vector<int64_t>{2, 3, 64, 64}));
}

// A shuffled read of a file takes its window of one seeded order: windows of the same seed
// are disjoint and together the whole data, labels staying with their images.
TEST_F(DatasetTest, ShuffledWindowsOfAFileAreDisjointAndCoverIt) {
  const std::string images = Write("train-images-idx3-ubyte", IdxImages(10, 2, 2));
  std::vector<uint8_t> labels;
  for (int i = 0; i < 10; ++i) labels.push_back(static_cast<uint8_t>(i));
  Write("train-labels-idx1-ubyte", IdxLabels(labels));
  DatasetOptions options;
  options.shuffle_seed = 3;
  options.limit = 4;
  StatusOr<Dataset> first = LoadDataset(images, options);
  options.offset = 4;
  options.limit = 0;
  StatusOr<Dataset> rest = LoadDataset(images, options);
  ASSERT_TRUE(first.ok() && rest.ok()) << first.status().ToString() << rest.status().ToString();
  EXPECT_EQ(first->total, 10);
  EXPECT_EQ(first->size(), 4);
  EXPECT_EQ(rest->size(), 6);
  EXPECT_NE(first->source.find("shuffled by seed 3"), std::string::npos) << first->source;
  const torch::Tensor all = torch::cat({first->labels, rest->labels});
  EXPECT_TRUE(std::get<0>(all.sort()).equal(torch::arange(10, torch::kLong)));
  EXPECT_FALSE(all.equal(torch::arange(10, torch::kLong)));  // seed 3 moves some
  // Image i's first pixel is Pixel(i, 0, 0): each label i is beside its own image.
  for (int64_t k = 0; k < first->size(); ++k) {
    const int64_t i = first->labels[k].item<int64_t>();
    EXPECT_FLOAT_EQ(first->images[k][0][0][0].item<float>(), Pixel(i, 0, 0) / 255.0f);
  }
  // The same seed gives the same order; the unshuffled read gives the file's.
  options.offset = 0;
  options.limit = 4;
  EXPECT_TRUE(LoadDataset(images, options)->labels.equal(first->labels));
  options.shuffle_seed = 0;
  EXPECT_TRUE(LoadDataset(images, options)->labels.equal(torch::arange(4, torch::kLong)));
}

}  // namespace
}  // namespace acs
