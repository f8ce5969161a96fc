// For tests in this process: the parts a server or a job runner opens on its data dir
// (store, measurements, blobs, farm, predictor measurement campaigns, scheduler) on a
// fresh temporary directory, closed in reverse order and the directory removed at the end.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "server/server_parts.h"
#include "tests/temp_dir.h"

namespace acs::server::test {

class SchedulerParts : public ServerParts {
 public:
  explicit SchedulerParts(const std::string& prefix) : dir_(prefix) {}
  ~SchedulerParts() { Close(); }

  // Opens (or reopens) every part on the directory, as a serving process does;
  // `options.work_dir` is set to its "work". Errors from the stores.
  Status Open(SchedulerOptions options = {}) {
    Close();
    const std::filesystem::path dir = dir_.path();
    std::error_code ec;
    std::filesystem::create_directories(dir / "work", ec);
    options.work_dir = (dir / "work").string();
    ACS_ASSIGN_OR_RETURN(ServerParts opened,
                         ServerParts::Open({db_path(), dir.string(), FarmOptions{}, options, true, BlobGcOptions{}}));
    static_cast<ServerParts&>(*this) = std::move(opened);
    return Status::Ok();
  }
  // A job of `owner` in `state`, stored directly (no search runs); "" (and a test failure)
  // when the store refuses it.
  std::string StoredJob(const std::string& owner, const std::string& state, const JobProgress& progress = {}) {
    JobRecord job;
    job.owner = owner;
    job.state = state;
    job.request_json = "{}";
    job.progress_json = progress.ToJson().dump();
    StatusOr<JobRecord> created = store->CreateJob(job);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->id : "";
  }
  std::filesystem::path dir() const { return dir_.path(); }
  std::string db_path() const { return (dir() / "server.db").string(); }

 private:
  ScopedTempDir dir_;  // removed after ~SchedulerParts closed the parts
};

}  // namespace acs::server::test
