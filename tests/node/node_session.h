// NodeSession: a Maelstrom client talking to one strata-node process.
//
// It wraps requests in envelopes, numbers them, and checks every line the
// node writes against section 1 of PROTOCOL.md before handing it to a test:
// it must be a JSON object from the node to a client, and its msg_id must be
// the node's own counter (0 for the first message, +1 for each one after).
// Failures are reported through GoogleTest and leave the session usable, so
// one wrong reply does not cascade into timeouts.
#ifndef STRATA_TESTS_NODE_NODE_SESSION_H_
#define STRATA_TESTS_NODE_NODE_SESSION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_value.h"
#include "node_process.h"

namespace strata::testing {

// How long a test waits for any single reply (the seed's per-case timeout).
inline constexpr std::chrono::milliseconds kReplyTimeout{5000};

class NodeSession {
 public:
  static constexpr std::string_view kNodeId = "n1";
  static constexpr std::string_view kClientId = "c1";

  // Starts strata-node with `args` (the node is not initialized yet).
  explicit NodeSession(const std::vector<std::string>& args = {});

  NodeProcess& process() { return process_; }

  // Sends `init` as the single node n1 and expects init_ok.
  void Init();

  // Writes `line` plus '\n' exactly as given.
  void SendLine(std::string_view line);
  // Sends the request body `body` (a JSON object text) from kClientId with
  // the next client msg_id, which it returns.
  int64_t Send(std::string_view body);
  // Sends `body` without a msg_id: the node must process it but not answer.
  void SendUnanswered(std::string_view body);

  // Reads the next reply and checks its envelope and msg_id (see above).
  // Returns an invalid value (after reporting a failure) on timeout.
  JsonValue NextReply();

  // Sends `body` and returns the reply's body, checking in_reply_to.
  JsonValue Call(std::string_view body);
  // Calls and compares the reply body with `expected`, to which in_reply_to
  // and msg_id are added, as JSON values.
  void ExpectReply(std::string_view body, std::string_view expected);
  // Calls and expects a reply of type `ok_type`; returns its body.
  JsonValue CallOk(std::string_view body, std::string_view ok_type);
  // Calls and expects an error reply with `code`; returns its text.
  std::string ExpectError(std::string_view body, int code);

  // Raw-API shorthands; `key` and `value` are JSON texts ("\"k\"", "1").
  // They expect success and return the reply body.
  JsonValue Put(std::string_view key, std::string_view value, int64_t timestamp);
  JsonValue Delete(std::string_view key, int64_t timestamp);
  JsonValue Stats();

  // Closes stdin and expects exit status 0 with no stray output.
  void ExpectCleanExit();

  // The msg_id the node's next message must carry.
  int64_t next_node_msg_id() const { return next_node_msg_id_; }
  // Accounts for a reply read outside NextReply (raw line comparisons).
  void CountReply() { ++next_node_msg_id_; }
  // Reads one raw stdout line (nullopt on timeout), without checks.
  std::optional<std::string> ReadLine() { return process_.ReadLine(kReplyTimeout); }

 private:
  NodeProcess process_;
  int64_t next_client_msg_id_ = 1;
  int64_t next_node_msg_id_ = 0;
  bool exited_ = false;
};

// The `mvcc_stats` fields of section 5 that a single node must report.
const std::vector<std::string>& RawStatsFields();

}  // namespace strata::testing

#endif  // STRATA_TESTS_NODE_NODE_SESSION_H_
