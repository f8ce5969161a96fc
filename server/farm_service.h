// The farm protocol over gRPC: a thin adapter from proto/farm.proto to Farm.
#pragma once

#include "proto/farm.grpc.pb.h"
#include "server/auth.h"
#include "server/blob_store.h"
#include "server/farm.h"

namespace acs::server {

class FarmService final : public acs::farm::v1::Farm::Service {
 public:
  // blobs: where measure-model tasks' models are read from.
  FarmService(Farm* farm, const BlobStore* blobs, const Authenticator* auth) : farm_(farm), blobs_(blobs), auth_(auth) {}
  grpc::Status Register(grpc::ServerContext* ctx, const acs::farm::v1::RegisterRequest* req,
                        acs::farm::v1::RegisterReply* reply) override;
  grpc::Status Lease(grpc::ServerContext* ctx, const acs::farm::v1::LeaseRequest* req,
                     acs::farm::v1::LeaseReply* reply) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const acs::farm::v1::HeartbeatRequest* req,
                         acs::farm::v1::HeartbeatReply* reply) override;
  grpc::Status Report(grpc::ServerContext* ctx, const acs::farm::v1::ReportRequest* req,
                      acs::farm::v1::ReportReply* reply) override;
  grpc::Status FetchModel(grpc::ServerContext* ctx, const acs::farm::v1::FetchModelRequest* req,
                          grpc::ServerWriter<acs::farm::v1::ModelChunk>* writer) override;

 private:
  // The caller, when its token may speak the farm protocol.
  StatusOr<Principal> Check(grpc::ServerContext* ctx) const;
  Farm* farm_;
  const BlobStore* blobs_;
  const Authenticator* auth_;
};

// The request's "authorization" metadata, empty when absent.
std::string AuthorizationOf(const grpc::ServerContext* ctx);

}  // namespace acs::server
