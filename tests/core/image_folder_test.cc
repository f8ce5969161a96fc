// Image folders: torchvision's ImageFolder order and labels, windows, decoding of grey and
// colour PNGs, and files that are broken, hostile or of different sizes.
#include "core/image_folder.h"

#include <gtest/gtest.h>
#include <png.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace acs {
namespace {

namespace fs = std::filesystem;

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("acs_image_folder_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A PNG of `channels` (1: grey, 3: RGB) whose every byte is `value` (+ x for RGB's red).
  fs::path WritePng(const fs::path& rel, int width, int height, int channels, uint8_t value) {
    const fs::path path = root_ / rel;
    fs::create_directories(path.parent_path());
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(width);
    image.height = static_cast<png_uint_32>(height);
    image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels, value);
    if (channels == 3) {
      for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) pixels[(static_cast<size_t>(y) * width + x) * 3] = static_cast<uint8_t>(x);
      }
    }
    EXPECT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr)) << image.message;
    return path;
  }
  fs::path root_;
};

DatasetOptions Fit(int64_t channels, int64_t side) { return FitToInput({1, channels, side, side}); }

TEST_F(ImageFolderTest, ClassesAreSortedFolderNamesAndFilesSortedByFolderThenName) {
  WritePng("coat/b.png", 8, 8, 1, 30);
  WritePng("coat/a.png", 8, 8, 1, 20);
  WritePng("coat/deeper/0.png", 8, 8, 1, 40);  // after coat/*.png: its folder sorts later
  WritePng("ankle_boot/z.PNG", 8, 8, 1, 10);
  WritePng("bag/x.png", 8, 8, 3, 50);
  WritePng(".hidden/y.png", 8, 8, 1, 99);  // skipped
  fs::create_directories(root_ / "notes");   // no images: no class
  std::ofstream(root_ / "notes" / "README.txt") << "not an image";
  ASSERT_TRUE(IsImageFolder(root_.string()));

  StatusOr<Dataset> data = LoadDataset(root_.string(), Fit(3, 8));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->size(), 5);
  EXPECT_TRUE(data->labels.equal(torch::tensor({0, 1, 2, 2, 2}, torch::kLong)));
  const std::vector<int> grey = {10, -1, 20, 30, 40};
  for (int i : {0, 2, 3, 4}) {
    EXPECT_TRUE(data->images[i].allclose(torch::full({3, 8, 8}, grey[i] / 255.0f))) << i;
  }
  // The RGB image: red is the column, green and blue 50.
  EXPECT_FLOAT_EQ(data->images[1][0][3][5].item<float>(), 5 / 255.0f);
  EXPECT_FLOAT_EQ(data->images[1][1][3][5].item<float>(), 50 / 255.0f);
  EXPECT_NE(data->source.find("3 classes"), std::string::npos) << data->source;

  // A window reads only its samples.
  DatasetOptions window = Fit(3, 8);
  window.offset = 2;
  window.limit = 2;
  data = LoadDataset(root_.string(), window);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_TRUE(data->labels.equal(torch::tensor({2, 2}, torch::kLong)));
  EXPECT_TRUE(data->images[0].allclose(torch::full({3, 8, 8}, 20 / 255.0f)));

  // A shuffled order: the same samples, and windows of it that add up to the whole.
  DatasetOptions shuffled = Fit(3, 8);
  shuffled.shuffle_seed = 3;
  StatusOr<Dataset> all = LoadDataset(root_.string(), shuffled);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(std::get<0>(all->labels.sort()).equal(torch::tensor({0, 1, 2, 2, 2}, torch::kLong)));
  EXPECT_FALSE(all->labels.equal(torch::tensor({0, 1, 2, 2, 2}, torch::kLong)));
  shuffled.limit = 2;
  StatusOr<Dataset> head = LoadDataset(root_.string(), shuffled);
  shuffled.offset = 2;
  shuffled.limit = 0;
  StatusOr<Dataset> tail = LoadDataset(root_.string(), shuffled);
  ASSERT_TRUE(head.ok() && tail.ok());
  EXPECT_TRUE(torch::cat({head->images, tail->images}).equal(all->images));
  EXPECT_NE(all->source.find("shuffled by seed 3"), std::string::npos) << all->source;

  // A 1-channel model gets the luminance of RGB images.
  data = LoadDataset(root_.string(), Fit(1, 8));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{5, 1, 8, 8}));
  EXPECT_NEAR(data->images[1][0][0][0].item<float>(), (0.587f + 0.114f) * 50 / 255.0f, 1e-4f);
}

TEST_F(ImageFolderTest, AFlatFolderIsUnlabelledAndSizesArePreparedToOne) {
  WritePng("0.png", 12, 9, 3, 100);
  WritePng("1.png", 7, 15, 3, 100);
  StatusOr<Dataset> data = LoadDataset(root_.string(), Fit(3, 16));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_FALSE(data->has_labels());
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
  // A spec that leaves the sizes apart is refused, naming the file.
  DatasetOptions spec;
  spec.preprocess = PreprocessSpec::Parse(R"([{"op": "to_tensor"}])").value();
  data = LoadDataset(root_.string(), spec);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(data.status().message().find("1.png: prepared to 3x15x7, the folder's first image to 3x9x12"),
            std::string::npos)
      << data.status().message();
}

TEST_F(ImageFolderTest, BrokenAndHostileFilesAreNamed) {
  const fs::path good = WritePng("a/good.png", 4, 4, 1, 1);
  // Truncated PNG data.
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(root_ / "a" / "truncated.png", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  StatusOr<Dataset> data = LoadDataset(root_.string(), Fit(3, 4));
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(data.status().message().find("truncated.png"), std::string::npos) << data.status().message();
  fs::remove(root_ / "a" / "truncated.png");

  // A header that promises 100000 x 100000 pixels (CRC correct): refused before allocating.
  std::string huge = bytes;
  const size_t ihdr = 8 + 8;  // signature, then length and "IHDR"
  for (int k = 0; k < 2; ++k) {
    const uint32_t side = 100000;
    for (int b = 0; b < 4; ++b) huge[ihdr + 4 * k + b] = static_cast<char>((side >> (24 - 8 * b)) & 0xff);
  }
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(huge.data() + ihdr - 4), 4 + 13));
  for (int b = 0; b < 4; ++b) huge[ihdr + 13 + b] = static_cast<char>((crc >> (24 - 8 * b)) & 0xff);
  std::ofstream(root_ / "a" / "huge.png", std::ios::binary) << huge;
  data = LoadDataset(root_.string(), Fit(3, 4));
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kResourceExhausted) << data.status().ToString();
  EXPECT_NE(data.status().message().find("huge.png: an image of 100000x100000 pixels"), std::string::npos)
      << data.status().message();
  fs::remove(root_ / "a" / "huge.png");

  // Neither JPEG nor PNG behind an image name; a link out of the folder is not followed.
  std::ofstream(root_ / "a" / "fake.jpg") << "GIF89a";
  data = LoadDataset(root_.string(), Fit(3, 4));
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("fake.jpg: neither a JPEG nor a PNG file"), std::string::npos)
      << data.status().message();
  fs::remove(root_ / "a" / "fake.jpg");
  const fs::path outside = fs::temp_directory_path() / ("acs_outside_" + std::to_string(::getpid()) + ".png");
  fs::copy_file(good, outside, fs::copy_options::overwrite_existing);
  fs::create_symlink(outside, root_ / "a" / "link.png");
  data = LoadDataset(root_.string(), Fit(3, 4));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->size(), 1);
  fs::remove(outside);

  // A folder without images is not an image folder; the IDX reader says what it lacks.
  fs::remove_all(root_ / "a");
  EXPECT_FALSE(IsImageFolder(root_.string()));
  EXPECT_EQ(LoadDataset(root_.string(), Fit(3, 4)).status().code(), StatusCode::kNotFound);
}

TEST_F(ImageFolderTest, AGridShowsEachImageOverItsOwnRange) {
  // Five normalized 1x2x3 images: each one a ramp over its own range.
  const torch::Tensor ramp = torch::arange(6, torch::kFloat).view({1, 2, 3});
  const torch::Tensor images = torch::stack({ramp, ramp * 2 - 7, ramp / 10, ramp, torch::zeros({1, 2, 3})});
  const std::string path = (root_ / "grid.png").string();
  ASSERT_TRUE(WriteImageGrid(images, path, 3).ok());
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << image.message;
  EXPECT_EQ(image.width, 3u * 3);   // 3 columns of width 3
  EXPECT_EQ(image.height, 2u * 2);  // 2 rows of height 2
  image.format = PNG_FORMAT_GRAY;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) << image.message;
  auto at = [&](int y, int x) { return static_cast<int>(pixels[static_cast<size_t>(y) * 9 + x]); };
  for (int tile : {0, 1, 2, 3}) {  // every ramp spans 0..255 whatever its values
    const int y0 = tile / 3 * 2, x0 = tile % 3 * 3;
    EXPECT_EQ(at(y0, x0), 0) << tile;
    EXPECT_EQ(at(y0 + 1, x0 + 2), 255) << tile;
  }
  EXPECT_EQ(at(3, 5), 0);  // the flat image
  EXPECT_EQ(at(3, 8), 0);  // the empty sixth tile
  // At most columns x columns images.
  ASSERT_TRUE(WriteImageGrid(images, path, 2).ok());
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << image.message;
  EXPECT_EQ(image.height, 2u * 2);
  png_image_free(&image);
  EXPECT_EQ(WriteImageGrid(torch::zeros({0, 1, 2, 2}), path).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs
