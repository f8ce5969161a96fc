#include "server/auth.h"

namespace acs::server {

bool IsLoopbackAddress(const std::string& listen) {
  return listen.rfind("127.", 0) == 0 || listen.rfind("localhost:", 0) == 0 || listen.rfind("[::1]:", 0) == 0;
}

StatusOr<Principal> Authenticator::Authenticate(const std::string& authorization) const {
  if (no_auth_) return Principal{0, "local", Role::kAdmin};
  const std::string prefix = "Bearer ";
  if (authorization.empty()) {
    return Status::Unauthenticated("no token: pass 'authorization: Bearer <token>' (acs: --token or ACS_TOKEN)");
  }
  if (authorization.compare(0, prefix.size(), prefix) != 0) {
    return Status::Unauthenticated("the authorization header must be 'Bearer <token>'");
  }
  return store_->Authenticate(authorization.substr(prefix.size()));
}

Status Authenticator::Require(const Principal& who, std::initializer_list<Role> allowed, const std::string& what) {
  for (Role r : allowed) {
    if (who.role == r) return Status::Ok();
  }
  std::string roles;
  for (Role r : allowed) roles += (roles.empty() ? "" : " or ") + std::string(RoleName(r));
  return Status::PermissionDenied(what + " needs the " + roles + " role; '" + who.name + "' is " +
                                  RoleName(who.role));
}

}  // namespace acs::server
