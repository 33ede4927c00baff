// Replica changes, planned against a Raft group in memory: a member whose
// batches carry another incarnation than the group holds is removed (not
// while that would cost the majority, not from a group of two), added back
// as a learner, and promoted only once it holds every committed entry; a
// healthy group needs nothing; a group moves to a new placement adding
// and promoting first, removing last, its leader handing its place over
// before it leaves.
#include "cluster/replica_changes.h"

#include <gtest/gtest.h>

#include "raft/raft_group.h"

namespace strata::cluster {
namespace {

using raft::ConfChange;
using raft::NodeId;

// Elects node 1 of `group` and commits an entry of its term (Raft changes
// no members before).
void ElectFirst(raft::RaftGroup& group) {
  ASSERT_TRUE(group.Elect(1));
  ASSERT_TRUE(group.node(1).Propose("a").has_value());
  group.DriveAll();
  group.DeliverAll();
  group.DriveAll();
}

// Rounds of ticks, work and delivery (`pass` decides which messages arrive).
void RunRounds(raft::RaftGroup& group, int rounds,
               const std::function<bool(const raft::Message&)>& pass = nullptr) {
  for (int i = 0; i < rounds; ++i) {
    group.Tick(1);
    group.DriveAll();
    group.DeliverAll(pass);
  }
  group.DriveAll();
}

class ReplicaChangesTest : public ::testing::Test {
 protected:
  // The next membership change (a transfer of leadership fails the test).
  std::optional<ConfChange> Next(const raft::Raft& leader) {
    const std::optional<ReplicaStep> step = Step(leader);
    if (!step) return std::nullopt;
    EXPECT_EQ(step->transfer_to, raft::kNobody);
    return step->change;
  }
  std::optional<ReplicaStep> Step(const raft::Raft& leader) {
    return NextReplicaStep(
        leader, placement_,
        [this](NodeId node) -> std::optional<uint64_t> {
          auto it = registered_.find(node);
          if (it == registered_.end()) return std::nullopt;
          return it->second;
        },
        carried_);
  }

  std::vector<NodeId> placement_{1, 2, 3};
  std::map<NodeId, uint64_t> registered_{{1, 10}, {2, 20}, {3, 30}};
  std::map<NodeId, uint64_t> carried_{{2, 20}, {3, 30}};
};

TEST_F(ReplicaChangesTest, AMemberWithAReplacedDiskIsRemovedAddedBackAndPromotedOnceCaughtUp) {
  raft::RaftGroup group(3);
  ElectFirst(group);
  raft::Raft& leader = group.node(1);
  EXPECT_EQ(Next(leader), std::nullopt) << "every member as the group knows it";

  carried_[3] = 31;  // node 3 came back with another disk
  ASSERT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kRemove, 3}));
  // The leader applies it; the registry forgets node 3's incarnation.
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  RunRounds(group, 3);
  ASSERT_EQ(leader.voters(), (std::set<NodeId>{1, 2}));
  registered_.erase(3);
  EXPECT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kAddLearner, 3}));

  // Added back as a learner, cut off at first: not promoted while behind.
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  const auto cut_off = [](const raft::Message& m) { return m.to != 3 && m.from != 3; };
  RunRounds(group, 3, cut_off);
  ASSERT_EQ(leader.learners(), (std::set<NodeId>{3}));
  ASSERT_TRUE(leader.Propose("b").has_value());
  RunRounds(group, 3, cut_off);
  ASSERT_LT(leader.MatchOf(3), leader.log().committed());
  EXPECT_EQ(Next(leader), std::nullopt) << "a learner behind the commit index";
  // Caught up: promoted; then the group is whole again.
  RunRounds(group, 5);
  ASSERT_EQ(leader.MatchOf(3), leader.log().committed());
  ASSERT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kAddVoter, 3}));
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  RunRounds(group, 3);
  EXPECT_EQ(leader.voters(), (std::set<NodeId>{1, 2, 3}));
  registered_[3] = 31;
  EXPECT_EQ(Next(leader), std::nullopt);
}

TEST_F(ReplicaChangesTest, NoRemovalCostsTheMajorityOrLeavesOneVoter) {
  raft::RaftGroup group(3);
  ElectFirst(group);
  carried_[3] = 31;
  // Node 2 stops answering: removing 3 would leave one voter of two
  // answering, so it waits.
  group.Crash(2);
  RunRounds(group, 12);
  ASSERT_EQ(group.node(1).role(), raft::RaftRole::kLeader);
  EXPECT_EQ(Next(group.node(1)), std::nullopt);

  raft::RaftGroup pair(2);
  ElectFirst(pair);
  placement_ = {1, 2};
  carried_ = {{2, 21}};
  EXPECT_EQ(Next(pair.node(1)), std::nullopt) << "Raft keeps two voters";
}

TEST_F(ReplicaChangesTest, AGroupMovesToItsPlacementAddingFirstAndItsLeaderLeavesLast) {
  // Four nodes, the group on 1, 2, 3; placed on 4, 2, 3: node 4 replaces
  // node 1, which leads.
  raft::RaftGroup group(4, {}, {}, /*voters=*/3);
  ElectFirst(group);
  raft::Raft& leader = group.node(1);
  placement_ = {4, 2, 3};
  ASSERT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kAddLearner, 4}));
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  const auto cut_off = [](const raft::Message& m) { return m.to != 4 && m.from != 4; };
  RunRounds(group, 3, cut_off);
  ASSERT_EQ(leader.learners(), (std::set<NodeId>{4}));
  EXPECT_EQ(Next(leader), std::nullopt) << "a learner behind: neither promoted nor another added";
  RunRounds(group, 5);
  ASSERT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kAddVoter, 4}));
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  RunRounds(group, 3);
  ASSERT_EQ(leader.voters(), (std::set<NodeId>{1, 2, 3, 4}));
  // Every member placed votes: the leader, not placed, hands over first.
  const std::optional<ReplicaStep> step = Step(leader);
  ASSERT_TRUE(step.has_value());
  EXPECT_FALSE(step->change.has_value());
  EXPECT_NE(step->transfer_to, raft::kNobody);
  EXPECT_NE(std::find(placement_.begin(), placement_.end(), step->transfer_to), placement_.end());
  ASSERT_TRUE(leader.TransferLeadership(step->transfer_to));
  RunRounds(group, 5);
  raft::Raft& next = group.node(step->transfer_to);
  ASSERT_EQ(next.role(), raft::RaftRole::kLeader);
  ASSERT_EQ(Next(next), (ConfChange{ConfChange::Kind::kRemove, 1}));
  ASSERT_TRUE(next.ProposeConfChange(*Next(next)).has_value());
  RunRounds(group, 3);
  EXPECT_EQ(next.voters(), (std::set<NodeId>{2, 3, 4}));
  EXPECT_EQ(Next(next), std::nullopt) << "placed";
}

TEST_F(ReplicaChangesTest, ALearnerNoLongerPlacedIsRemovedAndNoVoterLeavesBeforeItsSuccessorVotes) {
  raft::RaftGroup group(5, {}, {}, /*voters=*/3);
  ElectFirst(group);
  raft::Raft& leader = group.node(1);
  placement_ = {1, 2, 4};
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  const auto cut_off = [](const raft::Message& m) { return m.to < 4 && m.from < 4; };
  RunRounds(group, 3, cut_off);
  ASSERT_EQ(leader.learners(), (std::set<NodeId>{4}));
  EXPECT_EQ(Next(leader), std::nullopt) << "node 3 stays until node 4 votes";
  // Placed elsewhere again before it caught up: the learner goes first.
  placement_ = {1, 2, 5};
  ASSERT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kRemove, 4}));
  ASSERT_TRUE(leader.ProposeConfChange(*Next(leader)).has_value());
  RunRounds(group, 3, cut_off);
  EXPECT_TRUE(leader.learners().empty());
  EXPECT_EQ(Next(leader), (ConfChange{ConfChange::Kind::kAddLearner, 5}));
}

}  // namespace
}  // namespace strata::cluster
