// Bearer-token authentication and role checks (DESIGN §6): admin may do everything, user
// submits and reads their own jobs, worker only speaks the farm protocol. In the explicit
// no-auth mode (loopback demo) every caller is an admin named "local".
#pragma once

#include <initializer_list>
#include <string>

#include "server/server_store.h"

namespace acs::server {

// Whether HOST:PORT names a loopback host (127.*, localhost, [::1]): the only addresses
// the no-auth mode may serve on, for gRPC and HTTP alike.
bool IsLoopbackAddress(const std::string& host_port);

class Authenticator {
 public:
  Authenticator(ServerStore* store, bool no_auth) : store_(store), no_auth_(no_auth) {}
  // `authorization` is the request's "authorization" metadata, "Bearer <token>".
  // Unauthenticated when it is missing, malformed or unknown.
  StatusOr<Principal> Authenticate(const std::string& authorization) const;
  // PermissionDenied naming the role needed for `what`.
  static Status Require(const Principal& who, std::initializer_list<Role> allowed, const std::string& what);
  bool no_auth() const { return no_auth_; }

 private:
  ServerStore* store_;
  bool no_auth_;
};

}  // namespace acs::server
