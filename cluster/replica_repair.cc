#include "cluster/replica_repair.h"

#include <algorithm>
#include <set>

namespace strata::cluster {

namespace {

// etcd allows one learner at a time.
constexpr size_t kMaxLearners = 1;

}  // namespace

std::optional<raft::ConfChange> NextReplicaRepair(
    const raft::Raft& leader, const std::vector<raft::NodeId>& placement,
    const std::function<std::optional<uint64_t>(raft::NodeId)>& registered,
    const std::map<raft::NodeId, uint64_t>& carried) {
  using Kind = raft::ConfChange::Kind;
  auto member = [&](raft::NodeId node) {
    return leader.voters().count(node) != 0 || leader.learners().count(node) != 0;
  };
  auto placed = [&](raft::NodeId node) {
    return std::find(placement.begin(), placement.end(), node) != placement.end();
  };
  // 1. A member whose batches carry another incarnation than the group's.
  for (const std::set<raft::NodeId>* members : {&leader.voters(), &leader.learners()}) {
    for (raft::NodeId node : *members) {
      if (node == leader.id()) continue;
      const std::optional<uint64_t> known = registered(node);
      const auto heard = carried.find(node);
      if (!known || heard == carried.end() || heard->second == *known) continue;
      const raft::ConfChange remove{Kind::kRemove, node};
      if (leader.voters().count(node) != 0) {
        // Raft keeps two voters at least: a group of two goes on with one.
        if (leader.voters().size() <= 2 || !leader.ActiveMajorityAfter(remove)) return std::nullopt;
      }
      return remove;
    }
  }
  // 3 before 2: a learner that caught up is promoted before another is
  // added (one learner at a time).
  for (raft::NodeId node : leader.learners()) {
    if (!placed(node) || !leader.Active(node) || leader.MatchOf(node) < leader.log().committed()) {
      continue;
    }
    const raft::ConfChange promote{Kind::kAddVoter, node};
    if (!leader.ActiveMajorityAfter(promote)) return std::nullopt;
    return promote;
  }
  // 2. A member of the placement the group lacks, heard from since.
  if (leader.learners().size() >= kMaxLearners) return std::nullopt;
  for (raft::NodeId node : placement) {
    if (!member(node) && carried.count(node) != 0 && !registered(node)) {
      return raft::ConfChange{Kind::kAddLearner, node};
    }
  }
  return std::nullopt;
}

}  // namespace strata::cluster
