#include "server/job_host.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace acs::server {

StatusOr<BlobWriter::Committed> LocalJobHost::PutBlobFile(const std::string& job_id, const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot read '" + path + "'");
  StatusOr<BlobWriter::Committed> put = blobs_->PutFromFd(fd, kMaxArtifactBytes);
  close(fd);
  return Recorded(job_id, std::move(put));
}

StatusOr<BlobWriter::Committed> LocalJobHost::Recorded(const std::string& job_id, StatusOr<BlobWriter::Committed> put) {
  if (!put.ok()) return put;
  ACS_RETURN_IF_ERROR(store_->RecordJobBlob(job_id, put->sha256, put->bytes));
  return put;
}

}  // namespace acs::server
