#include "devices/measure/process_env.h"

#include <unistd.h>

#include <cstdlib>

namespace acs::measure {

void EnsureMeasuringOpenMpEnvironment(char** argv) {
  if (std::getenv(kSpinCountVariable) != nullptr) return;
  if (setenv(kSpinCountVariable, kMeasuringSpinCount, 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when execv failed: carry on with the default, and do not retry.
}

}  // namespace acs::measure
