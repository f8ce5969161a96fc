// Heavy headers shared by every torch-using target through one precompiled header.
#pragma once
#include <torch/script.h>
#include <torch/torch.h>
