// ShardGroups: a node's replicas of the shards' Raft groups, when the
// cluster keeps each shard on several nodes (--replication-factor), and
// what the node does about them besides applying commands:
//  - the groups: in a new Raft directory (`raft_dir`), this node's
//    replicas where ShardMap::Replicated first places the shards; later,
//    the groups the log holds (replicas move); each replica a
//    ReplicatedShard within the group's registry of members
//    (replication/incarnations.h), driven by one RaftHost; the member
//    serves each through a ReplicatedShardCore (CoreFactory);
//  - incarnations: each group keeps the incarnation it first heard from
//    each member; a member started again with an empty Raft directory has
//    another, and its batches are refused (it forgot its votes and what it
//    acknowledged) and it is told why, once a second;
//  - placement: each group belongs on the nodes its registry's placement
//    names (Place; until set, where ShardMap::Replicated put it); its
//    leader moves replicas there and takes back a member whose disk was
//    replaced, one membership change at a time
//    (cluster/replica_changes.h);
//  - reports: each group's leader tells every node where the group's
//    members are (cluster/shard_group_report.h), once a second and after
//    each change; a node starts the replica a report makes it a learner
//    of, deletes one a report as new as it neither names nor places, and
//    routes calls by them (`replicas_moved`);
//  - leaders spread: a group's leader hands it to the first node of its
//    placement (its home: shard i's is node i until placed otherwise)
//    when that node answers and holds every committed entry, so each node
//    leads about as many groups.
// Any replica moves, the one of a node's own shard included (its member
// then serves none of its own: cluster/member.h).
// The transport is the caller's: it carries a Raft batch (bytes of
// replication/raft_wire) with this node's incarnation, a refusal and a
// group's report to another node, and hands what arrives to Receive,
// Refused and ReceiveReport. The caller's loop calls Tick every `tick`
// and Run after each turn.
//
// Shard timestamps take the residues 16 and up (the nodes' own clocks keep
// 0..15), so such a cluster has at most 16 nodes.
//
// Not thread-safe: the node's loop owns it.
#ifndef STRATA_CLUSTER_SHARD_GROUPS_H_
#define STRATA_CLUSTER_SHARD_GROUPS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/member.h"
#include "cluster/shard_group_report.h"
#include "cluster/shard_server.h"
#include "raft/raft_types.h"
#include "replication/incarnations.h"
#include "replication/raft_host.h"
#include "strata/status.h"

namespace strata::cluster {

struct ShardGroupsOptions {
  std::string self;  // this node's name
  // Every node's by number (cluster/node_list.h: "" for a number not named
  // yet), this one's included; later ones come with UpdateNodes.
  std::vector<std::string> node_ids;
  // One shard for each of the first this many nodes; 0: one a node.
  size_t shard_count = 0;
  uint32_t replication_factor = 3;
  // The groups' Raft log; empty: in memory (a restart starts with none,
  // as a member whose disk was lost).
  std::string raft_dir;
  // A new Raft directory's first replicas start from these states (a
  // ReplicatedShard snapshot a shard: a backup restored, the same on every
  // replica); a shard not named starts empty. Unused past the first start.
  std::map<ShardId, std::string> initial_states;
  // Raft's timing, in ticks of `tick`: elections, and how long a proposal
  // may wait (the member's call timeout).
  std::chrono::milliseconds tick{10};
  int election_ticks = 10;
  std::chrono::milliseconds proposal_timeout{5000};
  // A replica's Raft log is compacted into a snapshot once this many
  // entries were applied since the last (RaftHostOptions::compact_after,
  // etcd's --snapshot-count).
  uint64_t snapshot_count = 100'000;
  // The replicas' settings (retention, heartbeat timeout, key names).
  ShardServerOptions shard_server;
  // How often a leader looks whether to hand a group back to its home.
  std::chrono::milliseconds balance_interval{2000};
  // Lines for the operator (a member refused or taken back, a replica
  // moved); null: none.
  std::function<void(const std::string&)> log;
  // The transport. A send may drop (a lost message: Raft sends again).
  // `max_batch_bytes` (0: none): a round's batch for a node larger than
  // this goes as several, each at most this big unless one message alone
  // is larger (replication/raft_wire.h, EncodeNodeBatchWithin).
  std::function<void(const std::string& to, std::string batch, uint64_t incarnation)> send_batch;
  size_t max_batch_bytes = 0;
  std::function<void(const std::string& to, const std::string& why)> send_refusal;
  // A group's report (bytes of cluster/shard_group_report.h) to a node.
  std::function<void(const std::string& to, std::string report)> send_report;
  // How often each group's leader reports it to every node.
  std::chrono::milliseconds report_interval{1000};
  // What follows a report, on the caller's loop: a replica started here
  // (serve it), one deleted here (serve it no more: called before its
  // state goes), and where a shard's voters are, its leader first.
  std::function<void(ShardId)> replica_added;
  std::function<void(ShardId)> replica_removed;
  std::function<void(ShardId, std::vector<std::string>)> replicas_moved;
};

// A placement names at most this many nodes (a cluster's nodes are at
// most 16, shard timestamps' residues: above).
inline constexpr size_t kMaxPlacedNodes = 16;

// A shard's group as this node knows it: its newest report (before the
// first, its replica here, or where the group was first placed), and its
// placement where the group has a replica here.
struct ShardGroupView {
  ShardId shard = 0;
  std::string leader;  // "" if not known
  std::vector<std::string> voters, learners;
  std::vector<std::string> placement;  // empty if not known here
};

// Sets `options`' replica_added, replica_removed and replicas_moved to keep
// a member serving what moves (AddReplica, RemoveShardServer,
// SetShardReplicas), for a member made after the groups (its factory of
// cores comes from them): `*member` is read as each report comes, and
// nothing is done while it is null. A replica the member cannot serve is
// said through options->log.
void ServeMovedReplicasOn(const std::unique_ptr<Member>* member, ShardGroupsOptions* options);

class ShardGroups final {
 public:
  // The membership changes this node made as a group's leader (moving
  // replicas to their placement, taking back members whose disk was
  // replaced), once applied, and the replicas it started and deleted.
  struct ReplicaChangeStats {
    uint64_t removed = 0;      // a member, from a group
    uint64_t learners = 0;     // a member added as a learner
    uint64_t promoted = 0;     // a learner that caught up, made a voter
    uint64_t handed_over = 0;  // a leader not placed, its leadership
    uint64_t started = 0;      // a replica started here (a report)
    uint64_t deleted = 0;      // a replica deleted here (removed)
  };
  // How long this node reports itself refused after the others' last
  // refusal (they repeat it once a second while it speaks to them).
  static constexpr std::chrono::seconds kRefusalHeldFor{5};

  // Opens the Raft log in options.raft_dir and this node's replicas
  // (created on a first start). kInvalidArgument: more than 16 nodes, no
  // directory, this node not in the list, a factor the map refuses.
  static Result<std::unique_ptr<ShardGroups>> Open(ShardGroupsOptions options);

  // The member's shard cores: each shard this node holds a replica of,
  // served through its group.
  ShardCoreFactory CoreFactory();

  // A Raft batch from `from`, as the transport delivered it: dropped if it
  // does not decode, claims another sender, or comes from a member whose
  // disk was replaced (then it is told why).
  void Receive(const std::string& from, std::string_view batch, uint64_t incarnation);
  // Another node refuses this one's batches (its disk was replaced).
  void Refused(const std::string& why);
  // A group's report from `from` (dropped if it does not decode, names an
  // unknown group or node, or is older than one known).
  void ReceiveReport(const std::string& from, std::string_view report);
  // Places `shard`'s group on `nodes` (the first the one to lead it): on
  // the group's leader, proposed through its log; `done` once applied.
  // kInvalidArgument: an unknown node, one named twice, fewer than two
  // (Raft keeps two voters);
  // kUnavailable: this node does not lead the group (ask its leader).
  void Place(ShardId shard, const std::vector<std::string>& nodes,
             std::function<void(Status)> done);
  // The cluster's nodes changed (cluster/node_list.h): `by_number` names
  // every node (a number keeps its name: only unnamed ones and ones past
  // the end are taken), and the `gone` ones may be placed no more (their
  // groups remove them once placed elsewhere) and are sent no reports.
  void UpdateNodes(const std::vector<std::string>& by_number, const std::vector<std::string>& gone);
  // The shards this node holds a replica of, in id order.
  std::vector<ShardId> ShardsHere() const;
  // Every shard's group as this node knows it, in shard order.
  std::vector<ShardGroupView> Groups() const;
  // Every `tick`: Raft's clock, then the groups led here register members'
  // incarnations, take back replaced members and hand groups home.
  void Tick(std::chrono::steady_clock::time_point now);
  // After each turn of the loop: the groups' rounds (one sync each).
  void Run();

  replication::RaftHost& host() { return *host_; }
  replication::RaftHostStats host_stats() const { return host_->stats(); }
  // Ok, or why the Raft log failed (final: the replicas then answer
  // nothing, which their groups survive as a node down).
  const Status& health() const { return health_; }
  uint64_t refused_from_replaced() const { return refused_replaced_; }
  // Why the others refuse this node's batches; "" if they do not, or have
  // not said so for kRefusalHeldFor (they took it back).
  std::string refused_by_others() const;
  uint64_t leaders_handed_home() const { return leaders_handed_home_; }
  const ReplicaChangeStats& changes() const { return changes_; }

 private:
  explicit ShardGroups(ShardGroupsOptions options)
      : options_(std::move(options)), node_ids_(options_.node_ids) {}
  Status Start(std::map<ShardId, std::string> initial_states);
  // The node's Raft number (its place in node_ids, from 1), 0 if unknown.
  raft::NodeId NumberOf(const std::string& node) const;
  // A node's name ("" for a number not named yet, or unknown here).
  std::string NameOf(raft::NodeId node) const {
    return node == raft::kNobody || node > node_ids_.size() ? std::string() : node_ids_[node - 1];
  }
  // The members `group` belongs on: its registry's placement, or where
  // ShardMap::Replicated put it.
  std::vector<raft::NodeId> PlacementOf(raft::GroupId group) const;
  // `group`'s registry of members (the state every group here has).
  const replication::RegisteredState* Registry(raft::GroupId group) const;
  // Whether a batch from `from` carrying `incarnation` is taken: not if a
  // group here holds another incarnation of it.
  bool Admit(raft::NodeId from, uint64_t incarnation);
  // The groups led here that hold no incarnation yet of this node or of a
  // member heard from register it.
  void RegisterIncarnations();
  void RegisterWhereLeading(raft::NodeId node, uint64_t incarnation);
  // In the groups led here, the next step towards the placement
  // (NextReplicaStep), one a group at a time.
  void ChangeReplicas();
  void ChangeDone(raft::GroupId group, const raft::ConfChange& change, const Status& done);
  // The groups led here report themselves every report_interval (or now).
  void SendReports(std::chrono::steady_clock::time_point now);
  void SendReport(raft::GroupId group);
  // Takes a report known to be newer: routing, and this node's replica.
  void Learn(const ShardGroupReport& report);
  // Deletes this node's replica of a group that removed it.
  void DeleteReplica(raft::GroupId group, const std::string& why);
  // Elections pick any member (the first to time out), which can leave
  // one node leading most groups; a leader hands a group to its home when
  // the home answered within an election timeout and holds every
  // committed entry. Looked at every balance_interval.
  void BalanceLeaders(std::chrono::steady_clock::time_point now);

  const ShardGroupsOptions options_;
  std::vector<std::string> node_ids_;        // by number, from 1 (UpdateNodes)
  std::set<std::string, std::less<>> gone_;  // left the cluster
  std::unique_ptr<replication::RaftHost> host_;
  Status health_;
  uint64_t incarnation_ = 0;        // this node's Raft directory's
  std::set<raft::GroupId> groups_;  // those with a replica here
  // Where ShardMap::Replicated put each shard's group (its first place).
  std::vector<std::vector<raft::NodeId>> first_placements_;
  std::map<raft::GroupId, ShardGroupReport> reports_;  // the newest known
  std::chrono::steady_clock::time_point next_report_{};
  std::chrono::steady_clock::time_point next_balance_{};
  uint64_t leaders_handed_home_ = 0;
  std::set<std::pair<raft::GroupId, raft::NodeId>> registering_;
  std::map<raft::NodeId, uint64_t> heard_incarnations_;    // admitted
  std::map<raft::NodeId, uint64_t> carried_incarnations_;  // by each member's newest batch
  std::set<raft::GroupId> changing_;                       // a change proposed, not yet done
  ReplicaChangeStats changes_;
  std::map<raft::NodeId, std::chrono::steady_clock::time_point> told_replaced_;
  uint64_t refused_replaced_ = 0;
  std::string refused_by_others_;
  std::chrono::steady_clock::time_point refused_at_{};  // the others' last refusal
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_SHARD_GROUPS_H_
