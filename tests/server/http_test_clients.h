// Clients of the HTTP gateway for its tests: an event stream held open in a thread, and
// the server side of this process's connections.
#pragma once

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace acs::server::test {

// A stream of `token` on `path` in a thread of its own, open until Close().
class OpenStream {
 public:
  OpenStream(int port, const std::string& path, const std::string& token)
      : client_("127.0.0.1", port), thread_([this, path, token] {
          client_.Get(path.c_str(), {{"Authorization", "Bearer " + token}}, [this](const char*, size_t) {
            received_ = true;
            return !closing_.load();
          });
          ended_ = true;
        }) {}
  ~OpenStream() { Close(); }
  // Waits for the first bytes (an event or a heartbeat); false when the stream ended first.
  bool WaitOpen() {
    while (!received_ && !ended_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return received_;
  }
  // Closes the connection (the client's end), also while no bytes come.
  void Close() {
    closing_ = true;
    client_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> received_{false}, closing_{false}, ended_{false};
  httplib::Client client_;
  std::thread thread_;
};

// This process's sockets accepted on `port`: connected, with `port` as their local port.
inline std::vector<int> AcceptedSockets(int port) {
  std::vector<int> found;
  for (const std::filesystem::directory_entry& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 || local.ss_family != AF_INET) continue;
    if (ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port) != port) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0) found.push_back(fd);
  }
  return found;
}

}  // namespace acs::server::test
