// What the server, its job runner children and the in-process tests open on one store:
// the SQLite store, the measurements, the blobs, the device farm, the predictor
// measurement campaigns and the job scheduler.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "predictors/store.h"
#include "server/blob_gc.h"
#include "server/blob_store.h"
#include "server/farm.h"
#include "server/jobs.h"
#include "server/measurement_campaign.h"
#include "server/server_store.h"

namespace acs::server {

struct ServerPartsOptions {
  std::string db_path;   // the SQLite file of the store and the measurements
  std::string blob_dir;  // BlobStore::Open's directory
  FarmOptions farm;
  SchedulerOptions scheduler;
  bool serving = false;   // the serving process: trains finished measurement
                          // campaigns and removes an earlier server's unfinished uploads
  BlobGcOptions blob_gc;  // the serving process's sweeps of unreferenced blobs
};

// Closed in reverse order of opening: the blob collector first, then the scheduler.
struct ServerParts {
  ServerParts() = default;
  ServerParts(ServerParts&&) = default;
  ServerParts& operator=(ServerParts&&) = default;
  ~ServerParts() { Close(); }

  // Errors from the stores; InvalidArgument for a negative blob_gc interval or grace.
  static StatusOr<ServerParts> Open(const ServerPartsOptions& options);
  void Close();

  std::unique_ptr<ServerStore> store;
  std::unique_ptr<predictors::MeasurementStore> measurements;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<Farm> farm;
  std::unique_ptr<MeasurementCampaigns> measurement_campaigns;
  std::unique_ptr<JobScheduler> jobs;
  std::unique_ptr<BlobCollector> blob_collector;  // null unless serving with sweeps
};

}  // namespace acs::server
