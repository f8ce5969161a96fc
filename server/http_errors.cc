#include "server/http_errors.h"

#include <nlohmann/json.hpp>

namespace acs::server {
namespace {

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kCancelled:
      return 499;  // the client closed the request (as nginx names it)
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace

HttpError ToHttp(const Status& status) {
  HttpError out;
  out.status = status.ok() ? 500 : HttpStatusOf(status.code());
  const std::string message = status.ok() ? "an error was expected, the call succeeded" : status.message();
  nlohmann::json body;
  body["error"] = {{"code", status.ok() ? "INTERNAL" : StatusCodeName(status.code())}, {"message", message}};
  out.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // messages may quote bad bytes
  return out;
}

}  // namespace acs::server
