// A shard group's report: which nodes its members are, as its leader has
// applied them, sent by the leader to every other node once a second and
// after each membership change it makes. Replicas move between nodes
// (cluster/replica_changes.h), so no node can compute a shard's replicas
// from the node list any more; each learns them from these reports:
//  - to route: a shard's calls go to its voters, its leader first;
//  - to start a replica: a node a report names a learner of a group it has
//    no replica of creates an empty one, which the leader fills;
//  - to drop one: a replica whose group's newer report neither names its
//    node nor places the group there was removed while it was away, and
//    is deleted (a member removed to be taken back, its disk replaced,
//    is still placed: it keeps its replica).
// Reports of one group are ordered by `applied` (the leader's applied
// index when it sent it; a new leader's is at least every index the old
// one reported committed): a node keeps the newest and ignores older ones.
#ifndef STRATA_CLUSTER_SHARD_GROUP_REPORT_H_
#define STRATA_CLUSTER_SHARD_GROUP_REPORT_H_

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "raft/multi_raft.h"
#include "strata/status.h"

namespace strata::cluster {

struct ShardGroupReport {
  raft::GroupId group = 0;
  raft::Index applied = 0;
  raft::Term term = 0;
  raft::NodeId leader = raft::kNobody;
  std::set<raft::NodeId> voters;
  std::set<raft::NodeId> learners;
  std::vector<raft::NodeId> placement;  // where the group belongs

  bool Places(raft::NodeId node) const {
    return std::find(placement.begin(), placement.end(), node) != placement.end();
  }
  bool Names(raft::NodeId node) const {
    return voters.count(node) != 0 || learners.count(node) != 0;
  }
  bool operator==(const ShardGroupReport&) const = default;
};

// At most this many members a report names (each side).
inline constexpr size_t kMaxReportedMembers = 64;

std::string EncodeShardGroupReport(const ShardGroupReport& report);
// kInvalidArgument if `bytes` is not a report (cut, another version, too
// many members, trailing bytes).
Result<ShardGroupReport> DecodeShardGroupReport(std::string_view bytes);

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_SHARD_GROUP_REPORT_H_
