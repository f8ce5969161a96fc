// The server store's job list at an offset (server/server_store.h): pages a client can ask
// for at once, each from the page token this finds.
#include "server/server_store.h"

namespace acs::server {

StatusOr<std::string> ServerStore::JobPageTokenAt(const JobFilter& filter, int64_t offset) {
  if (offset <= 0) return std::string();
  std::lock_guard<std::mutex> lock(mu_);
  // The job before the page's first: the previous page's last id, as ListJobs gives it.
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT id FROM jobs WHERE (? = '' OR owner = ?) AND "
                                                 "(? = '' OR state = ?) AND (? OR owner != ?) ORDER BY seq "
                                                 "LIMIT 1 OFFSET ?"));
  q.Bind(1, filter.owner).Bind(2, filter.owner).Bind(3, filter.state).Bind(4, filter.state);
  q.Bind(5, static_cast<int64_t>(filter.campaigns)).Bind(6, std::string(kCampaignOwner)).Bind(7, offset - 1);
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("the job list has no more than " + std::to_string(offset) + " jobs");
  return q.Text(0);
}

}  // namespace acs::server
