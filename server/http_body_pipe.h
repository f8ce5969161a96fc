// A request body that cpp-httplib pushes piece by piece, handed to a reader that pulls it
// (the job service's NextUploadPiece): a thread of its own reads the body into a bounded
// buffer that Next drains.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace acs::server {

class BodyPipe {
 public:
  // `reader` must outlive the pipe; it is called from the pipe's thread only.
  explicit BodyPipe(const httplib::ContentReader& reader, size_t max_buffered = size_t{1} << 20);
  // Stops reading (the rest of the body is left unread) and joins the thread.
  ~BodyPipe();
  BodyPipe(const BodyPipe&) = delete;
  BodyPipe& operator=(const BodyPipe&) = delete;

  // Moves what has arrived since the last call (at least one byte) into `data`; false at
  // the end of the body, or when it broke off.
  bool Next(std::string* data);
  // Whether the body ended before all of it arrived (the peer went away, a read failed).
  bool broken();

 private:
  void Read(const httplib::ContentReader& reader);

  const size_t max_buffered_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;   // guarded by mu_
  bool ended_ = false;   // the reader returned; guarded by mu_
  bool broken_ = false;  // it returned false; guarded by mu_
  bool closed_ = false;  // the pipe is being destroyed; guarded by mu_
  std::thread thread_;   // last: starts once the rest is ready
};

}  // namespace acs::server
