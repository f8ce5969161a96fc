#include "server/job_host.h"

#include <fcntl.h>
#include <unistd.h>

namespace acs::server {

StatusOr<BlobWriter::Committed> LocalJobHost::PutBlobFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot read '" + path + "'");
  StatusOr<BlobWriter::Committed> put = blobs_->PutFromFd(fd, kMaxArtifactBytes);
  close(fd);
  return put;
}

}  // namespace acs::server
