// Node: the Maelstrom shell around the store.
//
// It owns the node's identity, the outgoing msg_id counter, the store and the
// background work (garbage collection), and turns one input line into zero or
// more output lines. It does no I/O itself: the event loop (event_loop.h)
// feeds it lines and flushes what it appends, which keeps it testable and
// fuzzable without processes or pipes.
//
// With a data directory the store is durable (strata/store.h) and the node
// holds every reply until the log is durable past everything the request
// wrote or could have read: one thread keeps many requests in flight, they
// share an fsync, and no client ever sees state a crash could take back.
#ifndef STRATA_NODE_NODE_H_
#define STRATA_NODE_NODE_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/cluster_node.h"
#include "node/services.h"
#include "node/transport.h"
#include "node/txn_table.h"
#include "protocol/envelope.h"
#include "protocol/json_writer.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/store.h"
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
  // Keep the store in this directory (recovering what is there); nullopt:
  // in memory only.
  std::optional<std::string> data_dir;
  // With data_dir: sync mode, group-commit delay, checkpoints, progress.
  // (wait_for_durability and on_durable are the node's own business.)
  DurabilityOptions durability;
  // When init names several nodes: timeouts of the cluster protocol
  // (isolation, txn_timeout and max_active_txns are taken from above).
  ClusterOptions cluster;
};

class GcScheduler;

class Node final : private Transport {
 public:
  using Clock = std::chrono::steady_clock;

  // An in-memory node (options.data_dir must be empty).
  explicit Node(NodeOptions options);
  // A node as the options say: with data_dir, opens and recovers the store
  // there (kUnavailable / kInvalidArgument saying why it cannot).
  static Result<std::unique_ptr<Node>> Open(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Processes one input line (without its newline) and appends every output
  // line it produces, each ending in '\n', to `*out`. Diagnostics for lines
  // that cannot be answered go to `*log`, one line each. Never throws.
  void HandleLine(std::string_view line, std::string* out, std::string* log);
  // The start of a line longer than the node reads (protocol::kMaxLineBytes;
  // the rest is dropped): answered with error 12 naming the limit when its
  // src and msg_id are in that start, else logged.
  void HandleOverlongLine(std::string_view start, std::string* out, std::string* log);

  // Runs background work that is due at `now`, appending what it sends to
  // `*out`; returns when it next wants to run (nullopt: nothing scheduled).
  std::optional<Clock::time_point> RunTimers(Clock::time_point now, std::string* out);

  // With a data directory: a descriptor that becomes readable when held
  // replies may be released (-1 in memory); ReleaseReplies clears it and
  // appends every reply whose records are durable to `*out` (and, once the
  // log failed, turns the rest into errors). HasHeldReplies: whether any
  // reply still waits.
  int wake_fd() const;
  void ReleaseReplies(std::string* out);
  // The event loop has handled all the input there is: replies held for the
  // log need not wait for more requests to share their fsync.
  void InputDrained();
  bool HasHeldReplies() const { return !held_.empty(); }
  // Bytes of replies held: the event loop stops reading input past a bound,
  // so a stalled disk cannot make a streaming client grow memory forever.
  size_t held_reply_bytes() const { return held_bytes_; }
  const RecoveryReport* recovery() const { return durable_ ? &durable_->recovery() : nullptr; }

  MvccStore& store() { return *store_; }
  TxnStore& db() { return *db_; }

 private:
  // One line, from the input or from this node to itself.
  void ProcessLine(std::string_view line, std::string* log);
  // Runs the request; on success fills `reply_fields_` and `reply_type`.
  // Sets `*answered` when the cluster took the request (it replies itself).
  protocol::MaybeError Dispatch(const protocol::Envelope& request, std::string_view* reply_type,
                                bool* answered);
  // The single-node handler of a request type, on this node's store.
  protocol::MaybeError RunLocal(std::string_view type, const protocol::Body& body,
                                protocol::JsonWriter* fields, std::string_view* reply_type);
  // Processes the messages this node sent itself (its shard, as a
  // participant of its own transactions).
  void DrainSelfMessages(std::string* log);
  // Transport, for the cluster: messages and replies from any event.
  uint64_t Send(std::string_view dest, std::string_view type, std::string_view fields) override;
  void Reply(const ReplyAddress& to, std::string_view type, std::string_view fields) override;
  protocol::MaybeError HandleInit(const protocol::Body& body);
  void WriteReply(const protocol::Envelope& request, std::string_view type, std::string_view fields,
                  std::string* out);
  void WriteReplyTo(std::string_view dest, std::string_view in_reply_to_json, bool wanted,
                    std::string_view type, std::string_view fields, std::string* out);
  void WriteError(const protocol::Envelope& request, const protocol::ErrorReply& error,
                  std::string* out);
  // Appends the reply `WriteReply` just built in reply_line_ to `*out`, or
  // holds it until the log is durable past `required_lsn`.
  void Emit(const protocol::Envelope& request, std::string* out);

  // The body fields of error 13 for a reply the failed log cannot back.
  static std::string UnknownOutcomeFields(const Status& log_failure);
  class WakeSignal;
  Node(NodeOptions options, std::unique_ptr<Store> durable, std::shared_ptr<WakeSignal> wake);
  // Appends one reply line to `*out`.
  void AppendReplyLine(std::string_view src, std::string_view dest,
                       std::string_view in_reply_to_json, uint64_t msg_id, std::string_view type,
                       std::string_view fields, std::string* out) const;

  // A reply, or in a cluster a message to a node or to itself, waiting for
  // the log (see wake_fd()).
  struct HeldReply {
    enum class Kind { kReply, kNodeMessage, kSelfMessage };
    uint64_t required_lsn;
    std::string line;  // as it will be sent (a self message without its newline)
    // Enough to replace a reply by an error if the log fails first.
    std::string dest, in_reply_to_json;
    uint64_t msg_id;
    Kind kind = Kind::kReply;
  };
  // A cluster message (to a node, or to this node itself): with a data
  // directory it waits like a reply until the log is durable past
  // everything appended, since it may announce a prepare or a record, or
  // carry a value read here. `line` has no newline.
  void EmitNodeMessage(std::string line, bool to_self, std::string* out);
  // With a data directory: the log position a line written now must wait
  // for (everything appended so far), or nullopt if it may go at once.
  std::optional<uint64_t> LsnToWaitFor() const;
  // Moves what is now durable out of held_ (replies and node messages to
  // `out`, messages to itself to self_messages_, not yet processed: this
  // also runs inside a handler); after a log failure, turns the rest into
  // errors or drops it.
  void ReleaseHeld(std::string* out);

  NodeOptions options_;
  // Shared with the log's flusher thread, which signals it; closed when the
  // last of the two lets go.
  std::shared_ptr<WakeSignal> wake_;
  std::unique_ptr<Store> durable_;  // with a data directory (owns store_ and db_ then)
  std::unique_ptr<MvccStore> in_memory_store_;
  std::unique_ptr<TxnStore> in_memory_db_;
  MvccStore* store_;
  TxnStore* db_;
  std::deque<HeldReply> held_;
  size_t held_bytes_ = 0;
  std::string reply_line_;  // scratch: the reply being built
  TxnTable txns_;           // declared after db_: destroyed (aborting its transactions) first
  std::unique_ptr<GcScheduler> gc_;
  protocol::EnvelopeParser parser_;
  protocol::Envelope request_;  // reused across lines: no allocation per message
  std::string reply_fields_;    // reused scratch for a reply's body fields
  std::string node_id_;         // empty until init
  std::vector<std::string> node_ids_;
  uint64_t next_msg_id_ = 0;
  // With several node ids: the cluster roles (nullptr for a single node).
  std::unique_ptr<ClusterNode> cluster_;
  std::string* out_ = nullptr;  // where Transport writes during an event
  // Messages to itself, processed after the current event; their msg_ids
  // come from their own range, so the ids on stdout stay consecutive.
  std::deque<std::string> self_messages_;
  bool draining_self_messages_ = false;
  uint64_t next_self_msg_id_ = uint64_t{1} << 62;
};

}  // namespace strata::node

#endif  // STRATA_NODE_NODE_H_
