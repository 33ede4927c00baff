// HostCluster: nodes each running a RaftHost with the same groups, over a
// simulated network the test steps through: batches delivered in any
// order, lost or duplicated, a node cut off, ticks, crashes (some in the
// middle of a write, injected through the log's fail_after_bytes) and
// restarts from the node's directory. The test supplies the replicated
// state, how to compare two replicas and what to propose.
#ifndef STRATA_TESTS_REPLICATION_HOST_CLUSTER_H_
#define STRATA_TESTS_REPLICATION_HOST_CLUSTER_H_

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "replication/raft_host.h"
#include "storage_test_support.h"

namespace strata::replication {

using raft::GroupId;
using raft::NodeBatch;
using raft::NodeId;
using raft::RaftRole;

class HostCluster {
 public:
  // What a replica's state looks like, to compare replicas: equal
  // fingerprints, equal states; "" for a state with nothing applied.
  using Fingerprint = std::function<std::string(const ReplicatedState*)>;
  // Proposes something to `group` on node `id` (the test's commands).
  using ProposeHook = std::function<void(HostCluster&, NodeId id, GroupId group)>;

  HostCluster(int nodes, int groups, uint32_t seed, RaftHost::StateFactory factory,
              Fingerprint fingerprint, ProposeHook propose)
      : random_(seed),
        factory_(std::move(factory)),
        fingerprint_(std::move(fingerprint)),
        propose_(std::move(propose)) {
    options_.raft.election_ticks = 10;
    options_.raft.random_seed = seed;
    options_.log.sync = false;  // the tests crash processes, not machines
    options_.compact_after = 25;
    // Rewrites of the log every few rounds: they read the entries' data
    // from each group's Raft (RaftLogStore::TakeEntryDataFrom).
    options_.log.rewrite_bytes = 1 << 9;
    options_.timeout_ticks = 60;
    std::vector<NodeId> voters;
    for (int i = 1; i <= nodes; ++i) voters.push_back(static_cast<NodeId>(i));
    for (NodeId id : voters) Start(id);
    for (int g = 1; g <= groups; ++g) {
      groups_.push_back(static_cast<GroupId>(g));
      for (NodeId id : voters) EXPECT_TRUE(host(id)->CreateGroup(g, voters).ok());
    }
  }

  RaftHost* host(NodeId id) { return hosts_[id].get(); }
  bool up(NodeId id) { return hosts_[id] != nullptr; }
  const std::vector<GroupId>& groups() const { return groups_; }

  void Start(NodeId id, uint64_t fail_after_bytes = 0) {
    RaftHostOptions options = options_;
    options.log.fail_after_bytes = fail_after_bytes;
    Result<std::unique_ptr<RaftHost>> host =
        RaftHost::Open(id, dir_.File("node" + std::to_string(id)), options, factory_,
                       [this](NodeBatch batch) { network_.push_back(std::move(batch)); });
    if (!host.ok() && fail_after_bytes != 0) {
      ++torn_crashes;  // in the new segment's header: the start is a crash
      return;
    }
    ASSERT_TRUE(host.ok()) << host.status().message();
    hosts_[id] = std::move(*host);
    Run(id);
  }
  void Crash(NodeId id) { hosts_[id].reset(); }

  // The node's rounds; a failed write (an injected one) is a crash.
  void Run(NodeId id) {
    if (!up(id)) return;
    if (!host(id)->Run().ok()) {
      ++torn_crashes;
      Crash(id);
    }
  }

  void Deliver(size_t i, bool duplicate) {
    NodeBatch batch = network_[i];
    if (!duplicate) network_.erase(network_.begin() + static_cast<long>(i));
    if (!up(batch.to) || cut_.count(batch.to) != cut_.count(batch.from)) return;
    host(batch.to)->Receive(batch);
    Run(batch.to);
  }

  void Tick(NodeId id) {
    if (!up(id)) return;
    host(id)->Tick();
    Run(id);
  }

  // The test's proposal on `id`, then its rounds.
  void Propose(NodeId id, GroupId group) {
    if (!up(id)) return;
    propose_(*this, id, group);
    Run(id);
  }

  // One random step of the simulation.
  void Step() {
    const int action = Pick(0, 99);
    const NodeId node = static_cast<NodeId>(Pick(1, static_cast<int>(hosts_.size())));
    if (action < 55 && !network_.empty()) {
      const size_t i = static_cast<size_t>(Pick(0, static_cast<int>(network_.size()) - 1));
      if (Pick(0, 9) == 0) {
        network_.erase(network_.begin() + static_cast<long>(i));  // lost
      } else {
        Deliver(i, Pick(0, 19) == 0);
      }
    } else if (action < 75) {
      Tick(node);
    } else if (action < 93) {
      Propose(node, groups_[static_cast<size_t>(Pick(0, static_cast<int>(groups_.size()) - 1))]);
    } else if (action < 95) {
      if (up(node)) {
        if (Pick(0, 3) == 0) Crash(node);  // down about a fifth of the time
      } else {
        // Some restarts fail in the middle of a later write: a torn record.
        Start(node, Pick(0, 2) == 0 ? static_cast<uint64_t>(Pick(1, 3000)) : 0);
      }
    } else if (action < 97) {
      cut_.clear();
      if (Pick(0, 1) == 0) cut_.insert(node);  // one node alone on its side
    } else if (action < 99) {
      for (NodeId id = 1; id <= hosts_.size(); ++id) {
        if (up(id))
          host(id)->Read(groups_[0], [this](Status status) {
            if (status.ok()) ++reads_served;
          });
        Run(id);
      }
    }
  }

  // Heals the network and runs `rounds` of delivery and ticks, proposing
  // nothing; with `restart`, a crashed node starts again first.
  void Settle(int rounds = 300, bool restart = true) {
    cut_.clear();
    for (int round = 0; round < rounds; ++round) {
      for (auto& [id, host] : hosts_) {
        if (!host && restart) Start(id);
      }
      while (!network_.empty()) Deliver(0, false);
      for (auto& [id, host] : hosts_) Tick(id);
    }
  }

  // Restarts everyone, heals the network and runs until every group has
  // a leader whose write every replica has applied.
  void Heal() {
    cut_.clear();
    for (int round = 0; round < 3000; ++round) {
      // A node whose injected write failure comes now restarts without.
      for (auto& [id, host] : hosts_) {
        if (!host) Start(id);
      }
      while (!network_.empty()) Deliver(0, false);
      for (auto& [id, host] : hosts_) Tick(id);
      if (round % 50 == 49) {
        for (auto& [id, host] : hosts_) {
          if (!host) Start(id);
        }
        for (GroupId group : groups_) {
          for (auto& [id, host] : hosts_) {
            if (host && host->raft().group(group)->role() == RaftRole::kLeader) Propose(id, group);
          }
        }
        if (Agreed()) return;
      }
    }
    ADD_FAILURE() << "the groups did not converge after healing";
  }

  // Every member of each group (in its own view) applied the same history.
  bool Agreed() {
    for (GroupId group : groups_) {
      std::set<std::string> seen;
      for (auto& [id, host] : hosts_) {
        if (!host) return false;
        const raft::Raft& raft = *host->raft().group(group);
        if (raft.voters().count(id) + raft.learners().count(id) == 0) continue;
        seen.insert(fingerprint_(host->state(group)));
      }
      if (seen.size() != 1 || seen.begin()->empty()) return false;
    }
    return true;
  }

  int Pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }

  const std::map<NodeId, std::unique_ptr<RaftHost>>& hosts() const { return hosts_; }
  int torn_crashes = 0;
  int reads_served = 0;

 private:
  storage_testing::TempDir dir_;
  std::mt19937 random_;
  RaftHost::StateFactory factory_;
  Fingerprint fingerprint_;
  ProposeHook propose_;
  RaftHostOptions options_;
  std::map<NodeId, std::unique_ptr<RaftHost>> hosts_;
  std::vector<GroupId> groups_;
  std::deque<NodeBatch> network_;
  std::set<NodeId> cut_;
};

}  // namespace strata::replication

#endif  // STRATA_TESTS_REPLICATION_HOST_CLUSTER_H_
