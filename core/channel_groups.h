// Derives channel groups from the data flow of a Graph (DESIGN §3).
#pragma once

#include "core/graph.h"
#include "core/status.h"

namespace acs {

// Fills graph->groups, graph->channel_tensors and every layer's out_group, in_group and
// input_segments. Requires nodes, values (with recorded shapes) and layers to be set.
//
// Channels that flow only through ops known to keep the channel axis (activations,
// batch norm, pooling, element-wise ops with a tensor of the same channels, concat on
// the channel axis, flatten into a linear layer, depthwise convs) up to the input of
// conv / linear layers form a prunable group. Channels that reach any other op, a model
// output, or come from the model input are kept whole; the group says why.
Status DeriveChannelGroups(Graph* graph);

}  // namespace acs
