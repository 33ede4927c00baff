// A node's replicas as the groups' reports move them (ShardGroups, with
// a transport that records what it sends): a report from a group's leader
// that makes this node a learner starts a replica here and tells the
// member; one that neither names nor places it deletes the replica; older
// reports, reports of no shard, naming no node or not from the leader
// they name change nothing; the reports route the shard's calls.
#include "cluster/shard_groups.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cluster/shard_group_report.h"
#include "storage_test_support.h"

namespace strata::cluster {
namespace {

class ShardGroupsTest : public ::testing::Test {
 protected:
  void SetUp() override { Open({"n0", "n1", "n2", "n3"}, 0, dir_.path()); }

  void Open(std::vector<std::string> node_ids, size_t shard_count, const std::string& dir) {
    groups_.reset();
    ShardGroupsOptions options;
    options.self = "n0";
    options.node_ids = std::move(node_ids);
    options.shard_count = shard_count;
    options.replication_factor = 3;
    options.raft_dir = dir;
    options.send_batch = [](const std::string&, std::string, uint64_t) {};
    options.send_refusal = [](const std::string&, const std::string&) {};
    options.send_report = [](const std::string&, std::string) {};
    options.replica_added = [this](ShardId shard) { added_.push_back(shard); };
    options.replica_removed = [this](ShardId shard) { removed_.push_back(shard); };
    options.replicas_moved = [this](ShardId shard, std::vector<std::string> replicas) {
      moved_.emplace_back(shard, std::move(replicas));
    };
    Result<std::unique_ptr<ShardGroups>> opened = ShardGroups::Open(std::move(options));
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    groups_ = std::move(*opened);
  }

  // Shard 1's group (group 2) as its leader n1 (node 2) reports it.
  static std::string Report(raft::Index applied, std::set<raft::NodeId> voters,
                            std::set<raft::NodeId> learners, std::vector<raft::NodeId> placement,
                            raft::GroupId group = 2, raft::NodeId leader = 2) {
    return EncodeShardGroupReport(ShardGroupReport{group, applied, 3, leader, std::move(voters),
                                                   std::move(learners), std::move(placement)});
  }

  storage_testing::TempDir dir_;
  std::unique_ptr<ShardGroups> groups_;
  std::vector<ShardId> added_, removed_;
  std::vector<std::pair<ShardId, std::vector<std::string>>> moved_;
};

TEST_F(ShardGroupsTest, ReportsStartRouteAndDeleteReplicasAndOnlyNewerOnesFromTheirLeaderCount) {
  // Four nodes, three replicas: n0 holds shards 0, 2 and 3, not 1.
  EXPECT_EQ(groups_->ShardsHere(), (std::vector<ShardId>{0, 2, 3}));
  ASSERT_EQ(groups_->Groups().size(), 4u);
  EXPECT_EQ(groups_->Groups()[1].voters, (std::vector<std::string>{"n1", "n2", "n3"}))
      << "before any report, where the shard was first placed";

  // Not from the leader it names, of no shard, naming a node there is
  // not, or damaged: nothing.
  groups_->ReceiveReport("n3", Report(10, {2, 3, 4}, {1}, {1, 2, 3}));
  groups_->ReceiveReport("n1", Report(10, {2, 3, 4}, {1}, {1, 2, 3}, /*group=*/9));
  groups_->ReceiveReport("n1", Report(10, {2, 3, 9}, {1}, {1, 2, 3}));
  groups_->ReceiveReport("n1", Report(10, {2, 3, 4}, {1}, {1, 2, 9}));
  groups_->ReceiveReport("n1", "\x01\x02");
  EXPECT_TRUE(added_.empty());
  EXPECT_TRUE(moved_.empty());

  // n0 a learner of shard 1: its replica starts here; calls for the shard
  // go to its voters, the leader first.
  groups_->ReceiveReport("n1", Report(10, {2, 3, 4}, {1}, {1, 2, 3}));
  EXPECT_EQ(added_, (std::vector<ShardId>{1}));
  EXPECT_EQ(groups_->ShardsHere(), (std::vector<ShardId>{0, 1, 2, 3}));
  ASSERT_EQ(moved_.size(), 1u);
  EXPECT_EQ(moved_[0], (std::pair<ShardId, std::vector<std::string>>{
                           1, std::vector<std::string>{"n1", "n2", "n3"}}));
  EXPECT_EQ(groups_->Groups()[1].leader, "n1");
  EXPECT_EQ(groups_->Groups()[1].learners, (std::vector<std::string>{"n0"}));
  // Again, or older: nothing new.
  groups_->ReceiveReport("n1", Report(10, {2, 3, 4}, {1}, {1, 2, 3}));
  groups_->ReceiveReport("n1", Report(5, {2, 3, 4}, {}, {2, 3, 4}));
  EXPECT_EQ(added_.size(), 1u);
  EXPECT_TRUE(removed_.empty());
  EXPECT_EQ(moved_.size(), 1u);

  // Promoted, n3 removed: routing follows; the replica stays.
  groups_->ReceiveReport("n1", Report(20, {1, 2, 3}, {}, {1, 2, 3}));
  EXPECT_TRUE(removed_.empty());
  ASSERT_EQ(moved_.size(), 2u);
  EXPECT_EQ(moved_[1].second, (std::vector<std::string>{"n1", "n0", "n2"}));

  // Removed from the group but still placed here (taken back after a
  // disk was replaced): kept.
  groups_->ReceiveReport("n1", Report(30, {2, 3, 4}, {}, {1, 2, 3}));
  EXPECT_TRUE(removed_.empty());
  // Neither a member nor placed, as of an index it has not passed: deleted,
  // and an older report naming it a learner does not start it again.
  groups_->ReceiveReport("n1", Report(40, {2, 3, 4}, {}, {2, 3, 4}));
  EXPECT_EQ(removed_, (std::vector<ShardId>{1}));
  EXPECT_EQ(groups_->ShardsHere(), (std::vector<ShardId>{0, 2, 3}));
  groups_->ReceiveReport("n1", Report(35, {2, 3, 4}, {1}, {1, 2, 3}));
  EXPECT_EQ(added_.size(), 1u);
  const ShardGroups::ReplicaChangeStats& changes = groups_->changes();
  EXPECT_EQ(changes.started, 1u);
  EXPECT_EQ(changes.deleted, 1u);
}

TEST_F(ShardGroupsTest, NodesThatJoinAreNamedAndPlacedAndOnesGoneAreNot) {
  // Three shards on the first three of four nodes (n3 joined later).
  storage_testing::TempDir dir;
  Open({"n0", "n1", "n2", "n3"}, 3, dir.path());
  ASSERT_EQ(groups_->Groups().size(), 3u);
  EXPECT_EQ(groups_->ShardsHere(), (std::vector<ShardId>{0, 1, 2}));
  for (const ShardGroupView& group : groups_->Groups()) {
    EXPECT_EQ(std::count(group.voters.begin(), group.voters.end(), "n3"), 0) << group.shard;
  }
  // Node 5 is not known yet: its report is dropped; once it joins, taken.
  groups_->ReceiveReport("n1", Report(10, {2, 3, 5}, {}, {2, 3, 5}));
  EXPECT_TRUE(moved_.empty());
  groups_->UpdateNodes({"n0", "n1", "n2", "n3", "n4"}, {});
  groups_->ReceiveReport("n1", Report(10, {2, 3, 5}, {}, {2, 3, 5}));
  ASSERT_EQ(moved_.size(), 1u);
  EXPECT_EQ(moved_[0].second, (std::vector<std::string>{"n1", "n2", "n4"}));
  // A number keeps its name: a later list cannot rename it.
  groups_->UpdateNodes({"n0", "n1", "n2", "n3", "x"}, {});
  EXPECT_EQ(groups_->Groups()[1].voters, (std::vector<std::string>{"n1", "n2", "n4"}));
  // A node gone may not be placed; nor one never known.
  groups_->UpdateNodes({"n0", "n1", "n2", "n3", "n4"}, {"n4"});
  Status placed;
  groups_->Place(0, {"n0", "n4"}, [&](Status s) { placed = s; });
  EXPECT_EQ(placed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(placed.message().find("no node 'n4'"), std::string::npos) << placed.message();
  groups_->Place(0, {"n0", "n9"}, [&](Status s) { placed = s; });
  EXPECT_EQ(placed.code(), StatusCode::kInvalidArgument);
  groups_->Place(0, {"n0", "n3"}, [&](Status s) { placed = s; });
  EXPECT_EQ(placed.code(), StatusCode::kUnavailable) << "known: refused only as not led here";
  groups_.reset();  // before its directory goes
}

}  // namespace
}  // namespace strata::cluster
