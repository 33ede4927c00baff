// Membership changes as etcd's Cluster service asks for them: the bytes a
// member hands its leader (every field back, damage refused), the leader's
// check against the group's members (etcd's errors, same code and text),
// its answers, and peer URLs.
#include "server/member_change.h"

#include <gtest/gtest.h>

#include "raft/raft_group.h"

namespace strata::server {
namespace {

using raft::ConfChange;
using service::ErrorCode;

TEST(MemberChangeTest, ChangesRoundTripAndDamageIsRefused) {
  for (const MemberChange& change :
       {MemberChange{MemberChange::Kind::kAdd, 0xfedcba9876543210, "http://10.0.0.4:2380"},
        MemberChange{MemberChange::Kind::kAddLearner, 7, "https://h:1"},
        MemberChange{MemberChange::Kind::kRemove, 1, ""},
        MemberChange{MemberChange::Kind::kPromote, 2, ""}}) {
    const std::string bytes = EncodeMemberChange(change);
    EXPECT_EQ(bytes.front(), kMemberChangeByte);
    EXPECT_EQ(DecodeMemberChange(bytes), change);
    for (size_t cut = 0; cut + change.peer_url.size() < bytes.size(); ++cut) {
      EXPECT_EQ(DecodeMemberChange(bytes.substr(0, cut)), std::nullopt) << cut;
    }
  }
  EXPECT_EQ(DecodeMemberChange("mx7 "), std::nullopt) << "no such kind";
  EXPECT_EQ(DecodeMemberChange("mr0 "), std::nullopt) << "no member 0";
  EXPECT_EQ(DecodeMemberChange("mrzz "), std::nullopt);
  EXPECT_EQ(DecodeMemberChange("kr7 "), std::nullopt) << "a lease query";
}

TEST(MemberChangeTest, PeerUrlsNeedASchemeAHostAndAPort) {
  EXPECT_EQ(PeerHostPort("http://10.0.0.1:2380"), "10.0.0.1:2380");
  EXPECT_EQ(PeerHostPort("https://m1.example:2380/"), "m1.example:2380");
  EXPECT_EQ(PeerHostPort("http://[::1]:2380"), "[::1]:2380");
  for (const char* bad : {"", "10.0.0.1:2380", "http://10.0.0.1", "http://:2380",
                          "http://h:", "http://h:23a0", "unix://h:1", "http://h:1/path"}) {
    EXPECT_EQ(PeerHostPort(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(PeerHostPort("http://" + std::string(kMaxPeerUrlBytes, 'h') + ":1"), std::nullopt)
      << "a client's URL is bounded";
}

TEST(MemberChangeTest, TheLeaderChecksAChangeAgainstTheMembers) {
  // Nodes 1-3 vote; 4 and 5 wait to be added.
  raft::RaftGroup group(5, {}, {}, /*voters=*/3);
  ASSERT_TRUE(group.Elect(1));
  ASSERT_TRUE(group.node(1).Propose("a").has_value());
  group.DriveAll();
  group.DeliverAll();
  group.DriveAll();
  const raft::Raft& leader = group.node(1);

  auto planned = PlanMemberChange({MemberChange::Kind::kAddLearner, 4, "http://h4:1"}, leader);
  ASSERT_TRUE(planned.ok()) << planned.error().message;
  EXPECT_EQ(planned.value(), (ConfChange{ConfChange::Kind::kAddLearner, 4, "http://h4:1"}));
  planned = PlanMemberChange({MemberChange::Kind::kAdd, 2, "http://h2:1"}, leader);
  ASSERT_FALSE(planned.ok());
  EXPECT_EQ(planned.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(planned.error().message, "etcdserver: Peer URLs already exists");
  planned = PlanMemberChange({MemberChange::Kind::kRemove, 9, ""}, leader);
  ASSERT_FALSE(planned.ok());
  EXPECT_EQ(planned.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(planned.error().message, "etcdserver: member not found");
  planned = PlanMemberChange({MemberChange::Kind::kPromote, 2, ""}, leader);
  ASSERT_FALSE(planned.ok());
  EXPECT_EQ(planned.error().message, "etcdserver: can only promote a learner member");
  planned = PlanMemberChange({MemberChange::Kind::kRemove, 3, ""}, leader);
  ASSERT_TRUE(planned.ok());
  EXPECT_EQ(planned.value(), (ConfChange{ConfChange::Kind::kRemove, 3}));

  // A learner added and left behind (its messages lost) is not promoted;
  // caught up, it is; a second learner is refused.
  ASSERT_TRUE(group.node(1).ProposeConfChange({ConfChange::Kind::kAddLearner, 4}).has_value());
  group.DriveAll();
  group.DeliverAll([](const raft::Message& m) { return m.to != 4 && m.from != 4; });
  group.DriveAll();
  group.DeliverAll([](const raft::Message& m) { return m.to != 4 && m.from != 4; });
  ASSERT_EQ(group.node(1).learners(), (std::set<raft::NodeId>{4}));
  planned = PlanMemberChange({MemberChange::Kind::kPromote, 4, ""}, group.node(1));
  ASSERT_FALSE(planned.ok());
  EXPECT_EQ(planned.error().message,
            "etcdserver: can only promote a learner member which is in sync with leader");
  planned = PlanMemberChange({MemberChange::Kind::kAddLearner, 5, "http://h5:1"}, group.node(1));
  ASSERT_FALSE(planned.ok());
  EXPECT_EQ(planned.error().message, "etcdserver: too many learner members in cluster");
  for (int i = 0; i < 5; ++i) {
    group.Tick(1);
    group.DriveAll();
    group.DeliverAll();
  }
  group.DriveAll();
  planned = PlanMemberChange({MemberChange::Kind::kPromote, 4, ""}, group.node(1));
  ASSERT_TRUE(planned.ok()) << planned.error().message;
  EXPECT_EQ(planned.value(), (ConfChange{ConfChange::Kind::kAddVoter, 4}));
}

// etcd's strict reconfiguration check: a voter added or removed must leave
// a majority of voters that answer the leader.
TEST(MemberChangeTest, AChangeThatWouldCostTheMajorityIsRefused) {
  raft::RaftGroup group(4, {}, {}, /*voters=*/3);
  ASSERT_TRUE(group.Elect(1));
  ASSERT_TRUE(group.node(1).Propose("a").has_value());
  group.DriveAll();
  group.DeliverAll();
  group.DriveAll();
  const MemberChange add_voter{MemberChange::Kind::kAdd, 4, "http://h4:1"};
  EXPECT_TRUE(PlanMemberChange(add_voter, group.node(1)).ok()) << "all three answer";
  EXPECT_TRUE(PlanMemberChange({MemberChange::Kind::kRemove, 2, ""}, group.node(1)).ok());

  // Node 3 stops answering for an election timeout; 2 still does.
  group.Crash(3);
  for (int i = 0; i < 12; ++i) {
    group.Tick(1);
    group.DriveAll();
    group.DeliverAll();
  }
  const raft::Raft& leader = group.node(1);
  ASSERT_EQ(leader.role(), raft::RaftRole::kLeader);
  EXPECT_TRUE(leader.Active(2));
  EXPECT_FALSE(leader.Active(3));
  const std::string refusal =
      "etcdserver: re-configuration failed due to not enough started members";
  auto planned = PlanMemberChange(add_voter, leader);
  ASSERT_FALSE(planned.ok()) << "two of four would not be a majority";
  EXPECT_EQ(planned.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(planned.error().message, refusal);
  planned = PlanMemberChange({MemberChange::Kind::kRemove, 2, ""}, leader);
  ASSERT_FALSE(planned.ok()) << "one of two would not be a majority";
  EXPECT_EQ(planned.error().message, refusal);
  EXPECT_TRUE(PlanMemberChange({MemberChange::Kind::kRemove, 3, ""}, leader).ok())
      << "the one that does not answer may go";
  EXPECT_TRUE(PlanMemberChange({MemberChange::Kind::kAddLearner, 4, "http://h4:1"}, leader).ok())
      << "a learner does not count";
}

TEST(MemberChangeTest, AnswersCarryTheMembersOrEtcdsError) {
  const std::vector<MemberInfo> members = {
      {0xfedcba9876543210, "m0", "http://10.0.0.1:2380", {"http://10.0.0.1:2379"}, false},
      {5, "", "http://10.0.0.5:2380", {}, true}};
  auto decoded = DecodeMemberChangeAnswer(EncodeMemberChangeDone(members));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), members);
  const service::ServiceError error{ErrorCode::kNotFound, "etcdserver: member not found"};
  decoded = DecodeMemberChangeAnswer(EncodeMemberChangeError(error));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, error.code);
  EXPECT_EQ(decoded.error().message, error.message);
  for (const std::string& bad :
       {std::string(), std::string(1, '\x7f') + "what", std::string("+\xff\xff\xff")}) {
    decoded = DecodeMemberChangeAnswer(bad);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().code, ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace strata::server
