// Shared by the dataset tests: IDX / CIFAR / torch files written into a temporary
// directory, and checks of what the readers give.
#pragma once

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "tests/temp_dir.h"

namespace acs::dataset_test {

namespace fs = std::filesystem;

inline constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

inline void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

// Pixel (i, y, x) of the synthetic IDX images.
inline uint8_t Pixel(int64_t i, int64_t y, int64_t x) {
  return static_cast<uint8_t>((i * 37 + y * 11 + x * 3) % 256);
}

inline std::string IdxImages(int64_t n, int64_t h, int64_t w) {
  std::string bytes;
  PutU32(&bytes, 0x00000803);
  PutU32(&bytes, n);
  PutU32(&bytes, h);
  PutU32(&bytes, w);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) bytes.push_back(static_cast<char>(Pixel(i, y, x)));
  return bytes;
}

inline std::string IdxLabels(const std::vector<uint8_t>& labels) {
  std::string bytes;
  PutU32(&bytes, 0x00000801);
  PutU32(&bytes, labels.size());
  bytes.append(labels.begin(), labels.end());
  return bytes;
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    dir_ = temp_.path();
  }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (fs::path(dir_) / name).string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) {
    const std::string path = (fs::path(dir_) / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
    gzclose(f);
    return path;
  }
  std::string WriteTorch(const std::string& name, const torch::IValue& value) {
    const std::vector<char> bytes = torch::pickle_save(value);
    return Write(name, std::string(bytes.begin(), bytes.end()));
  }

  ScopedTempDir temp_{"acs_dataset_test_"};
  std::string dir_;
};

inline void ExpectIdxPixels(const torch::Tensor& images, int64_t first) {
  for (int64_t i = 0; i < images.size(0); ++i)
    for (int64_t y = 0; y < images.size(2); ++y)
      for (int64_t x = 0; x < images.size(3); ++x)
        ASSERT_FLOAT_EQ(images[i][0][y][x].item<float>(), Pixel(first + i, y, x) / 255.0f);
}

inline void ExpectError(const StatusOr<Dataset>& result, StatusCode code, const std::string& path,
                 const std::string& words = "") {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), code) << result.status().ToString();
  EXPECT_NE(result.status().message().find(path), std::string::npos) << result.status().ToString();
  EXPECT_NE(result.status().message().find(words), std::string::npos) << result.status().ToString();
}


// CIFAR-10 binary records of these labels and deterministic pixels.
inline std::string CifarRecords(const std::vector<uint8_t>& labels) {
  std::string bytes;
  for (size_t i = 0; i < labels.size(); ++i) {
    bytes.push_back(static_cast<char>(labels[i]));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) bytes.push_back(static_cast<char>((i * 50 + c * 80 + p) % 256));
  }
  return bytes;
}

}  // namespace acs::dataset_test
