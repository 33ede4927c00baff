// MultiRaft: many groups on three nodes, their messages batched per node
// pair. A seeded simulation loses, duplicates and reorders whole batches,
// partitions nodes and crashes them (every group at once), and checks each
// group's election safety and state machine safety after every step; then
// the network heals and every group must elect a leader and commit a last
// proposal on every node.
#include "raft/multi_raft.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace strata::raft {
namespace {

constexpr NodeId kNodes[] = {1, 2, 3};

class Cluster {
 public:
  Cluster(int groups, uint64_t seed) : groups_(groups), rng_(seed) {
    for (NodeId node : kNodes) Start(node);
  }

  MultiRaft& node(NodeId id) { return *nodes_.at(id); }
  bool up(NodeId id) const { return nodes_.count(id) != 0; }

  void Start(NodeId node) {
    auto multi = std::make_unique<MultiRaft>(node);
    for (GroupId g = 1; g <= static_cast<GroupId>(groups_); ++g) {
      RaftConfig config;
      config.id = node;
      config.voters = {1, 2, 3};
      config.random_seed = rng_();
      config.heartbeat_ticks = 2;
      multi->AddGroup(g, config, disks_[{node, g}]);
      applied_[{node, g}].clear();
    }
    nodes_[node] = std::move(multi);
    Drive(node);
  }
  void Crash(NodeId node) { nodes_.erase(node); }

  void Drive(NodeId node) {
    if (!up(node)) return;
    MultiRaft& multi = this->node(node);
    while (multi.HasReady()) {
      MultiReady ready = multi.TakeReady();
      ++readies_;
      std::set<NodeId> destinations;
      for (const NodeBatch& batch : ready.batches) {
        EXPECT_TRUE(destinations.insert(batch.to).second) << "one batch a destination";
        std::set<GroupId> groups;
        for (const GroupMessage& m : batch.messages) groups.insert(m.group);
        if (groups.size() > 1) ++batches_of_several_groups_;
        network_.push_back(batch);
      }
      for (GroupReady& group : ready.groups) {
        RaftStorage& disk = disks_[{node, group.group}];
        const Ready& r = group.ready;
        EXPECT_TRUE(r.messages.empty()) << "messages travel in the batches";
        if (r.has_hard_state) disk.hard_state = r.hard_state;
        if (!r.entries.empty()) {
          const Index from = r.entries.front().index;
          std::erase_if(disk.entries, [from](const Entry& e) { return e.index >= from; });
          disk.entries.insert(disk.entries.end(), r.entries.begin(), r.entries.end());
        }
        for (const Entry& e : r.committed) applied_[{node, group.group}].push_back(e);
      }
      multi.Advance(ready);
    }
  }

  void Deliver(size_t at, bool faults) {
    NodeBatch batch = network_[at];
    network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(at));
    if (!up(batch.to) || cut_.count({batch.from, batch.to}) != 0) return;
    if (faults && rng_() % 100 < 10) return;                    // lost
    if (faults && rng_() % 100 < 5) network_.push_back(batch);  // duplicated
    node(batch.to).Step(batch);
    Drive(batch.to);
  }

  void Act() {
    const NodeId someone = kNodes[rng_() % 3];
    const int r = static_cast<int>(rng_() % 100);
    if (r < 50) {
      if (!network_.empty()) Deliver(rng_() % network_.size(), true);
    } else if (r < 80) {
      if (up(someone)) {
        node(someone).Tick();
        Drive(someone);
      }
    } else if (r < 92) {
      Propose();
    } else if (r < 95) {
      cut_.clear();
      if (rng_() % 2 == 0) {
        for (NodeId other : kNodes) {
          if (other == someone) continue;
          cut_.insert({someone, other});
          cut_.insert({other, someone});
        }
      }
    } else if (r < 97) {
      Crash(someone);
    } else if (!up(someone)) {
      Start(someone);
    }
    while (network_.size() > 1000) network_.pop_front();
  }

  // A proposal in a random group, at whichever node leads it.
  void Propose() {
    const GroupId g = 1 + rng_() % static_cast<uint64_t>(groups_);
    for (NodeId n : kNodes) {
      if (!up(n) || node(n).group(g)->role() != RaftRole::kLeader) continue;
      (void)node(n).group(g)->Propose("g" + std::to_string(g) + "-" + std::to_string(++proposals_));
      Drive(n);
      return;
    }
  }

  std::string Check() {
    for (NodeId n : kNodes) {
      if (!up(n)) continue;
      for (const auto& [g, raft] : node(n).groups()) {
        if (raft->role() == RaftRole::kLeader) {
          auto [it, fresh] = leader_of_.emplace(std::make_pair(g, raft->term()), n);
          if (it->second != n) return "group " + std::to_string(g) + ": two leaders in a term";
        }
        for (const Entry& e : applied_[{n, g}]) {
          auto [it, fresh] = first_applied_.emplace(std::make_pair(g, e.index), e);
          if (!(it->second == e)) return "group " + std::to_string(g) + ": two entries applied";
        }
      }
    }
    return "";
  }

  // Heals, restarts, and waits for every group to commit a last proposal
  // on every node.
  std::string Settle() {
    cut_.clear();
    for (NodeId n : kNodes) {
      if (!up(n)) Start(n);
    }
    std::map<GroupId, Index> final_index;
    for (int round = 0; round < 2000; ++round) {
      for (NodeId n : kNodes) {
        node(n).Tick();
        Drive(n);
      }
      while (!network_.empty()) Deliver(0, false);
      if (std::string failure = Check(); !failure.empty()) return failure;
      for (GroupId g = 1; g <= static_cast<GroupId>(groups_); ++g) {
        if (final_index.count(g) != 0) continue;
        for (NodeId n : kNodes) {
          Raft* raft = node(n).group(g);
          if (raft->role() != RaftRole::kLeader) continue;
          if (auto index = raft->Propose("final")) final_index[g] = *index;
          Drive(n);
        }
      }
      bool done = final_index.size() == static_cast<size_t>(groups_);
      for (const auto& [g, index] : final_index) {
        for (NodeId n : kNodes) done = done && applied_[{n, g}].size() >= index;
      }
      if (done) return "";
    }
    return "a group did not commit after the network healed";
  }

  int batches_of_several_groups() const { return batches_of_several_groups_; }
  int proposals() const { return proposals_; }
  size_t leaders() const { return leader_of_.size(); }
  int readies() const { return readies_; }

 private:
  const int groups_;
  std::mt19937_64 rng_;
  std::map<NodeId, std::unique_ptr<MultiRaft>> nodes_;
  std::map<std::pair<NodeId, GroupId>, RaftStorage> disks_;
  std::map<std::pair<NodeId, GroupId>, std::vector<Entry>> applied_;
  std::deque<NodeBatch> network_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::map<std::pair<GroupId, Term>, NodeId> leader_of_;
  std::map<std::pair<GroupId, Index>, Entry> first_applied_;
  int proposals_ = 0;
  int batches_of_several_groups_ = 0;
  int readies_ = 0;
};

TEST(MultiRaftTest, ManyGroupsOnThreeNodesKeepRaftsPropertiesAndShareBatches) {
  int several = 0, proposals = 0;
  size_t leaders = 0;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    Cluster cluster(8, seed);
    for (int step = 0; step < 1500; ++step) {
      cluster.Act();
      const std::string failure = cluster.Check();
      ASSERT_EQ(failure, "") << "seed " << seed << ", step " << step;
    }
    ASSERT_EQ(cluster.Settle(), "") << "seed " << seed;
    several += cluster.batches_of_several_groups();
    proposals += cluster.proposals();
    leaders += cluster.leaders();
  }
  EXPECT_GT(several, 10000) << "batches carry several groups' messages";
  EXPECT_GT(proposals, 500 * 10);
  EXPECT_GT(leaders, 500u * 8) << "every group elected, most more than once";
  std::printf("500 seeds of 8 groups: %zu leaders, %d proposals, %d batches of several groups\n",
              leaders, proposals, several);
}

TEST(MultiRaftTest, MessagesForAGroupThisNodeDoesNotHaveAreDroppedAndCounted) {
  MultiRaft node(2);
  RaftConfig config;
  config.id = 2;
  config.voters = {1, 2, 3};
  ASSERT_TRUE(node.AddGroup(7, config, {}));
  EXPECT_FALSE(node.AddGroup(7, config, {})) << "already here";
  config.id = 3;
  EXPECT_FALSE(node.AddGroup(8, config, {})) << "another node's member";
  NodeBatch batch;
  batch.from = 1;
  batch.to = 2;
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = 1;
  m.to = 2;
  m.term = 1;
  batch.messages = {{7, m}, {9, m}};
  node.Step(batch);
  EXPECT_EQ(node.dropped_for_unknown_groups(), 1u);
  EXPECT_EQ(node.group(7)->leader(), 1u);
  node.RemoveGroup(7);
  EXPECT_EQ(node.group(7), nullptr);
}

}  // namespace
}  // namespace strata::raft
