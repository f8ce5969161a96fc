// A real acs-server and worker on loopback (JobsServerTest) driven through the `acs` binary:
// what the CLI's integration tests share.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/server/jobs_fixture.h"

namespace acs::test_cli {

class CliServerTest : public acs::test_jobs::JobsServerTest {
 protected:
  // `acs COMMAND ARGS --server ... --token ...` (the user's token) run in the test's directory.
  acs::test_process::Output Acs(const std::string& command, const std::string& args) {
    return acs::test_process::Command("cd " + dir_.string() + " && " + std::string(ACS_BINARY_DIR) + "/cli/acs " +
                                          command + " " + args + " --server " + address_ + " --token " + user_token_,
                                      dir_);
  }
  // A JSON file of the test's directory; discarded (is_discarded()) when unreadable.
  nlohmann::json ReadJson(const std::string& name) {
    std::ifstream in(dir_ / name);
    return nlohmann::json::parse(in, nullptr, false);
  }
};

}  // namespace acs::test_cli
