// The client API over gRPC (proto/acs.proto): a thin adapter over the server core. Devices
// and predictors are served here; the job RPCs answer UNIMPLEMENTED until the job
// scheduler is in.
#pragma once

#include "proto/acs.grpc.pb.h"
#include "server/auth.h"
#include "server/campaign.h"
#include "server/farm.h"

namespace acs::server {

class AcsService final : public acs::v1::Acs::Service {
 public:
  AcsService(Farm* farm, Campaigns* campaigns, predictors::MeasurementStore* measurements, const Authenticator* auth)
      : farm_(farm), campaigns_(campaigns), measurements_(measurements), auth_(auth) {}
  grpc::Status ListDevices(grpc::ServerContext* ctx, const acs::v1::ListDevicesRequest* req,
                           acs::v1::ListDevicesReply* reply) override;
  grpc::Status TrainPredictor(grpc::ServerContext* ctx, const acs::v1::TrainPredictorRequest* req,
                              acs::v1::PredictorStatus* reply) override;
  grpc::Status GetPredictorStatus(grpc::ServerContext* ctx, const acs::v1::PredictorStatusRequest* req,
                                  acs::v1::PredictorStatus* reply) override;
  grpc::Status EvaluatePredictor(grpc::ServerContext* ctx, const acs::v1::EvaluatePredictorRequest* req,
                                 acs::v1::PredictorEvaluation* reply) override;

 private:
  StatusOr<Principal> Caller(grpc::ServerContext* ctx, std::initializer_list<Role> allowed, const std::string& what);
  Farm* farm_;
  Campaigns* campaigns_;
  predictors::MeasurementStore* measurements_;
  const Authenticator* auth_;
};

}  // namespace acs::server
