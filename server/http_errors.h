// The one place where the job service's errors become HTTP answers (as proto/grpc_status.h
// is for gRPC): a status code and the JSON body {"error": {"code": "NOT_FOUND", "message": ...}}.
#pragma once

#include <string>

#include "core/status.h"

namespace acs::server {

struct HttpError {
  int status = 500;  // the HTTP status code
  std::string body;  // the JSON body, one line
};

// `status` must not be OK. Unauthenticated is 401, PermissionDenied 403, NotFound 404,
// ResourceExhausted 429, Unavailable 503, the caller's mistakes 400, the server's 500.
HttpError ToHttp(const Status& status);

}  // namespace acs::server
