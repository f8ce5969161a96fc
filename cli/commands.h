// The acs subcommands. Each returns the process exit code: 0 on success, 1 on an error
// (printed to stderr), 2 on bad usage.
#pragma once

#include <string>

namespace acs::cli {

int InspectCommand(int argc, char** argv);   // acs inspect MODEL --input SHAPE
int CompressCommand(int argc, char** argv);  // acs compress MODEL --policy P --out OUT
int EvalCommand(int argc, char** argv);      // acs eval MODEL --data DATA
int SearchCommand(int argc, char** argv);    // acs search MODEL --data DATA --budget B --out DIR
int PredictorCommand(int argc, char** argv); // acs predictor collect|train|eval|predict|campaign|status
int DevicesCommand(int argc, char** argv);   // acs devices --server S
// acs predictor campaign|status --server S: sub is "campaign" or "status".
int RemotePredictorCommand(const std::string& sub, int argc, char** argv);

}  // namespace acs::cli
