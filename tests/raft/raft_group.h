// RaftGroup: a Raft group for tests, with each member's "disk" (what its
// driver made durable) and state machine (the entries it applied), and the
// messages in flight. The test decides what is delivered, dropped or
// duplicated, when time passes and who crashes.
#ifndef STRATA_TESTS_RAFT_RAFT_GROUP_H_
#define STRATA_TESTS_RAFT_RAFT_GROUP_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "raft/raft.h"

namespace strata::raft {

class RaftGroup {
 public:
  // Members 1..n; `base` gives everything but the id and the voters.
  explicit RaftGroup(int n, RaftConfig base = {}, std::map<NodeId, RaftStorage> disks = {})
      : base_(base), disks_(std::move(disks)) {
    for (int i = 1; i <= n; ++i) base_.voters.push_back(static_cast<NodeId>(i));
    for (NodeId id : base_.voters) Start(id);
  }

  const std::vector<NodeId>& ids() const { return base_.voters; }
  Raft& node(NodeId id) { return *nodes_.at(id); }
  bool up(NodeId id) const { return nodes_.count(id) != 0; }
  const RaftStorage& disk(NodeId id) const { return disks_.at(id); }
  const std::vector<Entry>& applied(NodeId id) const { return applied_.at(id); }

  // Does everything `id` has to do now (the order Ready asks for); the
  // messages join the network. `before_apply` sees each entry applied.
  void Drive(NodeId id) {
    if (!up(id)) return;
    Raft& raft = node(id);
    while (raft.HasReady()) {
      Ready ready = raft.TakeReady();
      RaftStorage& disk = disks_[id];
      if (ready.has_hard_state) disk.hard_state = ready.hard_state;
      if (!ready.entries.empty()) {
        disk.entries.resize(ready.entries.front().index - 1);
        disk.entries.insert(disk.entries.end(), ready.entries.begin(), ready.entries.end());
      }
      for (Message& m : ready.messages) network.push_back(std::move(m));
      for (const Entry& e : ready.committed) applied_[id].push_back(e);
      for (const ReadState& read : ready.read_states) reads.push_back({id, read});
      for (uint64_t request : ready.failed_reads) failed_reads.push_back({id, request});
      raft.Advance(ready);
    }
  }
  void DriveAll() {
    for (NodeId id : ids()) Drive(id);
  }

  // Delivers the oldest message in flight (if its receiver is up and the
  // filter lets it through); false if none was in flight.
  bool DeliverOne(const std::function<bool(const Message&)>& pass = nullptr) {
    if (network.empty()) return false;
    Message m = std::move(network.front());
    network.pop_front();
    if (up(m.to) && (!pass || pass(m))) {
      node(m.to).Step(m);
      Drive(m.to);
    }
    return true;
  }
  // Delivers until nothing is in flight.
  void DeliverAll(const std::function<bool(const Message&)>& pass = nullptr) {
    for (int guard = 0; guard < 1'000'000 && DeliverOne(pass); ++guard) {
    }
  }
  void Tick(NodeId id) {
    if (!up(id)) return;
    node(id).Tick();
    Drive(id);
  }
  // Ticks `id` until it is leader (or `limit` ticks), delivering between.
  bool Elect(NodeId id, int limit = 1000) {
    for (int i = 0; i < limit && node(id).role() != RaftRole::kLeader; ++i) {
      Tick(id);
      DeliverAll();
    }
    return node(id).role() == RaftRole::kLeader;
  }

  // A crash: what was not made durable is gone, and so is the state
  // machine (it is rebuilt from the log on restart).
  void Crash(NodeId id) { nodes_.erase(id); }
  void Restart(NodeId id) {
    if (!up(id)) Start(id);
  }

  std::deque<Message> network;
  // Read indexes given out, and read requests refused, by member.
  std::vector<std::pair<NodeId, ReadState>> reads;
  std::vector<std::pair<NodeId, uint64_t>> failed_reads;

 private:
  void Start(NodeId id) {
    RaftConfig config = base_;
    config.id = id;
    applied_[id].clear();
    nodes_[id] = std::make_unique<Raft>(config, disks_[id]);
    Drive(id);
  }

  RaftConfig base_;
  std::map<NodeId, std::unique_ptr<Raft>> nodes_;
  std::map<NodeId, RaftStorage> disks_;
  std::map<NodeId, std::vector<Entry>> applied_;
};

}  // namespace strata::raft

#endif  // STRATA_TESTS_RAFT_RAFT_GROUP_H_
