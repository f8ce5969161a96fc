#include "server/server_parts.h"

#include <spdlog/spdlog.h>

namespace acs::server {

StatusOr<ServerParts> ServerParts::Open(const ServerPartsOptions& options) {
  if (options.blob_gc.interval_seconds < 0 || options.blob_gc.grace_seconds < 0) {
    return Status::InvalidArgument("the blob collection's interval and grace period must be >= 0 seconds");
  }
  ServerParts p;
  ACS_ASSIGN_OR_RETURN(p.store, ServerStore::Open(options.db_path));
  ACS_ASSIGN_OR_RETURN(p.measurements, predictors::OpenSqliteStore(options.db_path));
  ACS_ASSIGN_OR_RETURN(p.blobs, BlobStore::Open(options.blob_dir));
  if (options.serving) {
    ACS_ASSIGN_OR_RETURN(int unfinished, p.blobs->RemoveUnfinishedWrites());
    if (unfinished > 0) spdlog::info("removed {} unfinished upload(s) of an earlier server", unfinished);
  }
  p.farm = std::make_unique<Farm>(p.store.get(), p.measurements.get(), options.farm);
  p.measurement_campaigns = std::make_unique<MeasurementCampaigns>(p.farm.get(), p.store.get(), p.measurements.get(),
                                                                   /*trains=*/options.serving);
  p.jobs = std::make_unique<JobScheduler>(p.store.get(), p.blobs.get(), p.farm.get(), p.measurement_campaigns.get(),
                                          p.measurements.get(), options.scheduler);
  if (options.serving && options.blob_gc.interval_seconds > 0) {
    p.blob_collector = std::make_unique<BlobCollector>(p.store.get(), p.blobs.get(), options.blob_gc);
  }
  return p;
}

void ServerParts::Close() {
  blob_collector.reset();
  jobs.reset();
  measurement_campaigns.reset();
  farm.reset();
  blobs.reset();
  measurements.reset();
  store.reset();
}

}  // namespace acs::server
