// Node: the Maelstrom shell around the store.
//
// It owns the node's identity, the outgoing msg_id counter, the store and the
// background work (garbage collection), and turns one input line into zero or
// more output lines. It does no I/O itself: the event loop (event_loop.h)
// feeds it lines and flushes what it appends, which keeps it testable and
// fuzzable without processes or pipes.
#ifndef STRATA_NODE_NODE_H_
#define STRATA_NODE_NODE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/services.h"
#include "node/txn_table.h"
#include "protocol/envelope.h"
#include "protocol/json_writer.h"
#include "strata/mvcc_store.h"
#include "strata/txn_store.h"

namespace strata::node {

struct NodeOptions {
  // Keep this many timestamps of history below the highest timestamp seen;
  // nullopt disables automatic garbage collection.
  std::optional<uint64_t> gc_retention;
  // How often the background collector looks for work when idle.
  std::chrono::milliseconds gc_interval{10};
  // Keys the collector sweeps per slice: small enough to never stall requests.
  size_t gc_keys_per_step = 2000;
  // Isolation of transactions that do not name one (and of the workloads).
  Isolation isolation = Isolation::kSerializable;
  // A transaction idle this long is aborted.
  std::chrono::milliseconds txn_timeout{10000};
  // Open transactions at most; txn_begin past it gets error 11.
  size_t max_active_txns = 10000;
};

class GcScheduler;

class Node final {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Node(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Processes one input line (without its newline) and appends every output
  // line it produces, each ending in '\n', to `*out`. Diagnostics for lines
  // that cannot be answered go to `*log`, one line each. Never throws.
  void HandleLine(std::string_view line, std::string* out, std::string* log);

  // Runs background work that is due at `now`; returns when it next wants to
  // run (nullopt: nothing scheduled).
  std::optional<Clock::time_point> RunTimers(Clock::time_point now);

  MvccStore& store() { return *store_; }
  TxnStore& db() { return *db_; }

 private:
  // Runs the request; on success fills `reply_fields_` and `reply_type`.
  protocol::MaybeError Dispatch(const protocol::Envelope& request, std::string_view* reply_type);
  protocol::MaybeError HandleInit(const protocol::Body& body);
  void WriteReply(const protocol::Envelope& request, std::string_view type, std::string_view fields,
                  std::string* out);
  void WriteError(const protocol::Envelope& request, const protocol::ErrorReply& error,
                  std::string* out);

  NodeOptions options_;
  std::unique_ptr<MvccStore> store_;
  std::unique_ptr<TxnStore> db_;
  TxnTable txns_;  // declared after db_: destroyed (aborting its transactions) first
  std::unique_ptr<GcScheduler> gc_;
  protocol::EnvelopeParser parser_;
  protocol::Envelope request_;  // reused across lines: no allocation per message
  std::string reply_fields_;    // reused scratch for a reply's body fields
  std::string node_id_;         // empty until init
  std::vector<std::string> node_ids_;
  uint64_t next_msg_id_ = 0;
};

}  // namespace strata::node

#endif  // STRATA_NODE_NODE_H_
