// RaftHost: nodes each driving several Raft groups, their logs on disk,
// over a simulated network that loses, duplicates and reorders batches,
// with crashes (some in the middle of a write) and restarts from disk.
// After every step each group's replicas must have applied prefixes of one
// history; after healing they must agree, and every command acknowledged
// must be in that history exactly once.
#include "replication/raft_host.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "storage_test_support.h"

namespace strata::replication {
namespace {

using raft::ConfChange;
using raft::GroupId;
using raft::NodeBatch;
using raft::NodeId;
using raft::RaftRole;
using storage_testing::TempDir;

// A state machine that remembers every command it applied, in order.
class History final : public ReplicatedState {
 public:
  Status Restore(std::string_view snapshot) override {
    commands.clear();
    std::istringstream in{std::string(snapshot)};
    for (std::string line; std::getline(in, line);) commands.push_back(line);
    return Status::Ok();
  }
  // The result: how many commands were applied, with this one.
  std::string Apply(raft::Index, std::string_view command) override {
    commands.emplace_back(command);
    return std::to_string(commands.size());
  }
  std::string Save() const override {
    std::string out;
    for (const std::string& c : commands) out += c + "\n";
    return out;
  }
  std::vector<std::string> commands;
};

const std::vector<std::string>& CommandsOf(const ReplicatedState* state) {
  return static_cast<const History*>(state)->commands;
}

class Cluster {
 public:
  Cluster(int nodes, int groups, uint32_t seed) : random_(seed) {
    options_.raft.election_ticks = 10;
    options_.raft.random_seed = seed;
    options_.log.sync = false;  // the tests crash processes, not machines
    options_.compact_after = 25;
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
    Result<std::unique_ptr<RaftHost>> host = RaftHost::Open(
        id, dir_.File("node" + std::to_string(id)), options,
        [](GroupId) { return std::make_unique<History>(); },
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

  void Propose(NodeId id, GroupId group) {
    if (!up(id)) return;
    const std::string command = "g" + std::to_string(group) + "-" + std::to_string(next_++);
    proposed.insert(command);
    host(id)->Propose(group, command, [this, command, group](Result<std::string> result) {
      if (result.ok()) acknowledged[group].push_back(command);
    });
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

  // Every group's replicas that are up have applied prefixes of one history.
  void CheckPrefixes() {
    for (GroupId group : groups_) {
      const std::vector<std::string>* longest = nullptr;
      for (auto& [id, host] : hosts_) {
        if (!host) continue;
        const std::vector<std::string>& applied = CommandsOf(host->state(group));
        if (longest == nullptr || applied.size() > longest->size()) longest = &applied;
      }
      for (auto& [id, host] : hosts_) {
        if (!host) continue;
        const std::vector<std::string>& applied = CommandsOf(host->state(group));
        ASSERT_TRUE(std::equal(applied.begin(), applied.end(), longest->begin()))
            << "group " << group << ": node " << id << " applied a different history";
      }
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
      std::set<std::vector<std::string>> seen;
      for (auto& [id, host] : hosts_) {
        if (!host) return false;
        const raft::Raft& raft = *host->raft().group(group);
        if (raft.voters().count(id) + raft.learners().count(id) == 0) continue;
        seen.insert(CommandsOf(host->state(group)));
      }
      if (seen.size() != 1 || seen.begin()->empty()) return false;
    }
    return true;
  }

  int Pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }

  std::set<std::string> proposed;
  std::map<GroupId, std::vector<std::string>> acknowledged;
  int torn_crashes = 0;
  int reads_served = 0;

 private:
  TempDir dir_;
  std::mt19937 random_;
  RaftHostOptions options_;
  std::map<NodeId, std::unique_ptr<RaftHost>> hosts_;
  std::vector<GroupId> groups_;
  std::deque<NodeBatch> network_;
  std::set<NodeId> cut_;
  uint64_t next_ = 0;
};

// 100 seeds in make test; STRATA_REPLICATION_SEEDS=N for a longer run.
int SeedsToRun() {
  const char* seeds = std::getenv("STRATA_REPLICATION_SEEDS");
  return seeds != nullptr ? std::atoi(seeds) : 100;
}

TEST(RaftHostTest, NothingAcknowledgedIsLostThroughCrashesAndTornWrites) {
  const int seeds = SeedsToRun();
  int torn = 0, acknowledged = 0, compactions = 0, restored = 0, reads = 0;
  for (uint32_t seed = 1; seed <= static_cast<uint32_t>(seeds); ++seed) {
    Cluster cluster(3, 3, seed);
    for (int step = 0; step < 4000; ++step) {
      cluster.Step();
      if (step % 16 == 0) {
        cluster.CheckPrefixes();
        if (testing::Test::HasFatalFailure()) FAIL() << "seed " << seed << " step " << step;
      }
    }
    cluster.Heal();
    ASSERT_FALSE(testing::Test::HasFailure()) << "seed " << seed;
    for (GroupId group : cluster.groups()) {
      const std::vector<std::string>& history = CommandsOf(cluster.host(1)->state(group));
      std::map<std::string, int> count;
      for (const std::string& c : history) {
        ++count[c];
        ASSERT_EQ(cluster.proposed.count(c), 1u) << "seed " << seed << ": never proposed " << c;
        ASSERT_EQ(count[c], 1) << "seed " << seed << ": applied twice: " << c;
      }
      for (const std::string& c : cluster.acknowledged[group]) {
        ASSERT_EQ(count[c], 1) << "seed " << seed << ": acknowledged and lost: " << c;
      }
      acknowledged += static_cast<int>(cluster.acknowledged[group].size());
    }
    for (NodeId id = 1; id <= 3; ++id) {
      compactions += static_cast<int>(cluster.host(id)->stats().compactions);
      restored += static_cast<int>(cluster.host(id)->stats().snapshots_restored);
    }
    torn += cluster.torn_crashes;
    reads += cluster.reads_served;
  }
  // The runs did what they are for.
  EXPECT_GT(torn, seeds / 3);
  EXPECT_GT(acknowledged, seeds * 50);
  EXPECT_GT(compactions, seeds);
  EXPECT_GT(restored, 0);
  EXPECT_GT(reads, seeds);
  std::cout << "acknowledged " << acknowledged << ", crashes mid-write " << torn << ", compactions "
            << compactions << ", snapshots restored " << restored << ", reads " << reads << "\n";
}

TEST(RaftHostTest, AnswersProposalsAndReadsAndBoundsThem) {
  Cluster cluster(1, 1, 1);
  RaftHost* host = cluster.host(1);
  for (int i = 0; i < 30 && host->raft().group(1)->role() != RaftRole::kLeader; ++i) {
    cluster.Tick(1);
  }
  ASSERT_EQ(host->raft().group(1)->role(), RaftRole::kLeader);
  std::vector<Status> answers;
  std::string result;
  const auto answer = [&](Status status) { answers.push_back(std::move(status)); };
  const auto applied = [&](Result<std::string> r) {
    if (r.ok()) result = *r;
    answers.push_back(r.status());
  };
  host->Propose(1, "x=1", applied);
  host->Read(1, answer);
  host->Propose(1, "", applied);
  host->Propose(1, std::string(size_t{3} << 19 | 1, 'v'), applied);
  host->Propose(7, "x=2", applied);
  ASSERT_TRUE(host->Run().ok());
  ASSERT_EQ(answers.size(), 5u);
  // The refusals come at once, in order; the write and the read after a
  // round.
  EXPECT_EQ(answers[0].code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(answers[1].code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(answers[2].code(), StatusCode::kNotFound);
  EXPECT_TRUE(answers[3].ok()) << answers[3].message();
  EXPECT_TRUE(answers[4].ok()) << answers[4].message();
  EXPECT_EQ(CommandsOf(host->state(1)), std::vector<std::string>{"x=1"});
  EXPECT_EQ(result, "1");  // what applying it returned
}

TEST(RaftHostTest, AFollowerRefusesProposalsNamingTheLeader) {
  Cluster cluster(3, 1, 5);
  cluster.Heal();
  NodeId leader = 0;
  for (NodeId id = 1; id <= 3; ++id) {
    if (cluster.host(id)->raft().group(1)->role() == RaftRole::kLeader) leader = id;
  }
  ASSERT_NE(leader, 0u);
  const NodeId follower = leader % 3 + 1;
  Status answer;
  cluster.host(follower)->Propose(1, "y", [&](Result<std::string> r) { answer = r.status(); });
  EXPECT_EQ(answer.code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.message().find("node " + std::to_string(leader)), std::string::npos)
      << answer.message();
}

TEST(RaftHostTest, WaitingRequestsAreBoundedAndTimeOut) {
  Cluster cluster(3, 1, 9);
  cluster.Heal();
  // Node 1 alone: its reads find no quorum and wait.
  cluster.Crash(2);
  cluster.Crash(3);
  RaftHost* host = cluster.host(1);
  int timed_out = 0, refused = 0;
  for (int i = 0; i < 10'001; ++i) {
    host->Read(1, [&](Status status) {
      if (status.code() != StatusCode::kUnavailable) return;
      ++(status.message().find("too many") != std::string::npos ? refused : timed_out);
    });
  }
  EXPECT_EQ(refused, 1);
  for (int i = 0; i < 200; ++i) cluster.Tick(1);
  EXPECT_EQ(timed_out, 10'000);
}

TEST(RaftHostTest, AMemberAddedLaterCatchesUpAndAnotherLeaves) {
  Cluster cluster(4, 1, 3);
  // Groups were created on all four; start over with a group of three
  // and node 4 joining it.
  for (NodeId id = 1; id <= 4; ++id) ASSERT_TRUE(cluster.host(id)->RemoveGroup(1).ok());
  for (NodeId id = 1; id <= 3; ++id) ASSERT_TRUE(cluster.host(id)->CreateGroup(1, {1, 2, 3}).ok());
  cluster.Crash(4);
  cluster.Start(4);
  ASSERT_TRUE(cluster.host(4)->CreateGroup(1, {}).ok());
  cluster.Heal();
  NodeId leader = 0;
  for (NodeId id = 1; id <= 3; ++id) {
    if (cluster.host(id)->raft().group(1)->role() == RaftRole::kLeader) leader = id;
  }
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 100; ++i) cluster.Propose(leader, 1);  // past a compaction
  Status added;
  cluster.host(leader)->ProposeConfChange(1, ConfChange{ConfChange::Kind::kAddVoter, 4},
                                          [&](Status status) { added = std::move(status); });
  cluster.Heal();
  EXPECT_TRUE(added.ok()) << added.message();
  EXPECT_EQ(cluster.host(4)->raft().group(1)->voters(), (std::set<NodeId>{1, 2, 3, 4}));
  EXPECT_EQ(CommandsOf(cluster.host(4)->state(1)), CommandsOf(cluster.host(1)->state(1)));
  EXPECT_GT(cluster.host(4)->stats().snapshots_restored, 0u);
  // It survives a restart with what it learned.
  cluster.Crash(4);
  cluster.Start(4);
  EXPECT_EQ(cluster.host(4)->raft().group(1)->voters(), (std::set<NodeId>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace strata::replication
