// The OpenMP environment of measuring processes. libgomp reads GOMP_SPINCOUNT when it is
// loaded, before main; with its default (threads spin ~300,000 times before sleeping) the
// LibTorch and runtime thread pools of a 2-thread measurement fight for the cores and about
// one dense 2-thread kernel in eight ran 10-200x slow on a 2-core machine (README, latency
// predictors). A short spin removes those outliers without changing the median.
#pragma once

namespace acs::measure {

inline constexpr const char* kSpinCountVariable = "GOMP_SPINCOUNT";
inline constexpr const char* kMeasuringSpinCount = "10000";

// When GOMP_SPINCOUNT is unset: sets it to kMeasuringSpinCount and re-executes the current
// program (/proc/self/exe, same argv and pid). Returns when it is set already or the
// re-execution fails (the process then runs with libgomp's default).
void EnsureMeasuringOpenMpEnvironment(char** argv);

}  // namespace acs::measure
