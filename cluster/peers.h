// Peers: the other nodes as this node's roles reach them.
//
// A call goes to the node serving a shard, stamped with this node's hybrid
// clock, and is resent until answered or given up after the RPC timeout
// (PeerRpc). Which node serves a shard: its leaseholder in the ShardMap.
// A replicated shard (several replicas in the map) may be led by another:
// a replica that does not lead it answers with the node that does
// (PeerError::leader), and the call then goes there, within the same
// timeout, and so do later calls for the shard (a few redirects a call at
// most, so two replicas that name each other cannot keep it bouncing);
// its resends go to each replica in turn, so a dead node does not take
// its calls with it, and so does a call a replica refuses as Unavailable
// (no leader known yet, while the group elects one), after a short pause,
// until the call's timeout.
// One-way messages are stamped too. The node that owns this object feeds
// it the replies that come in.
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
  // Every node present, this one included.
  const std::vector<std::string>& node_ids() const { return node_ids_; }
  bool IsPeer(std::string_view node) const;
  // A node joined the cluster (cluster/node_list.h), or left it: it is
  // sent broadcasts, or no more. Its calls in flight go on.
  void AddNode(const std::string& node);
  void RemoveNode(std::string_view node);
  const ShardMap& map() const { return *map_; }

  // Calls the node serving `shard`; `done` gets its reply, or nullptr once
  // the call gave up.
  void Call(ShardId shard, PeerRequest request, PeerRpc::Callback done);
  // A read this node's own replica of `shard` may serve (one at or below
  // what the replica has closed): sent to it alone, and if it refuses
  // (the read is above what it closed) or cannot answer, passed to the
  // shard's leader as Call does, within the same timeout. A shard with no
  // replica here: Call.
  void CallHereFirst(ShardId shard, PeerRequest request, PeerRpc::Callback done);
  // Whether this node holds a replica of `shard`, one of several.
  bool HoldsReplica(ShardId shard) const;
  // Reads this node's replicas served (CallHereFirst), and those they
  // passed to a leader.
  uint64_t reads_here() const { return reads_here_; }
  uint64_t reads_passed_on() const { return reads_passed_on_; }
  // Calls node `node` itself, for no shard (it answers whatever it leads):
  // resent to it alone.
  void CallNode(const std::string& node, PeerRequest request, PeerRpc::Callback done);
  // The node calls for `shard` go to now.
  const std::string& NodeServing(ShardId shard) const;
  // The shard's replicas moved (the map says where now): its calls go to
  // the map's first replica until one names another leader.
  void ForgetLeader(ShardId shard) { leaders_.erase(shard); }
  uint64_t redirects() const { return redirects_; }
  // Calls tried again at another replica after one said it could not
  // serve them now (a replicated shard's).
  uint64_t retries() const { return retries_; }
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
  static constexpr int kMaxRedirects = 3;
  static constexpr std::chrono::milliseconds kRetryPause{20};
  // Calls `node` for `shard`, giving up at `deadline`; follows up to
  // `redirects_left` leader hints.
  void CallAt(std::string node, ShardId shard, PeerRequest request,
              Timers::Clock::time_point deadline, int redirects_left, PeerRpc::Callback done);

  // The replica of `shard` after `after` in the map's list, round it.
  const std::string& NextReplica(ShardId shard, const std::string& after) const;

  const std::string self_;
  std::vector<std::string> node_ids_;
  const ShardMap* map_;
  HybridLogicalClock* clock_;
  PeerTransport* transport_;
  Timers* timers_;
  const std::chrono::milliseconds rpc_timeout_;
  PeerRpc rpc_;
  std::map<std::string, Timers::Clock::time_point, std::less<>> heard_;
  // Shards whose leader a replica named (others: their leaseholder).
  std::map<ShardId, std::string> leaders_;
  uint64_t redirects_ = 0;
  uint64_t retries_ = 0;
  uint64_t reads_here_ = 0;
  uint64_t reads_passed_on_ = 0;
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
