// Transfers of the job commands: uploads of models and datasets (an image folder as a tar
// archive of its images) and checked downloads of artifacts.
#include "cli/job_transfers.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>

#include "cli/common.h"
#include "cli/job_display.h"
#include "core/image_files.h"
#include "core/sha256.h"
#include "core/tar.h"
#include "proto/grpc_status.h"

namespace acs::cli {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 1 << 20;      // upload chunk size
constexpr double kTransferSeconds = 3600;    // deadline of an upload or a download

// An artifact name is a plain file name.
Status CheckArtifactName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("'" + name + "' is not an artifact name (e.g. compressed.pt)");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<acs::v1::UploadReply> Upload(const Remote& r, const std::string& path, bool dataset) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || fs::is_directory(path)) return Status::NotFound("'" + path + "' is not a readable file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("'" + path + "' cannot be read");
  grpc::ClientContext ctx;
  r.conn.Prepare(&ctx, kTransferSeconds);
  acs::v1::UploadReply reply;
  auto writer = dataset ? r.conn.stub->UploadDataset(&ctx, &reply) : r.conn.stub->UploadModel(&ctx, &reply);
  acs::v1::UploadChunk chunk;
  chunk.set_name(fs::path(path).filename().string());
  chunk.set_total_bytes(static_cast<int64_t>(size));
  std::string buf(kChunkBytes, '\0');
  bool first = true;
  while (first || in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.bad()) {
      ctx.TryCancel();
      return Status::DataLoss("reading '" + path + "' failed");
    }
    chunk.set_data(buf.data(), static_cast<size_t>(in.gcount()));
    if ((chunk.data().empty() && !first) || !writer->Write(chunk)) break;  // a refusal comes with Finish
    chunk.clear_name();
    chunk.clear_total_bytes();
    first = false;
  }
  writer->WritesDone();
  ACS_RETURN_IF_ERROR(Call(writer->Finish(), r.flags));
  std::cerr << (dataset ? "dataset " : "model ") << path << ": " << Bytes(reply.bytes()) << ", sha256 "
            << reply.sha256().substr(0, 12) << (reply.deduplicated() ? " (already on the server)" : "") << "\n";
  return reply;
}

Status ResolveData(const Remote& r, const std::string& data, std::string* name, std::string* sha256) {
  if (data.rfind("name:", 0) == 0) {
    *name = data.substr(5);
    return Status::Ok();
  }
  if (fs::is_directory(data)) {
    ACS_ASSIGN_OR_RETURN(std::vector<std::string> names, ImageFolderFiles(data));
    std::vector<std::pair<std::string, std::string>> files;
    for (const std::string& n : names) files.emplace_back(n, (fs::path(data) / n).string());
    const fs::path archive = fs::temp_directory_path() / ("acs_folder_" + std::to_string(::getpid()) + ".tar");
    ACS_RETURN_IF_ERROR(WriteTar(files, archive.string()));
    std::cerr << "image folder " << data << ": " << files.size() << " images packed\n";
    StatusOr<acs::v1::UploadReply> reply = Upload(r, archive.string(), true);
    std::error_code ec;
    fs::remove(archive, ec);
    ACS_RETURN_IF_ERROR(reply.status());
    *sha256 = reply->sha256();
    return Status::Ok();
  }
  ACS_ASSIGN_OR_RETURN(acs::v1::UploadReply reply, Upload(r, data, true));
  *sha256 = reply.sha256();
  return Status::Ok();
}

Status CheckDataFlag(const std::string& flag, const std::string& data) {
  if (data.rfind("name:", 0) == 0) {
    return data.size() > 5 ? Status::Ok() : Status::InvalidArgument(flag + " name: needs a dataset name");
  }
  if (fs::is_directory(data)) {
    if (IsImageFolder(data)) return Status::Ok();
    return Status::InvalidArgument(flag + " '" + data +
                                   "' is a directory without JPEG or PNG images; pass an image folder, a single "
                                   "file (IDX, CIFAR-10 binary or torch.save'd (images, labels)), or name:NAME for "
                                   "a dataset the server knows (e.g. name:fashion-mnist)");
  }
  if (!fs::is_regular_file(data)) {
    return Status::NotFound(flag + " '" + data + "' does not exist; pass a file, or name:NAME for a dataset the " +
                            "server knows");
  }
  return Status::Ok();
}

namespace {

// Streams the artifact into `sink` piece by piece; checks its size and sha256.
Status StreamArtifact(const Remote& r, const std::string& job, const std::string& name,
                      const std::function<void(const std::string&)>& sink, int64_t* written) {
  grpc::ClientContext ctx;
  r.conn.Prepare(&ctx, kTransferSeconds);
  acs::v1::DownloadArtifactRequest req;
  req.set_job_id(job);
  req.set_name(name);
  auto reader = r.conn.stub->DownloadArtifact(&ctx, req);
  acs::v1::ArtifactChunk chunk;
  int64_t expected = -1;
  std::string expected_sha256;
  Sha256 sha;
  *written = 0;
  while (reader->Read(&chunk)) {
    if (expected < 0) {
      expected = chunk.total_bytes();
      expected_sha256 = chunk.sha256();
    }
    sink(chunk.data());
    sha.Update(chunk.data());
    *written += static_cast<int64_t>(chunk.data().size());
  }
  ACS_RETURN_IF_ERROR(Call(reader->Finish(), r.flags));
  if (expected >= 0 && *written != expected) {
    return Status::DataLoss(name + ": received " + std::to_string(*written) + " of " + std::to_string(expected) +
                            " bytes");
  }
  if (!expected_sha256.empty()) {
    const std::string actual = sha.HexDigest();
    if (actual != expected_sha256) {
      return Status::DataLoss(name + ": the received bytes hash to " + actual + ", not to the artifact's " +
                              expected_sha256);
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> Download(const Remote& r, const std::string& job, const std::string& name,
                               const fs::path& dir) {
  ACS_RETURN_IF_ERROR(CheckArtifactName(name));
  const fs::path final_path = dir / name, temp = dir / ("." + name + ".part");
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Unavailable("cannot write '" + temp.string() + "'");
  int64_t written = 0;
  Status s = StreamArtifact(
      r, job, name,
      [&](const std::string& data) { out.write(data.data(), static_cast<std::streamsize>(data.size())); }, &written);
  out.close();
  if (s.ok() && !out) s = Status::Unavailable("writing '" + temp.string() + "' failed");
  std::error_code ec;
  if (s.ok()) fs::rename(temp, final_path, ec);
  if (!s.ok() || ec) fs::remove(temp);
  if (ec) return Status::Unavailable("cannot rename to '" + final_path.string() + "': " + ec.message());
  ACS_RETURN_IF_ERROR(s);
  std::cerr << name << ": " << Bytes(written) << "\n";
  return final_path.string();
}

StatusOr<std::string> ReadArtifact(const Remote& r, const std::string& job, const std::string& name) {
  ACS_RETURN_IF_ERROR(CheckArtifactName(name));
  std::string bytes;
  int64_t written = 0;
  ACS_RETURN_IF_ERROR(StreamArtifact(r, job, name, [&](const std::string& data) { bytes += data; }, &written));
  return bytes;
}

StatusOr<acs::v1::Job> FetchJob(const Remote& r, const std::string& id) {
  acs::v1::GetJobRequest req;
  req.set_id(id);
  acs::v1::Job job;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::GetJob, req, &job));
  return job;
}

}  // namespace acs::cli
