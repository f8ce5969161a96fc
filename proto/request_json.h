// The parts of a SubmitJobRequest that have a JSON form checked by core/ (the preprocessing
// steps: core/preprocess.h; the split: core/data_split.h), one conversion for the server
// and the clients.
#pragma once

#include <nlohmann/json.hpp>

#include "proto/acs.pb.h"

namespace acs {

using PreprocessStepsProto = google::protobuf::RepeatedPtrField<acs::v1::PreprocessStep>;

// Each step as {"op": ..., fields that are set}; unchecked.
nlohmann::json PreprocessStepsJson(const PreprocessStepsProto& steps);
// Appends the steps of a spec's JSON (PreprocessSpec::ToJson) to *out; values of the wrong
// type are left out.
void AddPreprocessSteps(const nlohmann::json& steps, PreprocessStepsProto* out);

// The split as DataSplit::ToJson writes it (unset parts left out); unchecked.
nlohmann::json DataSplitJson(const acs::v1::DataSplit& split);
// The split of a DataSplit::ToJson object into *out; values of the wrong type are left out.
void SetDataSplit(const nlohmann::json& split, acs::v1::DataSplit* out);

}  // namespace acs
