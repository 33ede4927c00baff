// Replica changes: the membership changes a shard's group makes by itself
// (a sharded cluster with --replication-factor), each planned here on the
// group's leader from what it sees, one at a time:
//
// Taking back a member whose disk was replaced. It comes back with an
// empty Raft log and a new incarnation (replication/incarnations.h): it
// forgot its votes and the entries it acknowledged, so the group refuses
// its batches while it holds the old incarnation. The leader removes it
// (which forgets the old incarnation: its batches are taken again once
// every group on a node has forgotten it); then, as for any member the
// placement names and the group lacks, adds it as a learner and promotes
// it once caught up. Votes it gives before the promotion count for
// nothing (it is a voter in no configuration that came after its old
// incarnation was dropped), and after it, it votes from a log it keeps.
//
// Moving replicas to the group's placement (the members it belongs on,
// replicated in its registry; `strata-ctl shard place`):
//  1. a member the placement names and the group lacks is added as a
//     learner, which receives the log (or a snapshot) but neither votes
//     nor counts towards a majority; one learner at a time;
//  2. a learner that holds every committed entry is promoted, so the
//     promotion stalls no commit;
//  3. once every member placed is a voter, a voter not placed is removed;
//     the leader itself first hands its place to a voter that is placed;
//  a learner not placed (a move changed again) is removed at once.
// The group so never has fewer voters than the placement names while it
// moves: a replica leaves only after its successor holds the log.
//
// Each step passes etcd's checks (as server/member_change.h: a change must
// leave a majority of voters that answer the leader); Raft refuses a
// change while the last is uncommitted and a removal that would leave
// fewer than two voters, so a group of two cannot take back a member (it
// goes on with one replica).
#ifndef STRATA_CLUSTER_REPLICA_CHANGES_H_
#define STRATA_CLUSTER_REPLICA_CHANGES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "raft/raft.h"

namespace strata::cluster {

// What a group's leader does next: a membership change, or hand its
// leadership to `transfer_to` (it leaves the group).
struct ReplicaStep {
  std::optional<raft::ConfChange> change;
  raft::NodeId transfer_to = raft::kNobody;

  bool operator==(const ReplicaStep&) const = default;
};

// On a group's leader: the next step, or nullopt when there is none to
// take now.
//  - `placement`: the members the group belongs on;
//  - `registered`: the incarnation the group holds for a member (its
//    replicated registry), nullopt if none;
//  - `carried`: the incarnation each member's newest Raft batch to this
//    node carried (members not heard from since this node started are
//    absent).
std::optional<ReplicaStep> NextReplicaStep(
    const raft::Raft& leader, const std::vector<raft::NodeId>& placement,
    const std::function<std::optional<uint64_t>(raft::NodeId)>& registered,
    const std::map<raft::NodeId, uint64_t>& carried);

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_REPLICA_CHANGES_H_
