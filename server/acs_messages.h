// The client API's messages (proto/acs.proto) to and from the job service's domain types
// (server/job_service.h), for every adapter that speaks them: gRPC, and JSON through
// protobuf's JSON mapping of the same messages.
#pragma once

#include <string>

#include "proto/acs.pb.h"
#include "server/job_service.h"

namespace acs::server {

// A stored job state ("queued", ...) as the API's enum and back; unknown ones map to
// JOB_STATE_UNSPECIFIED and "".
acs::v1::JobState JobStateOf(const std::string& stored);
std::string StoredJobState(acs::v1::JobState state);

// The submitted request with the service's defaults where a field is left unset.
JobRequest RequestOf(const acs::v1::SubmitJobRequest& request);
void FillJob(const JobRecord& job, acs::v1::Job* out);
void FillEvent(const JobEventView& event, acs::v1::JobEvent* out);
void FillChoices(const SubmitChoices& choices, acs::v1::SearchSpaceChoices* out);
void FillPredictorStatus(const PredictorState& state, acs::v1::PredictorStatus* out);
void FillDevice(const DeviceView& device, acs::v1::Device* out);
void FillEvaluation(const std::string& device_class, const predictors::EvalReport& report,
                    acs::v1::PredictorEvaluation* out);

}  // namespace acs::server
