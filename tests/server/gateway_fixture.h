// The HTTP gateway's unit-test stack: a job service over in-process scheduler parts and the
// gateway on a loopback port, as the gateway tests share it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "server/http_gateway.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server::test {

class GatewayFixture : public ::testing::Test {
 protected:
  explicit GatewayFixture(const std::string& prefix) : parts_(prefix) {}
  // Opens the parts, then starts the service and the gateway (http.listen is set here).
  void StartGateway(const JobServiceOptions& service = JobServiceOptions(), HttpGatewayOptions http = {}) {
    ASSERT_TRUE(parts_.Open().ok());
    service_ = std::make_unique<JobService>(JobServiceParts::Of(parts_), service);
    auth_ = std::make_unique<Authenticator>(parts_.store.get(), /*no_auth=*/false);
    http.listen = "127.0.0.1:0";
    gateway_ = std::make_unique<HttpGateway>(service_.get(), auth_.get(), http);
    ASSERT_TRUE(gateway_->Start().ok());
    ASSERT_GT(gateway_->port(), 0);
  }
  void TearDown() override {
    gateway_.reset();
    service_.reset();
  }

  SchedulerParts parts_;
  std::unique_ptr<JobService> service_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<HttpGateway> gateway_;
};

}  // namespace acs::server::test
