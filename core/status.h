// Errors as values. A Status is either OK or a code plus a message a person can act on.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace acs {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller passed something malformed
  kNotFound,            // a named file, layer or object does not exist
  kFailedPrecondition,  // the request is well formed but cannot be met now
  kDataLoss,            // a file is corrupt or truncated
  kUnimplemented,       // a feature or op that is not supported
  kInternal,            // a bug or an unexpected library failure
  kOutOfRange,          // a value outside its allowed range
  kUnavailable,         // a service, file system or peer cannot be reached now; retry may work
  kAborted,             // a conflict (busy database, concurrent change); retry may work
  kAlreadyExists,       // the object to create is there already
  kPermissionDenied,    // the caller is known but not allowed
  kUnauthenticated,     // the caller is not known (missing or wrong token)
  kCancelled,           // the work was cancelled by request
  kResourceExhausted,   // a per-user or per-server limit (size, count, quota) is used up
};
// The number of codes: new codes go last, before this.
inline constexpr int kNumStatusCodes = static_cast<int>(StatusCode::kResourceExhausted) + 1;

const char* StatusCodeName(StatusCode code);

// A cause within a code that callers act on, not only show; kGeneral for most statuses.
// Copies keep it; a status rebuilt from code() and message() loses it (add context with
// WithPrefix instead).
enum class StatusReason {
  kGeneral = 0,
  kDecodedSizeLimit,  // images past DatasetOptions::max_decoded_bytes (CheckImagesSize)
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  StatusReason reason() const { return reason_; }
  // This status with `reason` (an OK status stays as it is).
  Status WithReason(StatusReason reason) const {
    Status s = *this;
    if (!ok()) s.reason_ = reason;
    return s;
  }
  // This status, its code and reason kept, with `prefix` before its message ("path: ").
  Status WithPrefix(const std::string& prefix) const {
    Status s = *this;
    if (!ok()) s.message_ = prefix + message_;
    return s;
  }
  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  StatusReason reason_ = StatusReason::kGeneral;
};

// Holds either a value or a non-OK Status.
template <typename T>
class StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace acs

#define ACS_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::acs::Status acs_status_ = (expr);    \
    if (!acs_status_.ok()) return acs_status_; \
  } while (0)

#define ACS_CONCAT_INNER(a, b) a##b
#define ACS_CONCAT(a, b) ACS_CONCAT_INNER(a, b)
#define ACS_ASSIGN_OR_RETURN(lhs, expr) \
  ACS_ASSIGN_OR_RETURN_IMPL(ACS_CONCAT(acs_statusor_, __LINE__), lhs, expr)
#define ACS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
