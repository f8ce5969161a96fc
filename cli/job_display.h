// How the acs job commands show a job (cli/job_commands.cc): event lines for `acs watch`,
// the summary of `acs job`, and the job's end as a status (the command's exit code).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "core/status.h"
#include "proto/acs.pb.h"

namespace acs::cli {

// Whether the job has ended (succeeded, budget not met, failed or cancelled).
bool IsTerminal(acs::v1::JobState s);
// 1536 -> "1.5 KiB".
std::string Bytes(int64_t n);
// "latency=0.5x".
std::string Budget(const acs::v1::Budget& b);
// "2.00x" when both latencies are known, else "".
std::string Speedup(double dense_us, double best_us);
// "12/40" episodes done of the request's.
std::string Episodes(const acs::v1::Job& job);
// One line per event for the progress display, starting with the local time the event
// happened (its date too when not today; nothing when the server did not say).
std::string EventLine(const acs::v1::JobEvent& e);
// A readable summary of a job.
void PrintJob(const acs::v1::Job& job, std::ostream& out);
// OK for a job that succeeded; otherwise an error carrying the job's own.
Status Outcome(const acs::v1::Job& job);

}  // namespace acs::cli
