// `acs campaign run SPEC`: starts (or resumes) the stored run of the spec's campaign for a
// date, submits the cells that have no job yet (each carrying the spec's time limit, which
// the server enforces), follows them to their end with one line per change, and writes the
// report.
#pragma once

#include "cli/remote.h"
#include "core/status.h"

namespace acs::cli {

// The report's exit code (0, kExitRegressed, kExitFailedCells), or an error.
StatusOr<int> RunCampaign(const Remote& r);

// Today's date in UTC, YYYY-MM-DD.
std::string TodayUtc();

}  // namespace acs::cli
