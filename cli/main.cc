// acs: the command-line client.
#include <cstring>
#include <iostream>
#include <string>

#include "cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* summary;  // one line of `acs --help`
  bool remote;          // talks to an acs-server
};

const Command kCommands[] = {
    {"inspect", acs::cli::InspectCommand, "show a TorchScript model's layers, shapes, FLOPs and channel groups", false},
    {"compress", acs::cli::CompressCommand, "apply a per-layer compression policy and export TorchScript", false},
    {"eval", acs::cli::EvalCommand, "measure accuracy (or fidelity) of a model on a dataset", false},
    {"data", acs::cli::DataCommand, "inspect a dataset as a model sees it after its preprocessing", false},
    {"search", acs::cli::SearchCommand,
     "search a per-layer compression policy within a latency / FLOPs / size budget", false},
    {"predictor", acs::cli::PredictorCommand, "collect kernel measurements, train and evaluate latency predictors",
     false},
    {"submit", acs::cli::SubmitCommand, "upload a model (and dataset) and submit a compression search job", true},
    {"sweep", acs::cli::SweepCommand, "one job per budget: the accuracy / measured-latency Pareto front", true},
    {"watch", acs::cli::WatchCommand, "follow a job's progress until it ends", true},
    {"jobs", acs::cli::JobsCommand, "list jobs", true},
    {"job", acs::cli::JobCommand, "show one job (--json for JSON)", true},
    {"cancel", acs::cli::CancelCommand, "cancel a job", true},
    {"download", acs::cli::DownloadCommand, "download a job's compressed model, policy and report", true},
    {"devices", acs::cli::DevicesCommand, "the workers registered with the server", true},
    {"campaign", acs::cli::CampaignCommand, "run a nightly campaign of jobs; list, show and report its runs", true},
};

void PrintUsage(std::ostream& out) {
  out << "acs - automated compression search\n\nusage: acs COMMAND [options]\n\ncommands:\n";
  for (bool remote : {false, true}) {
    if (remote) out << "\ncommands that talk to an acs-server (--server HOST:PORT):\n";
    for (const Command& c : kCommands) {
      if (c.remote == remote) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
    }
  }
  out << "\nRun 'acs COMMAND --help' for a command's options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    PrintUsage(std::cout);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (argv[1] == std::string(c.name)) return c.run(argc, argv);
  }
  std::cerr << "acs: unknown command '" << argv[1] << "'\n\n";
  PrintUsage(std::cerr);
  return 2;
}
