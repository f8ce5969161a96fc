// The encoding of the job channel's messages (server/job_channel.h): records to and from
// the JSON values inside a call's MessagePack map, and the argument checks both sides use.
// Internal to the channel's sources. Every FromJson / argument reader throws Violation
// for a missing or mistyped field, and nlohmann::json's exceptions for other malformed
// values; callers turn both into errors (the server: a protocol violation; the child: an
// Internal status through Decoded).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "predictors/store.h"
#include "server/blob_store.h"
#include "server/measurement_campaign.h"
#include "server/server_store.h"

namespace acs::server::channel {

// A violation of the protocol by the child, thrown inside JobChannelServer::Apply.
struct Violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// args[key], which must exist; as a string; as an integer within [lo, hi].
const nlohmann::json& Arg(const nlohmann::json& args, const char* key);
std::string Str(const nlohmann::json& args, const char* key);
int64_t Int(const nlohmann::json& args, const char* key, int64_t lo, int64_t hi);
// A string field that must hold JSON text.
void CheckJsonText(const std::string& text, const char* what);

// The frame as a value, or discarded when it is not MessagePack or nests arrays / maps
// deeper than `max_depth` (the reader recurses per level: deeper input from a hostile
// child would overflow the server's stack). Never throws.
nlohmann::json ParseFrame(const std::string& frame, int max_depth = 32);

nlohmann::json JobToJson(const JobRecord& j);
JobRecord JobFromJson(const nlohmann::json& j);
nlohmann::json TaskToJson(const TaskRecord& t);
TaskRecord TaskFromJson(const nlohmann::json& j);
nlohmann::json StateToJson(const PredictorState& s);
PredictorState StateFromJson(const nlohmann::json& j);
nlohmann::json ModelToJson(const predictors::ModelRecord& r);
predictors::ModelRecord ModelFromJson(const nlohmann::json& j);
nlohmann::json PredictorToJson(const predictors::PredictorRecord& r);
predictors::PredictorRecord PredictorFromJson(const nlohmann::json& j);
nlohmann::json CommittedToJson(const BlobWriter::Committed& c);
BlobWriter::Committed CommittedFromJson(const nlohmann::json& j);

}  // namespace acs::server::channel
