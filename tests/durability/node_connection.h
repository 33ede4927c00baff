// NodeConnection: a pipelining Maelstrom client for one strata-node process.
//
// NodeSession (tests/node) sends one request and waits for its reply, which
// would leave the node's group commit nothing to group. This client queues
// any number of requests, writes them in one go, and hands back replies as
// they arrive, matched to requests by in_reply_to. Like NodeSession it
// checks every line against PROTOCOL.md section 1 (a JSON object from n1,
// msg_id counting from 0) and reports violations through GoogleTest.
#ifndef STRATA_TESTS_DURABILITY_NODE_CONNECTION_H_
#define STRATA_TESTS_DURABILITY_NODE_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_value.h"
#include "node_process.h"

namespace strata::testing {

class NodeConnection {
 public:
  // How long any blocking wait for the node lasts before the test fails.
  static constexpr std::chrono::milliseconds kTimeout{10000};

  // Starts the node with `args`; ok() says whether that worked.
  explicit NodeConnection(const std::vector<std::string>& args);

  bool ok() const { return process_.ok(); }
  NodeProcess& process() { return process_; }

  // Appends the request `body` (a JSON object text) with the next msg_id to
  // the output queue; returns that msg_id.
  int64_t Queue(std::string_view body);
  // Writes everything queued. `hold_back` bytes at the end stay unwritten
  // and are dropped (a kill then lands in the middle of a line).
  bool Flush(size_t hold_back = 0);
  size_t queued_bytes() const { return queued_.size(); }

  // The next reply body, if one arrives within `timeout` (zero: only lines
  // already received). Envelope problems are reported, the body returned.
  std::optional<JsonValue> Poll(std::chrono::milliseconds timeout);

  // Sends `body` alone and waits for its reply (nothing else may be in
  // flight). Returns an invalid value after reporting a failure.
  JsonValue Call(std::string_view body);
  // Call, expecting a reply of type `ok_type`.
  JsonValue CallOk(std::string_view body, std::string_view ok_type);

  // SIGKILLs the node and collects what it wrote before dying; replies it
  // wrote stay readable through Poll. Returns the wait status.
  std::optional<int> Kill();

 private:
  NodeProcess process_;
  std::string queued_;
  int64_t next_msg_id_ = 1;
  int64_t next_node_msg_id_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_DURABILITY_NODE_CONNECTION_H_
