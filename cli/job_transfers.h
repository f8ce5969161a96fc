// The transfers of the job commands (cli/job_commands.cc) and campaign runs: uploads of
// models and datasets, checked downloads of artifacts, and reading a job.
#pragma once

#include <filesystem>
#include <string>

#include "cli/remote.h"
#include "core/status.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// Streams the file at path to UploadModel or UploadDataset in chunks.
StatusOr<acs::v1::UploadReply> Upload(const Remote& r, const std::string& path, bool dataset);
// --data or --test-data: name:NAME, a file that is uploaded, or an image folder uploaded as
// a tar archive of its images. Sets *name or *sha256.
Status ResolveData(const Remote& r, const std::string& data, std::string* name, std::string* sha256);
// Checked before anything is uploaded; `flag` is "--data" or "--test-data".
Status CheckDataFlag(const std::string& flag, const std::string& data);
// Streams the artifact `name` of `job` into dir/.NAME.part, checks its size and sha256 and
// renames it to dir/NAME; the path written.
StatusOr<std::string> Download(const Remote& r, const std::string& job, const std::string& name,
                               const std::filesystem::path& dir);
// The artifact's bytes, checked as Download checks them (for small ones: report.json).
StatusOr<std::string> ReadArtifact(const Remote& r, const std::string& job, const std::string& name);
// GetJob.
StatusOr<acs::v1::Job> FetchJob(const Remote& r, const std::string& id);

}  // namespace acs::cli
