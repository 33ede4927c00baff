// PeerRpc: calls to other nodes over a PeerTransport.
//
// It remembers each call until its reply comes, resends it (with a new
// message id, so every copy keeps its own) while none does, and gives up
// after a deadline. Every node-to-node request is idempotent, which is what
// makes resending safe; a reply to an earlier copy completes the call and
// later copies' replies are dropped.
#ifndef STRATA_CLUSTER_PEER_RPC_H_
#define STRATA_CLUSTER_PEER_RPC_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/peer_messages.h"
#include "cluster/peer_transport.h"

namespace strata::cluster {

class PeerRpc final {
 public:
  using Clock = std::chrono::steady_clock;
  // The reply (valid only during the call), or nullptr when the call gave up.
  using Callback = std::function<void(const PeerReply* reply)>;

  struct CallOptions {
    std::chrono::milliseconds first_retry{100};  // doubles up to max_retry
    std::chrono::milliseconds max_retry{1000};
    std::chrono::milliseconds give_up_after{5000};
    // Other nodes that can answer the call (the other replicas of its
    // shard): resends go to them and `dest` in turn, so a call outlives a
    // node that stopped answering. Only for requests any of them may take
    // (a replica that does not lead refuses, naming the leader).
    std::vector<std::string> also_to;
  };

  explicit PeerRpc(PeerTransport* transport) : transport_(transport) {}

  // Sends `request`, stamped `hlc` (every copy), to `dest`, for `shard`
  // there (see PeerTransport::Send).
  void Call(std::string dest, std::optional<ShardId> shard, PeerRequest request, Timestamp hlc,
            const CallOptions& options, Clock::time_point now, Callback done);
  // Completes the call `reply` answers; false if it answers no live call
  // (a late copy, or not ours).
  bool OnReply(uint64_t in_reply_to, const PeerReply& reply);
  // Where a live call's copy `msg_id` went: the node, the shard the call
  // is for (nullopt: none), and whether its copies could go to other nodes
  // too (CallOptions::also_to). nullopt if no live call sent it.
  struct Copy {
    const std::string* dest;
    std::optional<ShardId> shard;
    bool to_several = false;
  };
  std::optional<Copy> CopyOf(uint64_t msg_id) const;
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
    std::vector<std::string> dests;  // the first copy's first, then in turn
    std::optional<ShardId> shard;
    PeerRequest request;
    Timestamp hlc;
    std::vector<uint64_t> msg_ids;  // every copy sent, copy i to dests[i % dests.size()]
    Clock::time_point next_send, deadline;
    std::chrono::milliseconds retry, max_retry;
    Callback done;
  };
  void Forget(uint64_t call_id);

  PeerTransport* transport_;
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

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_PEER_RPC_H_
