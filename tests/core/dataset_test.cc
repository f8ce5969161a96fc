#include "core/dataset.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/core/dataset_test_util.h"

namespace acs {
namespace {

using namespace dataset_test;

TEST_F(DatasetTest, ReadsRawIdxWithLabels) {
  const std::string images = Write("train-images-idx3-ubyte", IdxImages(5, 4, 3));
  Write("train-labels-idx1-ubyte", IdxLabels({3, 1, 4, 1, 5}));
  StatusOr<Dataset> data = LoadDataset(images);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{5, 1, 4, 3}));
  EXPECT_EQ(data->images.scalar_type(), torch::kFloat);
  ExpectIdxPixels(data->images, 0);
  ASSERT_TRUE(data->has_labels());
  EXPECT_EQ(data->labels.scalar_type(), torch::kLong);
  EXPECT_TRUE(data->labels.equal(torch::tensor({3, 1, 4, 1, 5}, torch::kLong)));
  EXPECT_NE(data->source.find(images), std::string::npos);
}

TEST_F(DatasetTest, ReadsGzippedIdxWithOffsetAndLimit) {
  const std::string images = WriteGz("t10k-images-idx3-ubyte.gz", IdxImages(6, 5, 5));
  WriteGz("t10k-labels-idx1-ubyte.gz", IdxLabels({0, 1, 2, 3, 4, 5}));
  DatasetOptions options;
  options.offset = 2;
  options.limit = 3;
  StatusOr<Dataset> data = LoadDataset(images, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->size(), 3);
  ExpectIdxPixels(data->images, 2);
  EXPECT_TRUE(data->labels.equal(torch::tensor({2, 3, 4}, torch::kLong)));

  options.offset = 6;
  ExpectError(LoadDataset(images, options), StatusCode::kOutOfRange, images);
}

TEST_F(DatasetTest, FindsLabelsWithTheOtherCompression) {
  const std::string images = WriteGz("x-images-idx3-ubyte.gz", IdxImages(2, 2, 2));
  Write("x-labels-idx1-ubyte", IdxLabels({7, 9}));
  StatusOr<Dataset> data = LoadDataset(images);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_TRUE(data->labels.equal(torch::tensor({7, 9}, torch::kLong)));
}

TEST_F(DatasetTest, IdxWithoutLabelsFileIsUnlabelled) {
  const std::string images = Write("digits.idx", IdxImages(2, 3, 3));
  StatusOr<Dataset> data = LoadDataset(images);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->size(), 2);
  EXPECT_FALSE(data->has_labels());
}

TEST_F(DatasetTest, DirectoryPicksSplit) {
  Write("train-images-idx3-ubyte", IdxImages(4, 2, 2));
  WriteGz("t10k-images-idx3-ubyte.gz", IdxImages(3, 2, 2));
  WriteGz("t10k-labels-idx1-ubyte.gz", IdxLabels({1, 2, 3}));
  DatasetOptions options;
  StatusOr<Dataset> test = LoadDataset(dir_, options);
  ASSERT_TRUE(test.ok()) << test.status().ToString();
  EXPECT_EQ(test->size(), 3);
  EXPECT_TRUE(test->has_labels());
  options.split = "train";
  StatusOr<Dataset> train = LoadDataset(dir_, options);
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  EXPECT_EQ(train->size(), 4);
  EXPECT_FALSE(train->has_labels());
  options.split = "validation";
  EXPECT_EQ(LoadDataset(dir_, options).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DatasetTest, TruncatedIdxIsDataLoss) {
  std::string bytes = IdxImages(10, 4, 4);
  bytes.resize(16 + 100);
  const std::string raw = Write("raw-images-idx3-ubyte", bytes);
  ExpectError(LoadDataset(raw), StatusCode::kDataLoss, raw, "header promises 160 pixel bytes, file has 100");
  const std::string gz = WriteGz("gz-images-idx3-ubyte.gz", bytes);
  ExpectError(LoadDataset(gz), StatusCode::kDataLoss, gz, "truncated");
  // A window that stays inside the present bytes still reads.
  DatasetOptions options;
  options.limit = 6;
  EXPECT_TRUE(LoadDataset(raw, options).ok());

  // A gzip stream cut in the middle.
  std::ifstream in(gz, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = Write("cut-images-idx3-ubyte.gz", compressed.substr(0, compressed.size() / 2));
  ExpectError(LoadDataset(cut), StatusCode::kDataLoss, cut);
}

// A pickle whose tensor view reaches past its storage (sizes 2x2x9 over 8 floats) is
// refused before LibTorch's unpickler reads it (core/torch_archive.h).
TEST_F(DatasetTest, TorchFileWhosePickleReachesPastItsStorageIsRefused) {
  const std::vector<char> bytes = torch::pickle_save(torch::zeros({2, 2, 2}));
  std::string forged(bytes.begin(), bytes.end());
  const std::string sizes("K\x02K\x02K\x02", 6);  // the sizes: BININT1 2, three times
  const size_t at = forged.find(sizes);
  ASSERT_NE(at, std::string::npos) << "the pickler no longer writes sizes this way";
  forged[at + 5] = 9;
  const std::string path = Write("past.pt", forged);
  ExpectError(LoadDataset(path), StatusCode::kDataLoss, path, "storage");
}

TEST_F(DatasetTest, WrongIdxMagicIsRejected) {
  std::string bytes = IdxImages(2, 2, 2);
  bytes[3] = 0x04;  // four dimensions
  const std::string path = Write("bad-images-idx3-ubyte", bytes);
  ExpectError(LoadDataset(path), StatusCode::kInvalidArgument, path, "magic 0x00000804");
  bytes[2] = 0x0d;  // float32 elements
  bytes[3] = 0x03;
  const std::string floats = WriteGz("float-images-idx3-ubyte.gz", bytes);
  ExpectError(LoadDataset(floats), StatusCode::kInvalidArgument, floats, "0x0d");
  const std::string labels = Write("only-labels-idx1-ubyte", IdxLabels({1, 2}));
  ExpectError(LoadDataset(labels), StatusCode::kInvalidArgument, labels, "labels file");
}

TEST_F(DatasetTest, LabelCountMismatchIsDataLoss) {
  const std::string images = Write("m-images-idx3-ubyte", IdxImages(3, 2, 2));
  const std::string labels = Write("m-labels-idx1-ubyte", IdxLabels({1, 2}));
  ExpectError(LoadDataset(images), StatusCode::kDataLoss, labels, images);
}

TEST_F(DatasetTest, ReadsCifarBinary) {
  const std::string path = Write("data_batch_1.bin", CifarRecords({6, 9, 0, 2}));
  DatasetOptions options;
  options.offset = 1;
  StatusOr<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_TRUE(data->labels.equal(torch::tensor({9, 0, 2}, torch::kLong)));
  // Record 2, channel 1, row 3, column 5: pixel index 3 * 32 + 5 within the channel plane.
  EXPECT_FLOAT_EQ(data->images[1][1][3][5].item<float>(), ((2 * 50 + 80 + 101) % 256) / 255.0f);
}

TEST_F(DatasetTest, BadCifarIsDataLoss) {
  std::string bytes = CifarRecords({1, 2});
  const std::string short_path = Write("test_batch.bin", bytes.substr(0, bytes.size() - 7));
  ExpectError(LoadDataset(short_path), StatusCode::kDataLoss, short_path, "3073");
  bytes[3073] = 12;
  const std::string label_path = Write("labels.bin", bytes);
  ExpectError(LoadDataset(label_path), StatusCode::kDataLoss, label_path, "record 1 has label 12");
}

TEST_F(DatasetTest, UnknownOrMissingFile) {
  std::mt19937 rng(7);
  std::string noise(5000, '\0');
  for (char& c : noise) c = static_cast<char>(rng() | 0x40);  // never looks like a known magic
  const std::string path = Write("noise.dat", noise);
  ExpectError(LoadDataset(path), StatusCode::kInvalidArgument, path, "CIFAR-10");
  const std::string missing = (fs::path(dir_) / "absent-images-idx3-ubyte.gz").string();
  ExpectError(LoadDataset(missing), StatusCode::kNotFound, missing);
  const std::string empty_dir = (fs::path(dir_) / "empty").string();
  fs::create_directory(empty_dir);
  ExpectError(LoadDataset(empty_dir), StatusCode::kNotFound, empty_dir, "t10k-images-idx3-ubyte");
}

TEST_F(DatasetTest, ReadsTorchTupleOfBytesAndLabels) {
  const torch::Tensor images = torch::arange(4 * 5 * 6, torch::kLong).remainder(256).to(torch::kUInt8).view({4, 5, 6});
  const torch::Tensor labels = torch::tensor({2, 0, 1, 2}, torch::kLong);
  const std::string path = WriteTorch("pair.pt", c10::ivalue::Tuple::create({images, labels}));
  DatasetOptions options;
  options.limit = 3;
  StatusOr<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{3, 1, 5, 6}));
  EXPECT_TRUE(data->images.allclose(images.narrow(0, 0, 3).unsqueeze(1).to(torch::kFloat) / 255));
  EXPECT_TRUE(data->labels.equal(labels.narrow(0, 0, 3)));
}

TEST_F(DatasetTest, ReadsTorchFloatImagesAlone) {
  const torch::Tensor images = torch::rand({3, 2, 4, 4});
  const std::string path = WriteTorch("images.pt", images);
  StatusOr<Dataset> data = LoadDataset(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_TRUE(data->images.equal(images));
  EXPECT_FALSE(data->has_labels());

  c10::List<torch::Tensor> list({images, torch::tensor({1, 2, 3}, torch::kInt)});
  StatusOr<Dataset> listed = LoadDataset(WriteTorch("list.pt", list));
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->labels.equal(torch::tensor({1, 2, 3}, torch::kLong)));
}

TEST_F(DatasetTest, BadTorchFilesAreRejected) {
  const std::string wrong_labels =
      WriteTorch("short.pt", c10::ivalue::Tuple::create({torch::zeros({3, 4, 4}), torch::zeros({2}, torch::kLong)}));
  ExpectError(LoadDataset(wrong_labels), StatusCode::kInvalidArgument, wrong_labels, "labels");
  const std::string flat = WriteTorch("flat.pt", torch::zeros({3, 16}));
  ExpectError(LoadDataset(flat), StatusCode::kInvalidArgument, flat, "[N, H, W]");
  const std::string text = WriteTorch("text.pt", torch::IValue(std::string("hello")));
  ExpectError(LoadDataset(text), StatusCode::kInvalidArgument, text);
  const std::vector<char> bytes = torch::pickle_save(torch::zeros({2, 2, 2}));
  const std::string cut = Write("cut.pt", std::string(bytes.begin(), bytes.begin() + bytes.size() / 2));
  ExpectError(LoadDataset(cut), StatusCode::kDataLoss, cut);
}

// ---- The size limit (DatasetOptions::max_decoded_bytes)

// An IDX header promising n images of h x w, followed by `zeros` zero bytes.
TEST_F(DatasetTest, ReadsFileWrittenByPythonTorchSave) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 cannot import torch";
  }
  const std::string path = (fs::path(dir_) / "python.pt").string();
  const std::string command =
      "/usr/bin/python3 -c \"import torch; "
      "images = torch.arange(5 * 7 * 7).remainder(256).to(torch.uint8).view(5, 7, 7); "
      "labels = torch.tensor([4, 3, 2, 1, 0]); "
      "torch.save((images, labels), '" +
      path + "')\"";
  ASSERT_EQ(std::system(command.c_str()), 0);
  StatusOr<Dataset> data = LoadDataset(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{5, 1, 7, 7}));
  const torch::Tensor expected = torch::arange(5 * 7 * 7).remainder(256).to(torch::kFloat).view({5, 1, 7, 7}) / 255;
  EXPECT_TRUE(data->images.allclose(expected));
  EXPECT_TRUE(data->labels.equal(torch::tensor({4, 3, 2, 1, 0}, torch::kLong)));
}

TEST(FashionMnistTest, ReadsTestSplit) {
  if (!fs::is_directory(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is not installed";
  DatasetOptions options;
  options.limit = 100;
  const std::string file = std::string(kFashionMnist) + "/t10k-images-idx3-ubyte.gz";
  for (const std::string& path : {file, std::string(kFashionMnist)}) {
    StatusOr<Dataset> data = LoadDataset(path, options);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{100, 1, 28, 28}));
    EXPECT_GE(data->images.min().item<float>(), 0.0f);
    EXPECT_LE(data->images.max().item<float>(), 1.0f);
    EXPECT_GT(data->images.max().item<float>(), 0.5f);
    ASSERT_TRUE(data->has_labels());
    EXPECT_GE(data->labels.min().item<int64_t>(), 0);
    EXPECT_LT(data->labels.max().item<int64_t>(), 10);
  }
  StatusOr<Dataset> all = LoadDataset(kFashionMnist);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 10000);
  EXPECT_EQ(all->labels.bincount().min().item<int64_t>(), 1000);  // balanced classes
}

TEST(TransformTest, GreyToPaddedThreeChannels) {
  const torch::Tensor grey = torch::rand({2, 1, 28, 28});
  DatasetOptions options;
  options.pad = 2;
  options.channels = 3;
  options.mean = {0.5};
  options.std = {0.25};
  StatusOr<torch::Tensor> out = TransformImages(grey, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_FLOAT_EQ((*out)[1][2][0][0].item<float>(), -2.0f);  // zero padding, normalized
  EXPECT_TRUE((*out)[0][0].equal((*out)[0][2]));
  EXPECT_TRUE((*out).narrow(2, 2, 28).narrow(3, 2, 28).allclose((grey.expand({2, 3, 28, 28}) - 0.5) / 0.25));
}

TEST(TransformTest, ResizesBilinearlyAndNormalizesPerChannel) {
  const torch::Tensor flat = torch::full({1, 1, 28, 28}, 0.25);
  DatasetOptions options = FitToInput({1, 3, 32, 32});
  EXPECT_EQ(options.channels, 3);
  EXPECT_EQ(options.resize, (std::vector<int64_t>{32, 32}));
  options.mean = {0.0, 0.25, 0.5};
  options.std = {1.0, 1.0, 0.5};
  StatusOr<torch::Tensor> out = TransformImages(flat, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sizes(), (std::vector<int64_t>{1, 3, 32, 32}));
  EXPECT_TRUE((*out)[0][0].allclose(torch::full({32, 32}, 0.25)));
  EXPECT_TRUE((*out)[0][1].allclose(torch::zeros({32, 32}), 1e-6, 1e-6));
  EXPECT_TRUE((*out)[0][2].allclose(torch::full({32, 32}, -0.5)));

  // A ramp keeps its range and order under bilinear resize.
  const torch::Tensor ramp = torch::linspace(0, 1, 28).view({1, 1, 1, 28}).expand({1, 1, 28, 28});
  DatasetOptions resize;
  resize.resize = {32, 32};
  StatusOr<torch::Tensor> big = TransformImages(ramp, resize);
  ASSERT_TRUE(big.ok());
  const torch::Tensor row = (*big)[0][0][5];
  EXPECT_TRUE((row.narrow(0, 1, 31) >= row.narrow(0, 0, 31)).all().item<bool>());
  EXPECT_FLOAT_EQ(row[0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(row[31].item<float>(), 1.0f);
}

TEST(TransformTest, RejectsImpossibleOptions) {
  const torch::Tensor rgb = torch::rand({1, 3, 8, 8});
  DatasetOptions options;
  options.channels = 1;
  EXPECT_EQ(TransformImages(rgb, options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.mean = {0.1, 0.2};
  options.std = {1.0, 1.0};
  EXPECT_EQ(TransformImages(rgb, options).status().code(), StatusCode::kInvalidArgument);
  options.mean = {0.1};
  EXPECT_EQ(TransformImages(rgb, options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.resize = {8};
  EXPECT_EQ(TransformImages(rgb, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TransformImages(torch::rand({8, 8}), {}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DatasetTest, LoadAppliesFitToInputOnlyWhereNeeded) {
  const std::string path = Write("f-images-idx3-ubyte", IdxImages(2, 4, 3));
  StatusOr<Dataset> same = LoadDataset(path, FitToInput({1, 1, 4, 3}));
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  ExpectIdxPixels(same->images, 0);  // untouched: no resize to the same size
  StatusOr<Dataset> fitted = LoadDataset(path, FitToInput({1, 3, 8, 6}));
  ASSERT_TRUE(fitted.ok()) << fitted.status().ToString();
  EXPECT_EQ(fitted->images.sizes(), (std::vector<int64_t>{2, 3, 8, 6}));
  DatasetOptions bad;
  bad.mean = {0.1, 0.2};
  bad.std = {1, 1};
  ExpectError(LoadDataset(path, bad), StatusCode::kInvalidArgument, path, "mean");
}

}  // namespace
}  // namespace acs
