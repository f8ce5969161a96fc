#include "cli/remote.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/common.h"
#include "proto/grpc_status.h"

namespace acs::cli {
namespace {

StatusOr<std::string> ReadFileText(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(what + " '" + path + "' cannot be read");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  }
  return false;
}

}  // namespace

const char kConnectHelp[] =
    "server options:\n"
    "  --server HOST:PORT  the acs-server (default 127.0.0.1:50051)\n"
    "  --token TOKEN       bearer token (default: $ACS_TOKEN, or the file --token-file names)\n"
    "  --token-file PATH   read the token from this file\n"
    "  --tls-ca PATH       PEM of the server's CA: connect with TLS\n";

StatusOr<Connection> Connect(const Flags& flags) {
  Connection c;
  const char* env = std::getenv("ACS_TOKEN");
  c.token = flags.Get("token", env ? env : "");
  if (flags.Has("token-file")) {
    ACS_ASSIGN_OR_RETURN(std::string text, ReadFileText(flags.Get("token-file"), "token file"));
    c.token = text.substr(0, text.find_first_of("\r\n"));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (flags.Has("tls-ca")) {
    grpc::SslCredentialsOptions ssl;
    ACS_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFileText(flags.Get("tls-ca"), "CA file"));
    creds = grpc::SslCredentials(ssl);
  }
  c.stub = acs::v1::Acs::NewStub(grpc::CreateChannel(flags.Get("server", "127.0.0.1:50051"), creds));
  return c;
}

Status Call(const grpc::Status& s, const Flags& flags) {
  if (s.ok()) return Status::Ok();
  const Status st = FromGrpc(s);
  std::string code = StatusCodeName(st.code());
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) code = "DEADLINE_EXCEEDED";
  std::string message = s.error_message();
  if (st.code() == StatusCode::kUnimplemented && message.empty()) {
    message = "this acs-server does not implement the call; it is older than this client";
  }
  if (st.code() == StatusCode::kUnavailable) {
    message = "cannot reach acs-server at " + flags.Get("server", "127.0.0.1:50051") + ": " + message;
  }
  return Status(st.code(), code + ": " + message);
}

StatusOr<Remote> Open(const CommandSpec& spec, int argc, char** argv) {
  std::set<std::string> valued = spec.valued;
  valued.insert(kConnectFlags.begin(), kConnectFlags.end());
  Remote r;
  ACS_ASSIGN_OR_RETURN(r.flags, ParseFlags(argc, argv, spec.first, valued, spec.switches));
  const auto& pos = r.flags.positional;
  if (pos.size() < std::min(spec.required, spec.positionals.size())) {
    return Status::InvalidArgument("missing " + spec.positionals[pos.size()] + " (see 'acs " + spec.name + " --help')");
  }
  if (pos.size() > spec.positionals.size()) {
    return Status::InvalidArgument("unexpected argument '" + pos[spec.positionals.size()] + "'");
  }
  ACS_ASSIGN_OR_RETURN(r.conn, Connect(r.flags));
  return r;
}

int Run(const CommandSpec& spec, int argc, char** argv, const std::function<Status(const Remote&)>& body) {
  return RunForCode(spec, argc, argv, [&](const Remote& r) -> StatusOr<int> {
    ACS_RETURN_IF_ERROR(body(r));
    return 0;
  });
}

int RunForCode(const CommandSpec& spec, int argc, char** argv,
               const std::function<StatusOr<int>(const Remote&)>& body) {
  if (WantsHelp(argc, argv)) {
    std::cout << spec.help << "\n" << kConnectHelp;
    return 0;
  }
  StatusOr<Remote> r = Open(spec, argc, argv);
  if (!r.ok()) return Fail(spec.name, r.status());
  const StatusOr<int> code = body(*r);
  return code.ok() ? *code : Fail(spec.name, code.status());
}

}  // namespace acs::cli
