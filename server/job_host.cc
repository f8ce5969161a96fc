#include "server/job_host.h"

#include <fstream>
#include <iterator>

namespace acs::server {

StatusOr<BlobWriter::Committed> LocalJobHost::PutBlobFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return blobs_->Put(bytes);
}

}  // namespace acs::server
