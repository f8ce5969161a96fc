// The one place where acs Status values become gRPC statuses (and back, for clients).
#pragma once

#include <grpcpp/support/status.h>

#include "core/status.h"

namespace acs {

grpc::Status ToGrpc(const Status& status);
Status FromGrpc(const grpc::Status& status);

}  // namespace acs
