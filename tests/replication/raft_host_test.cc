// RaftHost: nodes each driving several Raft groups, their logs on disk,
// over a simulated network that loses, duplicates and reorders batches,
// with crashes (some in the middle of a write) and restarts from disk.
// After every step each group's replicas must have applied prefixes of one
// history; after healing they must agree, and every command acknowledged
// must be in that history exactly once.
#include "replication/raft_host.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "command_history.h"
#include "host_cluster.h"

namespace strata::replication {
namespace {

using raft::ConfChange;

using History = CommandHistory;

const std::vector<std::string>& CommandsOf(const ReplicatedState* state) {
  return static_cast<const History*>(state)->commands;
}

// A HostCluster of Histories; each proposal a new command "g<group>-<n>".
class Cluster : public HostCluster {
 public:
  Cluster(int nodes, int groups, uint32_t seed)
      : HostCluster(
            nodes, groups, seed, [](GroupId) { return std::make_unique<History>(); },
            [](const ReplicatedState* state) {
              std::string all;
              for (const std::string& c : CommandsOf(state)) all += c + "\n";
              return all;
            },
            [this](HostCluster&, NodeId id, GroupId group) { ProposeNext(id, group); }) {}

  // Every group's replicas that are up have applied prefixes of one history.
  void CheckPrefixes() {
    for (GroupId group : groups()) {
      const std::vector<std::string>* longest = nullptr;
      for (const auto& [id, host] : hosts()) {
        if (!host) continue;
        const std::vector<std::string>& applied = CommandsOf(host->state(group));
        if (longest == nullptr || applied.size() > longest->size()) longest = &applied;
      }
      for (const auto& [id, host] : hosts()) {
        if (!host) continue;
        const std::vector<std::string>& applied = CommandsOf(host->state(group));
        ASSERT_TRUE(std::equal(applied.begin(), applied.end(), longest->begin()))
            << "group " << group << ": node " << id << " applied a different history";
      }
    }
  }

  std::set<std::string> proposed;
  std::map<GroupId, std::vector<std::string>> acknowledged;

 private:
  void ProposeNext(NodeId id, GroupId group) {
    const std::string command = "g" + std::to_string(group) + "-" + std::to_string(next_++);
    proposed.insert(command);
    host(id)->Propose(group, command, [this, command, group](Result<std::string> result) {
      if (result.ok()) acknowledged[group].push_back(command);
    });
  }

  uint64_t next_ = 0;
};

// 60 seeds in make test; STRATA_REPLICATION_SEEDS=N for a longer run.
int SeedsToRun() {
  const char* seeds = std::getenv("STRATA_REPLICATION_SEEDS");
  return seeds != nullptr ? std::atoi(seeds) : 60;
}

TEST(RaftHostTest, NothingAcknowledgedIsLostThroughCrashesAndTornWrites) {
  const int seeds = SeedsToRun();
  int torn = 0, acknowledged = 0, compactions = 0, restored = 0, reads = 0, rewrites = 0,
      rewrites_skipped = 0;
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
      rewrites += static_cast<int>(cluster.host(id)->stats().log.rewrites);
      rewrites_skipped += static_cast<int>(cluster.host(id)->stats().log.rewrites_skipped);
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
  EXPECT_GT(rewrites, seeds);
  std::cout << "acknowledged " << acknowledged << ", crashes mid-write " << torn << ", compactions "
            << compactions << ", snapshots restored " << restored << ", reads " << reads
            << ", log rewrites " << rewrites << " (postponed " << rewrites_skipped << ")\n";
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
  // The leader's snapshot is in its file alone: what node 4 was sent was
  // read from there, chunk by chunk.
  const raft::Raft& leading = *cluster.host(leader)->raft().group(1);
  ASSERT_GT(leading.snapshot().index, 0u);
  EXPECT_TRUE(leading.snapshot().data.empty());
  EXPECT_GT(leading.snapshot_bytes(), 0u);
  EXPECT_EQ(cluster.host(leader)->stats().log.snapshot_reads_failed, 0u);
  // Node 4 keeps the snapshot it was sent in its own file, not in memory.
  EXPECT_TRUE(cluster.host(4)->raft().group(1)->snapshot().data.empty());
  EXPECT_GT(cluster.host(4)->stats().log.snapshot_files, 0u);
  // It survives a restart with what it learned.
  cluster.Crash(4);
  cluster.Start(4);
  EXPECT_EQ(cluster.host(4)->raft().group(1)->voters(), (std::set<NodeId>{1, 2, 3, 4}));
}

// The first members are the log's first entries: a member added to a
// group whose log was never compacted (so no snapshot carries the members)
// learns them from the entries, rather than believing itself alone.
TEST(RaftHostTest, AMemberAddedBeforeAnySnapshotLearnsTheFirstMembersFromTheLog) {
  Cluster cluster(4, 1, 5);
  for (NodeId id = 1; id <= 4; ++id) ASSERT_TRUE(cluster.host(id)->RemoveGroup(1).ok());
  for (NodeId id = 1; id <= 3; ++id) ASSERT_TRUE(cluster.host(id)->CreateGroup(1, {3, 1, 2}).ok());
  ASSERT_TRUE(cluster.host(4)->CreateGroup(1, {}).ok());
  EXPECT_EQ(cluster.host(1)->raft().group(1)->log().committed(), 3u) << "one entry a member";
  cluster.Heal();
  NodeId leader = 0;
  for (NodeId id = 1; id <= 3; ++id) {
    if (cluster.host(id)->raft().group(1)->role() == RaftRole::kLeader) leader = id;
  }
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 5; ++i) cluster.Propose(leader, 1);  // fewer than a compaction needs
  Status added;
  cluster.host(leader)->ProposeConfChange(1, ConfChange{ConfChange::Kind::kAddVoter, 4},
                                          [&](Status status) { added = std::move(status); });
  cluster.Heal();
  EXPECT_TRUE(added.ok()) << added.message();
  EXPECT_EQ(cluster.host(4)->stats().snapshots_restored, 0u) << "caught up from entries";
  EXPECT_EQ(cluster.host(4)->raft().group(1)->voters(), (std::set<NodeId>{1, 2, 3, 4}));
  EXPECT_EQ(CommandsOf(cluster.host(4)->state(1)), CommandsOf(cluster.host(1)->state(1)));
  cluster.Crash(4);
  cluster.Start(4);
  EXPECT_EQ(cluster.host(4)->raft().group(1)->voters(), (std::set<NodeId>{1, 2, 3, 4}));
}

// A group started from a state (a backup restored) on its first members:
// it applies on from there; a first member started without it (its log
// ends before that state) is behind the others, never elected by them, and
// brought up by their snapshot; a member added later gets it too.
TEST(RaftHostTest, AGroupStartedFromAStateCarriesItToEveryMember) {
  Cluster cluster(4, 1, 7);
  for (NodeId id = 1; id <= 4; ++id) ASSERT_TRUE(cluster.host(id)->RemoveGroup(1).ok());
  const std::string restored = "backup-1\nbackup-2\n";
  for (NodeId id = 1; id <= 2; ++id) {
    ASSERT_TRUE(cluster.host(id)->CreateGroup(1, {1, 2, 3}, restored).ok());
  }
  ASSERT_TRUE(cluster.host(3)->CreateGroup(1, {1, 2, 3}).ok()) << "without the state";
  ASSERT_TRUE(cluster.host(4)->CreateGroup(1, {}).ok());
  EXPECT_EQ(CommandsOf(cluster.host(1)->state(1)),
            (std::vector<std::string>{"backup-1", "backup-2"}));
  cluster.Heal();
  NodeId leader = 0;
  for (NodeId id = 1; id <= 3; ++id) {
    if (cluster.host(id)->raft().group(1)->role() == RaftRole::kLeader) leader = id;
  }
  ASSERT_TRUE(leader == 1 || leader == 2) << "the member without the state led: " << leader;
  cluster.Propose(leader, 1);
  Status added;
  cluster.host(leader)->ProposeConfChange(1, ConfChange{ConfChange::Kind::kAddVoter, 4},
                                          [&](Status status) { added = std::move(status); });
  cluster.Heal();
  ASSERT_TRUE(added.ok()) << added.message();
  const std::vector<std::string>& first = CommandsOf(cluster.host(1)->state(1));
  ASSERT_GE(first.size(), 3u) << "the state, then what was proposed since";
  EXPECT_EQ(first[0], "backup-1");
  EXPECT_EQ(first[1], "backup-2");
  for (NodeId id = 2; id <= 4; ++id) {
    EXPECT_EQ(CommandsOf(cluster.host(id)->state(1)), first) << "node " << id;
  }
  EXPECT_GT(cluster.host(3)->stats().snapshots_restored, 0u);
  cluster.Crash(3);
  cluster.Start(3);
  // From its own disk, the state and what its log says was committed (a
  // commit index is a hint there, RaftLogStore::Stage); the rest from the
  // leader.
  const std::vector<std::string> recovered = CommandsOf(cluster.host(3)->state(1));
  ASSERT_GE(recovered.size(), 2u);
  EXPECT_TRUE(std::equal(recovered.begin(), recovered.end(), first.begin()));
  cluster.Heal();
  EXPECT_EQ(CommandsOf(cluster.host(3)->state(1)), CommandsOf(cluster.host(1)->state(1)));
}

}  // namespace
}  // namespace strata::replication
