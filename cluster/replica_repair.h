// Replica repair: how a shard's group takes back a member whose disk was
// replaced (a sharded cluster with --replication-factor).
//
// Such a member comes back with an empty Raft log and a new incarnation
// (replication/incarnations.h): it forgot its votes and the entries it
// acknowledged, so the group refuses its batches while it holds the old
// incarnation. The group's leader then replaces it, one membership change
// at a time, each planned here from what the leader sees:
//  1. remove it (which forgets its old incarnation: its batches are
//     taken again once every group on a node has forgotten it);
//  2. add it back as a learner, which receives the log (or a snapshot) but
//     neither votes nor counts towards a majority; its new incarnation is
//     registered once its batches are taken;
//  3. promote it to a voter once it holds every committed entry, so the
//     promotion stalls no commit.
// Votes it gives before step 3 count for nothing (it is not a voter in
// any configuration that came after its old incarnation was dropped), and
// after it, it votes from a log it keeps.
//
// Each step passes etcd's checks (as server/member_change.h: a removal
// must leave a majority of voters that answer the leader, one learner at
// a time); Raft refuses a change while the last is uncommitted and a
// removal that would leave fewer than two voters, so a group of two
// cannot take back a member (it goes on with one replica).
#ifndef STRATA_CLUSTER_REPLICA_REPAIR_H_
#define STRATA_CLUSTER_REPLICA_REPAIR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "raft/raft.h"

namespace strata::cluster {

// On a group's leader: the next membership change that repairs it, or
// nullopt when there is none to make now.
//  - `placement`: the members the group belongs on (its shard's replicas);
//  - `registered`: the incarnation the group holds for a member (its
//    replicated registry), nullopt if none;
//  - `carried`: the incarnation each member's newest Raft batch to this
//    node carried (members not heard from since this node started are
//    absent).
std::optional<raft::ConfChange> NextReplicaRepair(
    const raft::Raft& leader, const std::vector<raft::NodeId>& placement,
    const std::function<std::optional<uint64_t>(raft::NodeId)>& registered,
    const std::map<raft::NodeId, uint64_t>& carried);

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_REPLICA_REPAIR_H_
