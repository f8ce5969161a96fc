// What acs-server's main.cc shares with its job runner children's entry points
// (server_runners.cc): the flags' meaning and the process-wide signal pipe.
#pragma once

#include <string>

#include "core/flags.h"
#include "core/status.h"
#include "server/jobs.h"

namespace acs::server {

// Written by the signal handler, read by the thread that stops the process's work.
extern int g_signal_pipe[2];

// The hidden test switch --test-probe-runner-confinement (see server_runners.cc).
extern const char* const kTestProbeRunners;

std::string DbPath(const std::string& data_dir);  // the SQLite file under --data-dir
int Fail(const Status& s);                        // prints s; the exit code (2: bad input)
StatusOr<SchedulerOptions> SchedulerOptionsOf(const Flags& flags, const std::string& data_dir);

// `acs-server run-job ID`: runs the job until it ends or SIGTERM stops it (checkpointed).
int RunJobChild(const Flags& flags, const std::string& id);
// `acs-server check-job`: Submit's check of the request on stdin; its status on stdout.
int CheckJobChild(const Flags& flags);

}  // namespace acs::server
