#include "server/replica_repair.h"

#include <algorithm>
#include <set>

#include "server/member_change.h"

namespace strata::server {

namespace {

// The change etcd's checks allow, else nullopt (try again later: a member
// that answers again, a change that commits).
std::optional<raft::ConfChange> Checked(MemberChange::Kind kind, raft::NodeId node,
                                        const raft::Raft& leader) {
  service::Reply<raft::ConfChange> planned = PlanMemberChange({kind, node, ""}, leader);
  if (!planned.ok()) return std::nullopt;
  return planned.value();
}

}  // namespace

std::optional<raft::ConfChange> NextReplicaRepair(
    const raft::Raft& leader, const std::vector<raft::NodeId>& placement,
    const std::function<std::optional<uint64_t>(raft::NodeId)>& registered,
    const std::map<raft::NodeId, uint64_t>& carried) {
  auto member = [&](raft::NodeId node) {
    return leader.voters().count(node) != 0 || leader.learners().count(node) != 0;
  };
  // 1. A member whose batches carry another incarnation than the group's.
  for (const std::set<raft::NodeId>* members : {&leader.voters(), &leader.learners()}) {
    for (raft::NodeId node : *members) {
      if (node == leader.id()) continue;
      const std::optional<uint64_t> known = registered(node);
      const auto heard = carried.find(node);
      if (!known || heard == carried.end() || heard->second == *known) continue;
      // Raft keeps two voters at least: a group of two goes on with one.
      if (leader.voters().count(node) != 0 && leader.voters().size() <= 2) continue;
      return Checked(MemberChange::Kind::kRemove, node, leader);
    }
  }
  // 3 before 2: a learner that caught up is promoted before another is
  // added (one learner at a time).
  for (raft::NodeId node : leader.learners()) {
    if (std::find(placement.begin(), placement.end(), node) == placement.end()) continue;
    if (leader.Active(node) && leader.MatchOf(node) >= leader.log().committed()) {
      return Checked(MemberChange::Kind::kPromote, node, leader);
    }
  }
  // 2. A member of the placement the group lacks, heard from since.
  for (raft::NodeId node : placement) {
    if (!member(node) && carried.count(node) != 0 && !registered(node)) {
      return Checked(MemberChange::Kind::kAddLearner, node, leader);
    }
  }
  return std::nullopt;
}

}  // namespace strata::server
