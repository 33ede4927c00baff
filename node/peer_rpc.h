// Transport and PeerRpc: how the node talks to the other nodes.
//
// Transport is what the node offers the cluster code: send a message to a
// node, or reply to a request (a client's or a node's), from any event:
// a request, a reply, a timer. The node stamps its hybrid clock on every
// message to a node.
//
// PeerRpc turns sends into calls: it remembers each call until its reply
// comes, resends it (with a new msg_id, so every message keeps its own)
// while none does, and gives up after a deadline. Every node-to-node
// request is idempotent, which is what makes resending safe; a reply to an
// earlier copy completes the call and later copies' replies are dropped.
#ifndef STRATA_NODE_PEER_RPC_H_
#define STRATA_NODE_PEER_RPC_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/envelope.h"
#include "protocol/errors.h"

namespace strata::node {

// Where a reply goes: the request's sender and msg_id (as JSON).
struct ReplyAddress {
  std::string dest;
  std::string in_reply_to_json;
  bool wanted = true;  // false: the request had no msg_id
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends a request to node `dest` (which may be this node); returns its msg_id.
  virtual uint64_t Send(std::string_view dest, std::string_view type, std::string_view fields) = 0;
  // `fields` continue the body object (JsonWriter::ContinuingObject).
  virtual void Reply(const ReplyAddress& to, std::string_view type, std::string_view fields) = 0;
  void ReplyError(const ReplyAddress& to, const protocol::ErrorReply& error);
};

class PeerRpc final {
 public:
  using Clock = std::chrono::steady_clock;
  // The reply (valid only during the call), or nullptr when the call gave up.
  using Callback = std::function<void(const protocol::Envelope* reply)>;

  struct CallOptions {
    std::chrono::milliseconds first_retry{100};  // doubles up to max_retry
    std::chrono::milliseconds max_retry{1000};
    std::chrono::milliseconds give_up_after{5000};
  };

  explicit PeerRpc(Transport* transport) : transport_(transport) {}

  void Call(std::string dest, std::string type, std::string fields, const CallOptions& options,
            Clock::time_point now, Callback done);
  // Completes the call `reply` answers; false if it answers no live call
  // (a late copy, or not ours).
  bool OnReply(uint64_t in_reply_to, const protocol::Envelope& reply);
  // Resends and gives up what is due; returns when to look again.
  Clock::time_point RunTimers(Clock::time_point now);

  // During a callback: how many copies of that call were sent. More than
  // one means an earlier copy may have taken effect even if this reply is
  // a refusal (the receiver may have restarted and forgotten it).
  size_t copies_sent() const { return copies_sent_; }

  size_t in_flight() const { return calls_.size(); }
  uint64_t resends() const { return resends_; }
  uint64_t gave_up() const { return gave_up_; }

 private:
  struct PendingCall {
    std::string dest, type, fields;
    std::vector<uint64_t> msg_ids;  // every copy sent
    Clock::time_point next_send, deadline;
    std::chrono::milliseconds retry, max_retry;
    Callback done;
  };
  void Forget(uint64_t call_id);

  Transport* transport_;
  uint64_t next_call_id_ = 1;
  std::unordered_map<uint64_t, PendingCall> calls_;
  std::unordered_map<uint64_t, uint64_t> call_by_msg_id_;
  // (when, call id), earliest first; entries of finished calls are skipped.
  using Due = std::pair<Clock::time_point, uint64_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  size_t copies_sent_ = 0;
  uint64_t resends_ = 0;
  uint64_t gave_up_ = 0;
};

}  // namespace strata::node

#endif  // STRATA_NODE_PEER_RPC_H_
