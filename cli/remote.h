// The plumbing of the acs commands that talk to an acs-server: connection (address,
// token, TLS), flag parsing per command, and gRPC errors as "CODE: message". gRPC stays in
// the acs_cli_remote library (see cli/CMakeLists.txt).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/flags.h"
#include "core/status.h"
#include "proto/acs.grpc.pb.h"

namespace acs::cli {

// The --server / --token / --token-file / --tls-ca flags and their help.
extern const char kConnectHelp[];
inline const std::set<std::string> kConnectFlags = {"server", "token", "token-file", "tls-ca"};

struct Connection {
  std::unique_ptr<acs::v1::Acs::Stub> stub;
  std::string token;
  // Adds the token and a deadline `seconds` from now (none when seconds <= 0).
  void Prepare(grpc::ClientContext* ctx, double seconds = 60) const {
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    if (seconds <= 0) return;
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }
};

// A stub for --server with the token from --token, --token-file or $ACS_TOKEN; TLS with --tls-ca.
StatusOr<Connection> Connect(const Flags& flags);

// The server's answer as "CODE: message", saying where the server was when it cannot be
// reached.
Status Call(const grpc::Status& s, const Flags& flags);

// What a remote command accepts.
struct CommandSpec {
  std::string name;                      // in messages: "watch", "predictor status"
  std::string help;                      // usage and description, printed before kConnectHelp
  int first = 2;                         // argv index of the first argument
  std::set<std::string> valued;          // flags with a value, besides kConnectFlags
  std::set<std::string> switches;
  std::vector<std::string> positionals;  // their names in order, e.g. {"JOB"}
  size_t required = SIZE_MAX;            // how many of them are required (default: all)
};

struct Remote {
  Flags flags;
  Connection conn;
  // Unary call: `rpc` is e.g. &acs::v1::Acs::Stub::GetJob.
  template <typename Req, typename Reply, typename Rpc>
  Status Unary(Rpc rpc, const Req& req, Reply* reply) const {
    grpc::ClientContext ctx;
    conn.Prepare(&ctx);
    return Call(((*conn.stub).*rpc)(&ctx, req, reply), flags);
  }
};

// Parses the command's flags and positionals and connects.
StatusOr<Remote> Open(const CommandSpec& spec, int argc, char** argv);

// Prints the help, or parses, connects and runs body; returns the exit code.
int Run(const CommandSpec& spec, int argc, char** argv, const std::function<Status(const Remote&)>& body);
// The same for a body that returns the exit code itself.
int RunForCode(const CommandSpec& spec, int argc, char** argv, const std::function<StatusOr<int>(const Remote&)>& body);

}  // namespace acs::cli
