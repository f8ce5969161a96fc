// The server's hint on a dataset past its decoded-size limit (WithDatasetLimit) goes by the
// readers' mark, StatusReason::kDecodedSizeLimit, not by their words: a reader's refusal
// and a transform's (prefixed with the file) get the flag named; the same words and code
// without the mark, another limit's refusal and a hinted status again are left as they are.
#include <gtest/gtest.h>

#include <string>

#include "core/dataset.h"
#include "core/preprocess.h"
#include "server/jobs.h"
#include "tests/core/dataset_test_util.h"

namespace acs::server {
namespace {

using DatasetLimitTest = dataset_test::DatasetTest;

constexpr char kHint[] = "; this server's limit on a job's dataset, acs-server --max-dataset-gb";

TEST_F(DatasetLimitTest, AReadersSizeRefusalNamesTheFlag) {
  const std::string idx = Write("s-images-idx3-ubyte", dataset_test::IdxImages(5, 4, 3));  // 240 B as float32
  DatasetOptions options;
  options.max_decoded_bytes = 239;
  StatusOr<Dataset> read = LoadDataset(idx, options);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().reason(), StatusReason::kDecodedSizeLimit) << read.status().ToString();
  const Status hinted = WithDatasetLimit(read.status());
  EXPECT_EQ(hinted.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(hinted.message(), read.status().message() + kHint);
  EXPECT_EQ(WithDatasetLimit(hinted).message(), hinted.message());  // named once

  // A transform's refusal, which the reader prefixes with its file.
  DatasetOptions grown = FitToInput({1, 3, 64, 64});
  grown.max_decoded_bytes = 100 << 10;
  read = LoadDataset(idx, grown);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message().rfind(idx + ": 5 images of 3x64x64 after repeating channels", 0), 0u)
      << read.status().ToString();
  EXPECT_EQ(WithDatasetLimit(read.status()).message(), read.status().message() + kHint);
}

TEST(DatasetLimitHintTest, OtherStatusesAreLeftAsTheyAre) {
  const Status marked = CheckImagesSize("", 5, {1, 4, 3}, 239, "decode to");
  ASSERT_EQ(marked.reason(), StatusReason::kDecodedSizeLimit);
  // The same code and words, rebuilt without the mark: no hint.
  const Status alike(marked.code(), marked.message());
  EXPECT_EQ(alike.reason(), StatusReason::kGeneral);
  EXPECT_EQ(WithDatasetLimit(alike).message(), marked.message());
  EXPECT_EQ(WithDatasetLimit(marked.WithPrefix("data.pt: ")).message(), "data.pt: " + marked.message() + kHint);

  // Another limit's refusal in like words.
  const Status channel = Status::ResourceExhausted("a message of 9 bytes of float32, past the limit of 8 bytes");
  EXPECT_EQ(WithDatasetLimit(channel).message(), channel.message());
  EXPECT_TRUE(WithDatasetLimit(Status::Ok()).ok());
  EXPECT_EQ(Status::Ok().WithReason(StatusReason::kDecodedSizeLimit).reason(), StatusReason::kGeneral);
}

}  // namespace
}  // namespace acs::server
