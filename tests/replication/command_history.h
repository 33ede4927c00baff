// CommandHistory: a replicated state for tests that remembers every
// command it applied, in order (a snapshot: one a line). Applying returns
// how many were applied, with this one.
#ifndef STRATA_TESTS_REPLICATION_COMMAND_HISTORY_H_
#define STRATA_TESTS_REPLICATION_COMMAND_HISTORY_H_

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "replication/raft_host.h"

namespace strata::replication {

class CommandHistory : public ReplicatedState {
 public:
  Status Restore(std::string_view snapshot) override {
    commands.clear();
    std::istringstream in{std::string(snapshot)};
    for (std::string line; std::getline(in, line);) commands.push_back(line);
    return Status::Ok();
  }
  std::string Apply(raft::Index, std::string_view command) override {
    commands.emplace_back(command);
    return std::to_string(commands.size());
  }
  std::string Save() const override {
    std::string out;
    for (const std::string& c : commands) out += c + "\n";
    return out;
  }
  std::vector<std::string> commands;
};

}  // namespace strata::replication

#endif  // STRATA_TESTS_REPLICATION_COMMAND_HISTORY_H_
