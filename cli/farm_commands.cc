// The acs commands about the server's device farm: devices, predictor campaign / status.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/remote.h"
#include "cli/table.h"
#include "predictors/evaluation.h"

namespace acs::cli {
namespace {

void PrintStatus(const acs::v1::PredictorStatus& s) {
  std::printf("device class %s: predictor %s, version %lld, %lld kernel measurements", s.device_class().c_str(),
              s.state().c_str(), static_cast<long long>(s.version()), static_cast<long long>(s.kernel_measurements()));
  if (s.version() > 0) std::printf(", held-out within 10%%: %.1f%%", 100 * s.heldout_within10());
  std::printf("\n");
  if (s.version() > 0 && s.repeated_kernels() > 0) {
    std::printf("  %s\n", predictors::DescribeRepeatAgreement(s.repeated_kernels(), s.repeat_within10()).c_str());
  }
}

Status Devices(const Remote& r) {
  acs::v1::ListDevicesReply reply;
  ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::ListDevices, acs::v1::ListDevicesRequest(), &reply));
  Table table({"worker", "device class", "state", "version"});
  for (const auto& d : reply.devices()) {
    table.AddRow({d.worker_id(), d.device_class(), d.online() ? "online" : "offline", d.worker_version()});
  }
  table.Print(std::cout);
  return Status::Ok();
}

Status Predictor(const std::string& sub, const Remote& r) {
  const Flags& f = r.flags;
  if (!f.Has("device-class") || f.Get("device-class") == "local") {
    return Status::InvalidArgument(
        "--device-class must name a device class of the server's workers (see 'acs devices')");
  }
  acs::v1::PredictorStatus status;
  if (sub == "campaign") {
    ACS_ASSIGN_OR_RETURN(int64_t samples, f.GetInt("samples", 0));
    acs::v1::TrainPredictorRequest req;
    req.set_device_class(f.Get("device-class"));
    req.set_samples(static_cast<int32_t>(samples));
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::TrainPredictor, req, &status));
  }
  acs::v1::PredictorStatusRequest req;
  req.set_device_class(f.Get("device-class"));
  while (true) {
    ACS_RETURN_IF_ERROR(r.Unary(&acs::v1::Acs::Stub::GetPredictorStatus, req, &status));
    const bool running = status.state().rfind("collecting", 0) == 0 || status.state() == "training";
    if (!f.Has("wait") || !running) break;
    std::fprintf(stderr, "\r%s   ", status.state().c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (f.Has("wait")) std::fprintf(stderr, "\n");
  PrintStatus(status);
  if (status.state().rfind("failed", 0) == 0) return Status::Aborted("the campaign " + status.state());
  return Status::Ok();
}

const CommandSpec kDevices = {"devices",
                              "usage: acs devices [--server HOST:PORT]\n\nThe workers registered with the server.\n",
                              2, {}, {}, {}};

const char kRemotePredictorHelp[] =
    "usage: acs predictor campaign --server HOST:PORT --device-class ID [--samples N] [--wait]\n"
    "       acs predictor status --server HOST:PORT --device-class ID\n\n"
    "campaign: the server's workers of that device class measure N sampled kernels\n"
    "(default 600), then the server trains its predictor; --wait follows it to the end.\n";

}  // namespace

int DevicesCommand(int argc, char** argv) { return Run(kDevices, argc, argv, Devices); }

int RemotePredictorCommand(const std::string& sub, int argc, char** argv) {
  const CommandSpec spec = {"predictor " + sub, kRemotePredictorHelp, 3, {"device-class", "samples"}, {"wait"}, {}};
  return Run(spec, argc, argv, [&sub](const Remote& r) { return Predictor(sub, r); });
}

}  // namespace acs::cli
