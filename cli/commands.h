// The acs subcommands. Each returns the process exit code: 0 on success, 1 on an error
// (printed to stderr), 2 on bad usage.
#pragma once

#include <string>

#include "core/flags.h"
#include "core/status.h"

namespace acs::cli {

int InspectCommand(int argc, char** argv);   // acs inspect MODEL --input SHAPE
int CompressCommand(int argc, char** argv);  // acs compress MODEL --policy P --out OUT
int EvalCommand(int argc, char** argv);      // acs eval MODEL --data DATA
int DataCommand(int argc, char** argv);      // acs data inspect DATA [--preprocess SPEC]
int SearchCommand(int argc, char** argv);    // acs search MODEL --data DATA --budget B --out DIR
int PredictorCommand(int argc, char** argv); // acs predictor collect|train|eval|predict|campaign|status
int DevicesCommand(int argc, char** argv);   // acs devices --server S
int SubmitCommand(int argc, char** argv);    // acs submit MODEL --input SHAPE --data D --budget B [--watch]
int WatchCommand(int argc, char** argv);     // acs watch JOB
int JobsCommand(int argc, char** argv);      // acs jobs [--state S] [--all]
int JobCommand(int argc, char** argv);       // acs job JOB [--json]
int CancelCommand(int argc, char** argv);    // acs cancel JOB
int DownloadCommand(int argc, char** argv);  // acs download JOB --out DIR [--name NAME|--all]
int CampaignCommand(int argc, char** argv);  // acs campaign run|list|show|report (exit codes: cli/campaign_command.cc)
int SweepCommand(int argc, char** argv);     // acs sweep MODEL --budgets B,B (exit codes: cli/sweep_command.cc)
// acs predictor campaign|status --server S: sub is "campaign" or "status".
int RemotePredictorCommand(const std::string& sub, int argc, char** argv);
// acs predictor collect, its flags parsed (cli/predictor_collect.cc).
Status PredictorCollect(const Flags& flags);

}  // namespace acs::cli
