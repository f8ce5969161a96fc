// A job's data: where its dataset and test set are, how they are read, and how its split
// divides them (part of JobScheduler, server/jobs.h).
#include <filesystem>

#include "core/dataset.h"
#include "core/image_files.h"
#include "core/tar.h"
#include "server/jobs.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;

}  // namespace

StatusOr<DatasetOptions> JobScheduler::DataOptionsOf(const JobRequest& request, const std::string& data_path) const {
  DatasetOptions data;
  data.split = "train";
  data.max_decoded_bytes = options_.max_dataset_bytes;
  StatusOr<DataSplit> split = DataSplit::FromJson(request.split);
  if (!split.ok()) return Status::InvalidArgument(split.status().message());
  // An image folder is listed class by class: without a seed of the request's, seed 1, so
  // that calibration and validation hold every class.
  data.shuffle_seed = split->shuffle_seed > 0 ? split->shuffle_seed : IsImageFolder(data_path) ? 1 : 0;
  StatusOr<PreprocessSpec> spec = PreprocessSpec::FromJson(request.preprocess);
  if (!spec.ok()) return Status::InvalidArgument(spec.status().message());
  data.preprocess = std::move(spec).value();
  return data;
}

Status WithDatasetLimit(const Status& s) {
  // The readers' and transforms' size refusals (CheckImagesSize, core/preprocess.h).
  if (s.reason() != StatusReason::kDecodedSizeLimit) return s;
  return Status::ResourceExhausted(s.message() + "; this server's limit on a job's dataset, acs-server " +
                                   kDatasetLimitFlag);
}

StatusOr<SplitCounts> JobScheduler::SplitOf(const JobRequest& request, int64_t total) const {
  ACS_ASSIGN_OR_RETURN(DataSplit split, DataSplit::FromJson(request.split));
  SplitCounts defaults;
  defaults.calibration = options_.calibration_samples;
  defaults.validation = options_.validation_samples;
  defaults.fine_tune = options_.fine_tune_samples;
  StatusOr<SplitCounts> counts = ResolveSplit(split, defaults, total, request.fine_tune);
  if (!counts.ok()) return Status::InvalidArgument("dataset: " + counts.status().message());
  return counts;
}

StatusOr<std::string> JobScheduler::DatasetPath(const JobRequest& r, DataRole role) const {
  const bool test = role == DataRole::kTest;
  const std::string& sha = test ? r.test_dataset_sha256 : r.dataset_sha256;
  const std::string& name = test ? r.test_dataset_name : r.dataset_name;
  const std::string what = test ? "test dataset" : "dataset";
  if (!sha.empty()) {
    StatusOr<std::string> path = blobs_->PathOf(sha);
    if (!path.ok()) return Status::InvalidArgument(what + " " + sha + " was not uploaded to this server");
    return path;
  }
  if (name.empty()) {
    if (test) return std::string();
    return Status::InvalidArgument("a job needs a dataset (an uploaded one or a name)");
  }
  if (name.find('/') != std::string::npos || name.find("..") != std::string::npos) {
    return Status::InvalidArgument(what + " name '" + name + "' must be a plain name");
  }
  const fs::path path = fs::path(options_.datasets_dir) / name;
  if (!fs::exists(path)) {
    return Status::InvalidArgument("the server has no dataset named '" + name + "' (in " + options_.datasets_dir + ")");
  }
  return path.string();
}

StatusOr<std::string> JobScheduler::ReadableDatasetPath(const JobRequest& r, DataRole role) const {
  ACS_ASSIGN_OR_RETURN(std::string path, DatasetPath(r, role));
  const std::string& sha = role == DataRole::kTest ? r.test_dataset_sha256 : r.dataset_sha256;
  if (sha.empty() || !IsTarFile(path)) return path;
  const fs::path dir =
      (extract_dir_.empty() ? fs::path(options_.work_dir) / "datasets" : fs::path(extract_dir_)) / sha;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return dir.string();  // extracted whole before (renamed in)
  fs::create_directories(dir.parent_path(), ec);
  ACS_ASSIGN_OR_RETURN(std::string suffix, RandomHex(8));
  const fs::path partial = dir.string() + ".partial-" + suffix;
  Status extracted = ExtractTar(path, partial.string());
  if (!extracted.ok()) {
    std::string why = extracted.message();
    if (why.rfind(path + ": ", 0) == 0) why = why.substr(path.size() + 2);  // the server's own path
    return Status(extracted.code(), (role == DataRole::kTest ? "test dataset " : "dataset ") + sha.substr(0, 12) +
                                        " (a tar archive of an image folder): " + why);
  }
  fs::rename(partial, dir, ec);
  if (ec) fs::remove_all(partial, ec);  // another process extracted it first
  return dir.string();
}

}  // namespace acs::server
