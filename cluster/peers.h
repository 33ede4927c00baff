// Peers: the other nodes as this node's roles reach them.
//
// A call goes to the node serving a shard (ShardMap), stamped with this
// node's hybrid clock, and is resent until answered or given up after the
// RPC timeout (PeerRpc). One-way messages are stamped too. The node that
// owns this object feeds it the replies that come in.
#ifndef STRATA_CLUSTER_PEERS_H_
#define STRATA_CLUSTER_PEERS_H_

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/hybrid_clock.h"
#include "cluster/peer_messages.h"
#include "cluster/peer_rpc.h"
#include "cluster/peer_transport.h"
#include "cluster/shard_map.h"
#include "cluster/timers.h"

namespace strata::cluster {

class Peers final {
 public:
  Peers(std::string self, std::vector<std::string> node_ids, const ShardMap* map,
        HybridLogicalClock* clock, PeerTransport* transport, Timers* timers,
        std::chrono::milliseconds rpc_timeout);

  const std::string& self() const { return self_; }
  const std::vector<std::string>& node_ids() const { return node_ids_; }
  bool IsPeer(std::string_view node) const;
  const ShardMap& map() const { return *map_; }

  // Calls the node serving `shard`; `done` gets its reply, or nullptr once
  // the call gave up.
  void Call(ShardId shard, PeerRequest request, PeerRpc::Callback done);
  // Sends a one-way message (no reply) to every other node.
  void Broadcast(const PeerRequest& message);

  // A reply came in; false if it answers no live call.
  bool OnReply(uint64_t in_reply_to, const PeerReply& reply);
  // A message came from `node` (a request, or a reply to one of our
  // calls): it is up.
  void Heard(std::string_view node);
  // When the node serving `shard` was last heard from; nullopt if never.
  // One signal of a peer's liveness for every role: a peer that answers
  // nothing of what a role asks may be busy with the rest (a long queue),
  // but one that sends nothing at all is likely down.
  std::optional<Timers::Clock::time_point> LastHeardFrom(ShardId shard) const;
  // Resends and gives up what is due; returns when to look again.
  PeerRpc::Clock::time_point RunTimers(PeerRpc::Clock::time_point now) {
    return rpc_.RunTimers(now);
  }
  const PeerRpc& rpc() const { return rpc_; }

 private:
  const std::string self_;
  const std::vector<std::string> node_ids_;
  const ShardMap* map_;
  HybridLogicalClock* clock_;
  PeerTransport* transport_;
  Timers* timers_;
  const std::chrono::milliseconds rpc_timeout_;
  PeerRpc rpc_;
  std::map<std::string, Timers::Clock::time_point, std::less<>> heard_;
};

// The reply as a T; nullptr if the call gave up or the reply is of another
// kind (a PeerError, or not what the call expects).
template <typename T>
const T* ReplyAs(const PeerReply* reply) {
  return reply == nullptr ? nullptr : std::get_if<T>(reply);
}

// Why a call did not get the reply it expected: the peer's refusal, or
// kUnavailable with `gave_up` when no answer came in time, or kIoError for
// a reply of another kind.
Status CallFailure(const PeerReply* reply, std::string gave_up);

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_PEERS_H_
