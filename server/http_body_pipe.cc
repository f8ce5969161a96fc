#include "server/http_body_pipe.h"

namespace acs::server {

BodyPipe::BodyPipe(const httplib::ContentReader& reader, size_t max_buffered)
    : max_buffered_(max_buffered), thread_([this, r = &reader] { Read(*r); }) {}

BodyPipe::~BodyPipe() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BodyPipe::Read(const httplib::ContentReader& reader) {
  const bool complete = reader([this](const char* data, size_t size) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return buffer_.size() < max_buffered_ || closed_; });
    if (closed_) return false;
    buffer_.append(data, size);
    cv_.notify_all();
    return true;
  });
  std::lock_guard<std::mutex> lock(mu_);
  ended_ = true;
  broken_ = !complete && !closed_;
  cv_.notify_all();
}

bool BodyPipe::Next(std::string* data) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !buffer_.empty() || ended_; });
  if (buffer_.empty()) return false;
  data->clear();
  data->swap(buffer_);
  cv_.notify_all();
  return true;
}

bool BodyPipe::broken() {
  std::lock_guard<std::mutex> lock(mu_);
  return broken_;
}

}  // namespace acs::server
