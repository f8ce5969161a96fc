// KernelSpec moved to core (the farm, the worker and the predictors share it).
#pragma once

#include "core/kernel_spec.h"

namespace acs::worker {
using acs::KernelSpec;
using acs::ParseKernelSpec;
using acs::ReadKernelSpec;
}  // namespace acs::worker
