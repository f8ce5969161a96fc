// acs: the command-line client.
#include <cstring>
#include <iostream>
#include <string>

#include "cli/commands.h"

namespace {

const char kUsage[] =
    "acs - automated compression search\n"
    "\n"
    "usage: acs COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  inspect   show a TorchScript model's layers, shapes, FLOPs and channel groups\n"
    "  compress  apply a per-layer compression policy and export TorchScript\n"
    "  eval      measure accuracy (or fidelity) of a model on a dataset\n"
    "  search    search a per-layer compression policy within a latency / FLOPs / size budget\n"
    "  predictor collect kernel measurements, train and evaluate latency predictors\n"
    "  devices   the workers registered with an acs-server (--server)\n"
    "\n"
    "Run 'acs COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  if (command == "inspect") return acs::cli::InspectCommand(argc, argv);
  if (command == "compress") return acs::cli::CompressCommand(argc, argv);
  if (command == "eval") return acs::cli::EvalCommand(argc, argv);
  if (command == "search") return acs::cli::SearchCommand(argc, argv);
  if (command == "predictor") return acs::cli::PredictorCommand(argc, argv);
  if (command == "devices") return acs::cli::DevicesCommand(argc, argv);
  std::cerr << "acs: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
