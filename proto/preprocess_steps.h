// The preprocessing steps of a SubmitJobRequest and their JSON form (core/preprocess.h's
// spec, which checks them), one conversion for the server and the clients.
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

}  // namespace acs
