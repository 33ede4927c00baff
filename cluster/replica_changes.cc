#include "cluster/replica_changes.h"

#include <algorithm>
#include <set>

namespace strata::cluster {

namespace {

// etcd allows one learner at a time.
constexpr size_t kMaxLearners = 1;

ReplicaStep Change(raft::ConfChange::Kind kind, raft::NodeId node) {
  return ReplicaStep{raft::ConfChange{kind, node}, raft::kNobody};
}

}  // namespace

std::optional<ReplicaStep> NextReplicaStep(
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
  auto caught_up = [&](raft::NodeId node) {
    return leader.Active(node) && leader.MatchOf(node) >= leader.log().committed();
  };
  // A member whose batches carry another incarnation than the group's.
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
      return ReplicaStep{remove, raft::kNobody};
    }
  }
  // A learner: promoted once caught up if placed, removed if not (before
  // another is added: one learner at a time).
  for (raft::NodeId node : leader.learners()) {
    if (!placed(node)) return Change(Kind::kRemove, node);
    if (!caught_up(node)) continue;
    const raft::ConfChange promote{Kind::kAddVoter, node};
    if (!leader.ActiveMajorityAfter(promote)) return std::nullopt;
    return ReplicaStep{promote, raft::kNobody};
  }
  // A member of the placement the group lacks.
  for (raft::NodeId node : placement) {
    if (member(node)) continue;
    if (leader.learners().size() >= kMaxLearners) return std::nullopt;
    return Change(Kind::kAddLearner, node);
  }
  if (!leader.learners().empty()) return std::nullopt;
  // Every member placed is a voter: a voter not placed leaves, the leader
  // last, handing its place to a placed voter that holds the log.
  for (raft::NodeId node : leader.voters()) {
    if (placed(node) || node == leader.id()) continue;
    const raft::ConfChange remove{Kind::kRemove, node};
    if (leader.voters().size() <= 2 || !leader.ActiveMajorityAfter(remove)) return std::nullopt;
    return ReplicaStep{remove, raft::kNobody};
  }
  if (!placed(leader.id())) {
    for (raft::NodeId node : placement) {
      if (leader.voters().count(node) != 0 && caught_up(node)) {
        return ReplicaStep{std::nullopt, node};
      }
    }
  }
  return std::nullopt;
}

}  // namespace strata::cluster
