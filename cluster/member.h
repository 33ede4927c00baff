// Member: one node of the cluster, with every role it plays.
//
// It owns the node's hybrid clock, its timers, its peers (the calls it
// makes), the shard it serves (ShardServer), the transactions it
// coordinates (Coordinator), its view of the key space (Router) and of the
// low-water mark. A transport hands it what other nodes send, already
// decoded: requests with a way to answer them, and replies. It never sees
// an encoding; requests a front end forwards are run by the front end's
// own handler.
//
// Every node message carries its sender's clock, and receiving one moves
// this node's clock past it (the HLC receive rule), so causality holds
// across nodes; a request stamped too far ahead of this node's wall clock
// is refused.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_MEMBER_H_
#define STRATA_CLUSTER_MEMBER_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/coordinator.h"
#include "cluster/forwarded_calls.h"
#include "cluster/hybrid_clock.h"
#include "cluster/low_water_mark.h"
#include "cluster/peer_messages.h"
#include "cluster/peer_transport.h"
#include "cluster/peers.h"
#include "cluster/resolved_frontier.h"
#include "cluster/router.h"
#include "cluster/shard_map.h"
#include "cluster/shard_server.h"
#include "cluster/timers.h"
#include "cluster/watch_feed.h"
#include "strata/mvcc_store.h"

namespace strata::cluster {

// Makes the core of a shard a member serves, over the member's clock and
// timers (a ReplicatedShardCore on the node's replica of the shard's group).
using ShardCoreFactory = std::function<Result<std::unique_ptr<ShardCore>>(
    ShardId shard, HybridLogicalClock* clock, Timers* timers)>;

struct MemberOptions {
  CoordinatorOptions coordinator;
  ShardServerOptions shard_server;  // its rpc_timeout is the one below
  // Node-to-node calls are resent while unanswered and given up after this.
  std::chrono::milliseconds rpc_timeout{5000};
  // How often this node tells the others its oldest snapshot.
  std::chrono::milliseconds low_water_mark_interval{100};
  // Replicated shards: each shard on this many nodes (ShardMap::Replicated),
  // and the cores of every shard this node holds a replica of made by
  // `shard_cores`. Without a factory, this node's one shard is held here
  // alone, in its store (LocalShardCore), and the factor must be 1.
  uint32_t replication_factor = 1;
  ShardCoreFactory shard_cores;
  // With replicated shards: the shards this node holds a replica of now
  // (replicas move: cluster/shard_groups.h); nullopt: where the map puts
  // them.
  std::optional<std::vector<ShardId>> replicas_here;
  // How many shards: one for each of the first this many nodes (the
  // cluster's first members, cluster/node_list.h); 0: one a node. Nodes
  // after them (joined later, replicated shards only) are home of none.
  size_t shard_count = 0;
};

class Member final {
 public:
  using Clock = Timers::Clock;
  // Runs a Forward's request (the front end's encoding) on this shard and
  // answers it once, now or later (a reply, or a PeerError).
  using ForwardHandler =
      std::function<void(const std::string& request, ShardServer::Respond respond)>;
  // Collects this shard's versions below `horizon` (already capped at the
  // cluster's low-water mark).
  using Compactor = std::function<CompactResult(Timestamp horizon)>;

  // `node_ids`: every node by number (its place; "" for a number whose
  // node has not named itself yet, cluster/node_list.h). Timestamps
  // continue above `issued` (everything stored or handed out before a
  // restart). kInvalidArgument if the node list is unusable (repeated or
  // empty ids among the first, too many, or not naming `self`), or what
  // the store kept does not load.
  static Result<std::unique_ptr<Member>> Create(std::string self, std::vector<std::string> node_ids,
                                                MemberOptions options, MvccStore* store,
                                                bool persist, Timestamp issued,
                                                PeerTransport* transport,
                                                ForwardHandler serve_forward, Compactor compact,
                                                Clock::time_point now);
  ~Member();

  const std::string& self() const { return peers_.self(); }
  // This node's clock reading: what its messages are stamped with.
  Timestamp LastTimestamp() const { return clock_.Last(); }
  bool IsPeer(std::string_view node) const { return peers_.IsPeer(node); }
  // A node joined the cluster (it is sent broadcasts, and the low-water
  // mark waits for its report), or left it for good (neither any more).
  void JoinNode(const std::string& node);
  void LeaveNode(std::string_view node);

  // A request from node `from`, stamped with its clock (if it sent one),
  // for this node's replica of `shard` (nullopt: for this node, or for the
  // shard it serves, from a sender that does not name shards). A request
  // for a shard this node holds no replica of is refused (kUnavailable).
  void OnRequest(std::string_view from, std::optional<Timestamp> sender_clock,
                 std::optional<ShardId> shard, PeerRequest request, ShardServer::Respond respond);
  // A reply to a call of ours. Its clock is taken in even if too far ahead
  // (it answers something we asked; its timestamps are checked where used).
  void OnReply(std::optional<Timestamp> sender_clock, uint64_t in_reply_to, const PeerReply& reply);
  // Sets now and runs what is due; returns when to call again.
  Clock::time_point RunTimers(Clock::time_point now);
  void SetNow(Clock::time_point now) { timers_.SetNow(now); }

  // A feed of the changes in `range` above `after`, over every shard
  // (cluster/watch_feed.h), started.
  std::unique_ptr<WatchFeed> Watch(KeyRange range, Timestamp after, WatchFeedOptions options,
                                   WatchFeed::OnChanges on_changes, WatchFeed::OnError on_error);

  Coordinator& coordinator() { return *coordinator_; }
  // Waits until every shard has resolved a timestamp (a Range's revision).
  ResolvedFrontier& resolved_frontier() { return *resolved_frontier_; }
  Timers& timers() { return timers_; }
  Router& router() { return router_; }
  // The server of the shard this node serves (its ShardMap shard).
  // The server of this node's own shard (its ShardMap shard): its store's
  // with one replica a shard; with replicated shards, its replica of that
  // shard if it holds one (replicas move), else nullptr.
  // A node that joined later is home of no shard (its home_shard() is
  // its number, past the shards).
  const ShardServer* shard_server() const { return FindShardServer(home_shard_); }
  ShardId home_shard() const { return home_shard_; }
  // Serves a shard here (a replica of a shard's Raft group this node
  // holds, over a ReplicatedShardCore): requests naming it go to
  // `server`, whose periodic work starts with this member's, and its
  // pending intents hold back the low-water mark like this node's own.
  // kInvalidArgument for a shard served here already or not in the map.
  Status AddShardServer(std::unique_ptr<ShardServer> server);
  // Stops serving `shard` (its replica moved away); never the store's own
  // shard of a member without replicas.
  void RemoveShardServer(ShardId shard);
  // A replica of `shard`'s group started here (one moved to this node):
  // served through a core from MemberOptions::shard_cores.
  Status AddReplica(ShardId shard);
  // Where `shard`'s replicas are now (its group's report; the one to try
  // first first): calls for it go there.
  void SetShardReplicas(ShardId shard, std::vector<std::string> replicas);
  // Every shard served here (with one replica a shard: its own).
  std::vector<ShardId> ShardsServed() const;
  // The server of `shard` here; nullptr if this node holds no replica of it.
  const ShardServer* FindShardServer(ShardId shard) const;
  ShardServer* FindShardServer(ShardId shard) {
    return const_cast<ShardServer*>(std::as_const(*this).FindShardServer(shard));
  }
  // The newest timestamp every shard has resolved as this node knows it:
  // nothing at or below it can still commit on any shard. For a shard it
  // holds a replica of, that replica's (ShardServer::WatchFrontier: the
  // replica serves a read at it at once, with no leader asked); for one it
  // holds none of, what ResolvedFrontier last learned from the shard, if
  // learned within kRemoteFrontierMaxAge (the shard's leader serves a read
  // at it at once, with no close), and a refresh is started so the next
  // call knows a newer one. nullopt if a shard has no replica elsewhere
  // (the cluster is not replicated) or its frontier is not known (fresh).
  std::optional<Timestamp> ResolvedHere();
  static constexpr std::chrono::seconds kRemoteFrontierMaxAge{1};
  const PeerRpc& rpc() const { return peers_.rpc(); }
  const Peers& peers() const { return peers_; }
  const ForwardedCalls& forwarded() const { return forwarded_; }
  const ShardMap& map() const { return map_; }

  // The highest garbage-collection horizon the cluster allows (nullopt:
  // not known yet, so collect nothing).
  std::optional<Timestamp> LowWaterMark() const;
  // Who holds it (see LowWaterMark::Holder).
  std::optional<std::string> LowWaterMarkHolder() const;

 private:
  Member(std::string self, std::vector<std::string> node_ids, ShardMap map, uint32_t node_index,
         MemberOptions options, PeerTransport* transport, ForwardHandler serve_forward,
         Compactor compact);
  // This node's oldest snapshot in use, its shard's pending intents included.
  Timestamp OldestSnapshot() const;
  void SendLowWaterMark();

  const MemberOptions options_;
  ShardMap map_;  // replicas follow their groups' reports (SetShardReplicas)
  ForwardHandler serve_forward_;
  Compactor compact_;
  bool started_ = false;  // periodic work scheduled
  HybridLogicalClock clock_;
  Timers timers_;
  Peers peers_;
  Router router_;
  cluster::LowWaterMark low_water_mark_;
  ForwardedCalls forwarded_{HybridLogicalClock::SystemMillis()};
  ShardId home_shard_ = 0;  // this node's own shard
  // With one replica a shard: this node's own shard, in its store.
  std::unique_ptr<ShardServer> shard_server_;
  // The replicas of shards' groups served here (replicated shards; none
  // is this node's for good: AddShardServer, RemoveShardServer).
  std::map<ShardId, std::unique_ptr<ShardServer>> replica_servers_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<ResolvedFrontier> resolved_frontier_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_MEMBER_H_
