#include "raft/multi_raft.h"

#include <utility>

namespace strata::raft {

bool MultiRaft::AddGroup(GroupId group, RaftConfig config, RaftStorage storage) {
  if (config.id != id_ || groups_.count(group) != 0) return false;
  groups_[group] = std::make_unique<Raft>(std::move(config), std::move(storage));
  return true;
}

void MultiRaft::RemoveGroup(GroupId group) { groups_.erase(group); }

Raft* MultiRaft::group(GroupId group) {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : it->second.get();
}

void MultiRaft::Tick() {
  for (auto& [id, raft] : groups_) raft->Tick();
}

void MultiRaft::Step(const NodeBatch& batch) {
  for (const GroupMessage& m : batch.messages) {
    Raft* raft = group(m.group);
    if (raft == nullptr) {
      ++dropped_;
      continue;
    }
    raft->Step(m.message);
  }
}

bool MultiRaft::HasReady() const {
  for (const auto& [id, raft] : groups_) {
    if (raft->HasReady()) return true;
  }
  return false;
}

MultiReady MultiRaft::TakeReady() {
  MultiReady out;
  std::map<NodeId, NodeBatch> by_node;
  for (auto& [id, raft] : groups_) {
    if (!raft->HasReady()) continue;
    GroupReady group{id, raft->TakeReady()};
    for (Message& m : group.ready.messages) {
      NodeBatch& batch = by_node[m.to];
      batch.from = id_;
      batch.to = m.to;
      batch.messages.push_back(GroupMessage{id, std::move(m)});
    }
    group.ready.messages.clear();
    out.groups.push_back(std::move(group));
  }
  for (auto& [node, batch] : by_node) out.batches.push_back(std::move(batch));
  return out;
}

void MultiRaft::Advance(const MultiReady& ready) {
  for (const GroupReady& group : ready.groups) {
    // A group removed meanwhile has nothing left to advance.
    if (Raft* raft = this->group(group.group)) raft->Advance(group.ready);
  }
}

}  // namespace strata::raft
