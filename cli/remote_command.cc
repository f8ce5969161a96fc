// The acs commands that talk to an acs-server: devices, predictor campaign / status.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "proto/acs.grpc.pb.h"
#include "proto/grpc_status.h"

namespace acs::cli {
namespace {

const char kConnectHelp[] =
    "server options:\n"
    "  --server HOST:PORT  the acs-server (default 127.0.0.1:50051)\n"
    "  --token TOKEN       bearer token (default: $ACS_TOKEN, or the file --token-file names)\n"
    "  --token-file PATH   read the token from this file\n"
    "  --tls-ca PATH       PEM of the server's CA: connect with TLS\n";

const std::set<std::string> kConnectFlags = {"server", "token", "token-file", "tls-ca"};

struct Connection {
  std::unique_ptr<acs::v1::Acs::Stub> stub;
  std::string token;
  void Prepare(grpc::ClientContext* ctx, double seconds = 60) const {
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }
};

StatusOr<std::string> ReadFileText(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(what + " '" + path + "' cannot be read");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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

// The server's message, with where it came from when the server cannot be reached.
Status Call(const grpc::Status& s, const Flags& flags) {
  Status st = FromGrpc(s);
  if (st.code() == StatusCode::kUnavailable) {
    return Status::Unavailable("cannot reach acs-server at " + flags.Get("server", "127.0.0.1:50051") + ": " +
                               st.message());
  }
  return st;
}

StatusOr<Flags> ParseRemote(int argc, char** argv, int first, std::set<std::string> valued,
                            const std::set<std::string>& switches) {
  valued.insert(kConnectFlags.begin(), kConnectFlags.end());
  ACS_ASSIGN_OR_RETURN(Flags flags, ParseFlags(argc, argv, first, valued, switches));
  if (!flags.positional.empty()) return Status::InvalidArgument("unexpected argument '" + flags.positional[0] + "'");
  return flags;
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  }
  return false;
}

void PrintStatus(const acs::v1::PredictorStatus& s) {
  std::printf("device class %s: predictor %s, version %lld, %lld kernel measurements", s.device_class().c_str(),
              s.state().c_str(), static_cast<long long>(s.version()), static_cast<long long>(s.kernel_measurements()));
  if (s.version() > 0) std::printf(", held-out within 10%%: %.1f%%", 100 * s.heldout_within10());
  std::printf("\n");
}

}  // namespace

int DevicesCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::cout << "usage: acs devices [--server HOST:PORT]\n\nThe workers registered with the server.\n\n"
              << kConnectHelp;
    return 0;
  }
  StatusOr<Flags> flags = ParseRemote(argc, argv, 2, {}, {});
  if (!flags.ok()) return Fail("devices", flags.status());
  StatusOr<Connection> c = Connect(*flags);
  if (!c.ok()) return Fail("devices", c.status());
  grpc::ClientContext ctx;
  c->Prepare(&ctx);
  acs::v1::ListDevicesReply reply;
  if (Status s = Call(c->stub->ListDevices(&ctx, {}, &reply), *flags); !s.ok()) return Fail("devices", s);
  Table table({"worker", "device class", "state", "version"});
  for (const auto& d : reply.devices()) {
    table.AddRow({d.worker_id(), d.device_class(), d.online() ? "online" : "offline", d.worker_version()});
  }
  table.Print(std::cout);
  return 0;
}

int RemotePredictorCommand(const std::string& sub, int argc, char** argv) {
  const std::string command = "predictor " + sub;
  if (WantsHelp(argc, argv)) {
    std::cout << "usage: acs predictor campaign --server HOST:PORT --device-class ID [--samples N] [--wait]\n"
                 "       acs predictor status --server HOST:PORT --device-class ID\n\n"
                 "campaign: the server's workers of that device class measure N sampled kernels\n"
                 "(default 600), then the server trains its predictor; --wait follows it to the end.\n\n"
              << kConnectHelp;
    return 0;
  }
  StatusOr<Flags> flags = ParseRemote(argc, argv, 3, {"device-class", "samples"}, {"wait"});
  if (!flags.ok()) return Fail(command, flags.status());
  if (!flags->Has("device-class") || flags->Get("device-class") == "local") {
    return Fail(command, Status::InvalidArgument("--device-class must name a device class of the server's workers "
                                                 "(see 'acs devices')"));
  }
  StatusOr<Connection> c = Connect(*flags);
  if (!c.ok()) return Fail(command, c.status());
  acs::v1::PredictorStatus status;
  if (sub == "campaign") {
    StatusOr<int64_t> samples = flags->GetInt("samples", 0);
    if (!samples.ok()) return Fail(command, samples.status());
    acs::v1::TrainPredictorRequest req;
    req.set_device_class(flags->Get("device-class"));
    req.set_samples(static_cast<int32_t>(*samples));
    grpc::ClientContext ctx;
    c->Prepare(&ctx);
    if (Status s = Call(c->stub->TrainPredictor(&ctx, req, &status), *flags); !s.ok()) return Fail(command, s);
  }
  while (true) {
    acs::v1::PredictorStatusRequest req;
    req.set_device_class(flags->Get("device-class"));
    grpc::ClientContext ctx;
    c->Prepare(&ctx);
    if (Status s = Call(c->stub->GetPredictorStatus(&ctx, req, &status), *flags); !s.ok()) return Fail(command, s);
    const bool running = status.state().rfind("collecting", 0) == 0 || status.state() == "training";
    if (!flags->Has("wait") || !running) break;
    std::fprintf(stderr, "\r%s   ", status.state().c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (flags->Has("wait")) std::fprintf(stderr, "\n");
  PrintStatus(status);
  return status.state().rfind("failed", 0) == 0 ? 1 : 0;
}

}  // namespace acs::cli
