// For tests in this process: the parts a server or a job runner opens on its data dir
// (store, measurements, blobs, farm, predictor campaigns, scheduler) on a fresh temporary
// directory, closed in reverse order and the directory removed at the end.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "predictors/store.h"
#include "server/blob_store.h"
#include "server/campaign.h"
#include "server/farm.h"
#include "server/jobs.h"
#include "server/server_store.h"
#include "tests/temp_dir.h"

namespace acs::server::test {

class SchedulerParts {
 public:
  explicit SchedulerParts(const std::string& prefix) : dir_(prefix) {}
  ~SchedulerParts() { Close(); }

  // Opens (or reopens) every part on the directory; `options.work_dir` is set to its
  // "work". Errors from the stores.
  Status Open(SchedulerOptions options = {}) {
    Close();
    const std::filesystem::path dir = dir_.path();
    std::error_code ec;
    std::filesystem::create_directories(dir / "work", ec);
    ACS_ASSIGN_OR_RETURN(store, ServerStore::Open(db_path()));
    ACS_ASSIGN_OR_RETURN(measurements, predictors::OpenSqliteStore(db_path()));
    ACS_ASSIGN_OR_RETURN(blobs, BlobStore::Open(dir.string()));
    farm = std::make_unique<Farm>(store.get(), measurements.get(), FarmOptions{});
    campaigns = std::make_unique<Campaigns>(farm.get(), store.get(), measurements.get());
    options.work_dir = (dir / "work").string();
    jobs = std::make_unique<JobScheduler>(store.get(), blobs.get(), farm.get(), campaigns.get(), measurements.get(),
                                          options);
    return Status::Ok();
  }
  void Close() {
    jobs.reset();
    campaigns.reset();
    farm.reset();
    blobs.reset();
    measurements.reset();
    store.reset();
  }
  std::filesystem::path dir() const { return dir_.path(); }
  std::string db_path() const { return (dir() / "server.db").string(); }

  std::unique_ptr<ServerStore> store;
  std::unique_ptr<predictors::MeasurementStore> measurements;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<Farm> farm;
  std::unique_ptr<Campaigns> campaigns;
  std::unique_ptr<JobScheduler> jobs;

 private:
  ScopedTempDir dir_;  // removed after ~SchedulerParts closed the parts
};

}  // namespace acs::server::test
