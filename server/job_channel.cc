// The job channel's framing (server/job_channel.h): a 4-byte little-endian length, then
// the message.
#include "server/job_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace acs::server {

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Waits until `fd` is ready for `events` or the deadline (< 0: none) passes.
Status WaitFd(int fd, short events, double deadline) {
  while (true) {
    int timeout_ms = -1;
    if (deadline >= 0) {
      const double left = deadline - Now();
      if (left <= 0) return Status::Aborted("the other side of the channel stalled mid-message");
      timeout_ms = static_cast<int>(left * 1000) + 1;
    }
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable(std::string("poll: ") + std::strerror(errno));
    if (n > 0) return Status::Ok();
  }
}

// Reads exactly n bytes; *got the number read before an end of stream.
Status ReadFully(int fd, char* data, size_t n, double deadline, size_t* got) {
  *got = 0;
  while (*got < n) {
    ACS_RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline));
    const ssize_t r = recv(fd, data + *got, n - *got, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0) return Status::Unavailable(std::string("reading the channel: ") + std::strerror(errno));
    if (r == 0) return Status::Unavailable("the channel closed mid-message");
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

Status ReadFrame(int fd, uint32_t max_bytes, double timeout_seconds, std::string* out) {
  unsigned char header[4];
  size_t got = 0;
  // The first byte may be waited for without end; the rest of a message must follow.
  Status s = WaitFd(fd, POLLIN, -1);
  if (!s.ok()) return s;
  const double deadline = timeout_seconds < 0 ? -1 : Now() + timeout_seconds;
  s = ReadFully(fd, reinterpret_cast<char*>(header), 4, deadline, &got);
  if (!s.ok()) return got == 0 && s.code() == StatusCode::kUnavailable ? Status::NotFound("the channel closed") : s;
  const uint32_t n =
      uint32_t{header[0]} | uint32_t{header[1]} << 8 | uint32_t{header[2]} << 16 | uint32_t{header[3]} << 24;
  if (n > max_bytes) {
    return Status::ResourceExhausted("a message of " + std::to_string(n) + " bytes, past the limit of " +
                                     std::to_string(max_bytes));
  }
  out->assign(n, '\0');
  return ReadFully(fd, out->data(), n, deadline, &got);
}

Status WriteFrame(int fd, const std::string& bytes, double timeout_seconds) {
  if (bytes.size() > UINT32_MAX) return Status::ResourceExhausted("a message past 4 GiB");
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  std::string frame = {static_cast<char>(n & 0xff), static_cast<char>(n >> 8 & 0xff), static_cast<char>(n >> 16 & 0xff),
                       static_cast<char>(n >> 24 & 0xff)};
  frame += bytes;
  const double deadline = timeout_seconds < 0 ? -1 : Now() + timeout_seconds;
  for (size_t at = 0; at < frame.size();) {
    ACS_RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline));
    const ssize_t w = send(fd, frame.data() + at, frame.size() - at, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w < 0) return Status::Unavailable(std::string("writing the channel: ") + std::strerror(errno));
    at += static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace acs::server
