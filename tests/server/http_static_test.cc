// The dashboard's static files (server/http_static.h): content types, index.html at /, and
// no way out of the root, asked over a loopback port with raw request lines (a client
// library could normalize the path before sending it).
#include "server/http_static.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/temp_dir.h"

namespace acs::server {
namespace {
namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// The whole answer to `request_line` sent as is to 127.0.0.1:port.
std::string RawGet(int port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) answer.append(buf, static_cast<size_t>(n));
  close(fd);
  return answer;
}

class HttpStaticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(dir_.path()) / "dist";
    Write(root_ / "index.html", "<!doctype html>INDEX");
    Write(root_ / "app.js", "console.log(1)");
    Write(root_ / "app.css", "body{}");
    Write(root_ / "sub" / "x.svg", "<svg/>");
    Write(fs::path(dir_.path()) / "secret.txt", "SECRET");
    fs::create_symlink(fs::path(dir_.path()) / "secret.txt", root_ / "link.txt");
    ASSERT_TRUE(ServeStaticFiles(&server_, root_.string()).ok());
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });  // bound: connections queue until it accepts
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  ScopedTempDir dir_{"acs-http-static-"};
  fs::path root_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(HttpStaticTest, ServesFilesWithTheirTypes) {
  httplib::Client client("127.0.0.1", port_);
  for (const auto& [path, type, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/", "text/html; charset=utf-8", "<!doctype html>INDEX"},
           {"/index.html", "text/html; charset=utf-8", "<!doctype html>INDEX"},
           {"/app.js", "text/javascript; charset=utf-8", "console.log(1)"},
           {"/app.css", "text/css; charset=utf-8", "body{}"},
           {"/sub/x.svg", "image/svg+xml", "<svg/>"}}) {
    httplib::Result r = client.Get(path.c_str());
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->get_header_value("Content-Type"), type) << path;
    EXPECT_EQ(r->body, body) << path;
  }
  EXPECT_NE(client.Get("/")->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
}

TEST_F(HttpStaticTest, NothingOutsideTheRoot) {
  for (const std::string target :
       {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/sub/%2e%2e/index.html", "/./index.html", "//etc/passwd", "/..%5csecret.txt", "/link.txt", "/sub", "/sub/",
        "/missing.js", "/api/v1/jobs", "/index.html%00.js"}) {
    const std::string answer = RawGet(port_, target);
    EXPECT_EQ(answer.rfind("HTTP/1.1 404", 0), 0u) << target << ": " << answer.substr(0, 200);
    EXPECT_EQ(answer.find("SECRET"), std::string::npos) << target;
  }
}

TEST(HttpStaticPaths, ResolvesOnlyPlainNamesUnderTheRoot) {
  ScopedTempDir dir("acs-http-static-");
  Write(fs::path(dir.path()) / "index.html", "x");
  EXPECT_TRUE(ResolveStaticPath(dir.path(), "/").ok());
  EXPECT_FALSE(ResolveStaticPath(dir.path(), "").ok());
  EXPECT_FALSE(ResolveStaticPath(dir.path(), "index.html").ok());
  EXPECT_FALSE(ResolveStaticPath(dir.path(), "/../" + fs::path(dir.path()).filename().string() + "/index.html").ok());
  EXPECT_FALSE(ResolveStaticPath("/nonexistent-root", "/").ok());
  EXPECT_EQ(ContentTypeOf("a.woff2"), "font/woff2");
  EXPECT_EQ(ContentTypeOf("a.bin"), "application/octet-stream");
  EXPECT_FALSE(ServeStaticFiles(nullptr, dir.path() + "/index.html").ok());
}

}  // namespace
}  // namespace acs::server
