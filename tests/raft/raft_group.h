// RaftGroup: a Raft group for tests, with each member's "disk" (what its
// driver made durable) and state machine (the entries it applied, which is
// also what its snapshots hold), and the messages in flight. The test decides what is delivered,
// dropped or duplicated, when time passes and who crashes.
#ifndef STRATA_TESTS_RAFT_RAFT_GROUP_H_
#define STRATA_TESTS_RAFT_RAFT_GROUP_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "raft/raft.h"

namespace strata::raft {

class RaftGroup {
 public:
  // Nodes 1..n, of which 1..voters (0: all) start as the group's voters
  // (the others wait to be added); `base` gives everything but the id and
  // the voters.
  explicit RaftGroup(int n, RaftConfig base = {}, std::map<NodeId, RaftStorage> disks = {},
                     int voters = 0)
      : base_(base), disks_(std::move(disks)) {
    for (int i = 1; i <= n; ++i) ids_.push_back(static_cast<NodeId>(i));
    for (int i = 1; i <= (voters == 0 ? n : voters); ++i) {
      base_.voters.push_back(static_cast<NodeId>(i));
    }
    for (NodeId id : ids_) Start(id);
  }

  const std::vector<NodeId>& ids() const { return ids_; }
  Raft& node(NodeId id) { return *nodes_.at(id); }
  bool up(NodeId id) const { return nodes_.count(id) != 0; }
  const RaftStorage& disk(NodeId id) const { return disks_.at(id); }
  const std::vector<Entry>& applied(NodeId id) const { return applied_.at(id); }
  // How often `id`'s state machine was replaced (a restart, a snapshot).
  int restores(NodeId id) const { return restores_.count(id) ? restores_.at(id) : 0; }

  // Log compaction on `id`: its state machine up to `index` becomes the
  // snapshot, on its disk and in its log. False if Raft refused.
  bool Compact(NodeId id, Index index) {
    if (!up(id) || index == 0 || index > applied_[id].size()) return false;
    std::vector<Entry> upto(applied_[id].begin(),
                            applied_[id].begin() + static_cast<std::ptrdiff_t>(index));
    const std::string data = Encode(upto);
    if (!node(id).Compact(index, data)) return false;
    RaftStorage& disk = disks_[id];
    disk.snapshot = node(id).snapshot();
    std::erase_if(disk.entries, [&](const Entry& e) { return e.index <= index; });
    return true;
  }

  // Does everything `id` has to do now (the order Ready asks for); the
  // messages join the network. `before_apply` sees each entry applied.
  void Drive(NodeId id) {
    if (!up(id)) return;
    Raft& raft = node(id);
    while (raft.HasReady()) {
      Ready ready = raft.TakeReady();
      RaftStorage& disk = disks_[id];
      if (ready.snapshot.index != 0) {
        disk.snapshot = ready.snapshot;
        disk.entries.clear();
      }
      if (ready.has_hard_state) disk.hard_state = ready.hard_state;
      if (!ready.entries.empty()) {
        const Index from = ready.entries.front().index;
        std::erase_if(disk.entries, [from](const Entry& e) { return e.index >= from; });
        disk.entries.insert(disk.entries.end(), ready.entries.begin(), ready.entries.end());
      }
      for (Message& m : ready.messages) network.push_back(std::move(m));
      if (ready.snapshot.index != 0) {
        applied_[id] = Decode(ready.snapshot.data);
        ++restores_[id];
        ++snapshots_installed;
      }
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
  int snapshots_installed = 0;  // sent by a leader, restored by a follower

 private:
  void Start(NodeId id) {
    RaftConfig config = base_;
    config.id = id;
    applied_[id] = Decode(disks_[id].snapshot.data);
    ++restores_[id];
    nodes_[id] = std::make_unique<Raft>(config, disks_[id]);
    Drive(id);
  }

  // A state machine (its entries) as snapshot bytes, and back: per entry
  // its term, index, type and data's length, then the data.
  static std::string Encode(const std::vector<Entry>& entries) {
    std::ostringstream out;
    for (const Entry& e : entries) {
      out << e.term << ' ' << e.index << ' ' << static_cast<int>(e.type) << ' ' << e.data.size()
          << ' ' << e.data;
    }
    return out.str();
  }
  static std::vector<Entry> Decode(const std::string& data) {
    std::vector<Entry> out;
    std::istringstream in(data);
    Entry e;
    int type = 0;
    size_t size = 0;
    while (in >> e.term >> e.index >> type >> size && in.get() == ' ') {
      e.type = static_cast<EntryType>(type);
      e.data.assign(size, '\0');
      in.read(e.data.data(), static_cast<std::streamsize>(size));
      out.push_back(e);
    }
    return out;
  }

  RaftConfig base_;
  std::vector<NodeId> ids_;
  std::map<NodeId, std::unique_ptr<Raft>> nodes_;
  std::map<NodeId, RaftStorage> disks_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::map<NodeId, int> restores_;
};

}  // namespace strata::raft

#endif  // STRATA_TESTS_RAFT_RAFT_GROUP_H_
