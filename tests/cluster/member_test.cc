// Member: what it does with what other nodes send. The HLC receive rule
// (a request stamped too far ahead is refused, anything else moves the
// clock), dispatch to the shard server, forwards run by the front end's
// handler, compaction capped at the low-water mark, and the low-water mark
// built from reports and broadcast on a timer.
#include "cluster/member.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/cluster/capturing_transport.h"

namespace strata::cluster {
namespace member_test {

using std::chrono::milliseconds;
using HLC = HybridLogicalClock;
const Member::Clock::time_point kT0 = Member::Clock::time_point() + std::chrono::hours(1);

class MemberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MemberOptions options;
    options.low_water_mark_interval = milliseconds(100);
    Result<std::unique_ptr<Member>> created = Member::Create(
        "n0", {"n0", "n1"}, options, &store_, /*persist=*/false, Timestamp(), &transport_,
        [this](const std::string& request, ShardServer::Respond respond) {
          forwarded_.push_back(request);
          if (hold_forwards_) return held_.push_back(std::move(respond));
          respond(ForwardReply{"{\"type\":\"ok\"}"});
        },
        [this](Timestamp horizon) {
          compacted_at_ = horizon;
          return CompactResult{horizon, 0, 0, 0};
        },
        kT0);
    ASSERT_TRUE(created.ok()) << created.status().message();
    member_ = std::move(*created);
  }

  PeerReply Ask(PeerRequest request, std::optional<Timestamp> clock,
                std::optional<ShardId> shard = std::nullopt) {
    std::optional<PeerReply> reply;
    member_->OnRequest("n1", clock, shard, std::move(request), [&](PeerReply r) { reply = r; });
    EXPECT_TRUE(reply);
    return reply.value_or(PeerError{Status::IoError("no reply")});
  }

  MvccStore store_;
  CapturingTransport transport_;
  std::unique_ptr<Member> member_;
  std::vector<std::string> forwarded_;
  bool hold_forwards_ = false;  // answer forwards later, from held_
  std::vector<ShardServer::Respond> held_;
  std::optional<Timestamp> compacted_at_;
};

TEST_F(MemberTest, RefusesNodeListsItCannotServe) {
  auto create = [&](std::string self, std::vector<std::string> nodes) {
    return Member::Create(std::move(self), std::move(nodes), {}, &store_, false, Timestamp(),
                          &transport_, nullptr, nullptr, kT0)
        .status()
        .code();
  };
  EXPECT_EQ(create("n9", {"n0", "n1"}), StatusCode::kInvalidArgument);
  EXPECT_EQ(create("n0", {"n0", "n0"}), StatusCode::kInvalidArgument);
  std::vector<std::string> many;
  for (int i = 0; i < 33; ++i) many.push_back("n" + std::to_string(i));
  EXPECT_EQ(create("n0", many), StatusCode::kInvalidArgument);
}

TEST_F(MemberTest, TheReceiveRuleMovesTheClockOrRefuses) {
  const Timestamp ahead = HLC::Make(HLC::SystemMillis() + 100, 7);
  EXPECT_TRUE(std::holds_alternative<ShardReadReply>(
      Ask(ShardRead{Timestamp(1), {"k"}, std::nullopt, 0}, ahead)));
  EXPECT_GE(member_->LastTimestamp(), ahead);
  const Timestamp far = HLC::Make(HLC::SystemMillis() + 60'000, 0);
  const PeerReply refused = Ask(ShardRead{Timestamp(1), {"k"}, std::nullopt, 0}, far);
  ASSERT_TRUE(std::holds_alternative<PeerError>(refused));
  EXPECT_EQ(std::get<PeerError>(refused).status.code(), StatusCode::kUnavailable);
  EXPECT_LT(member_->LastTimestamp(), far);
}

// A request names the shard it is for: this node's (n0 serves shard 0)
// is served, another is refused as one this node holds no replica of, and
// one naming none is this node's (senders that name no shard).
TEST_F(MemberTest, ARequestForAShardThisNodeDoesNotHoldIsRefused) {
  const ShardRead read{Timestamp(1), {"k"}, std::nullopt, 0};
  EXPECT_TRUE(std::holds_alternative<ShardReadReply>(Ask(read, std::nullopt, ShardId{0})));
  EXPECT_TRUE(std::holds_alternative<ShardReadReply>(Ask(read, std::nullopt)));
  const PeerReply refused = Ask(read, std::nullopt, ShardId{1});
  ASSERT_TRUE(std::holds_alternative<PeerError>(refused));
  EXPECT_EQ(std::get<PeerError>(refused).status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(std::get<PeerError>(refused).status.message(), "node n0 holds no replica of shard 1");
}

// Another shard served here (as a replica of its group would be): the
// requests naming it reach its server, its pending intents hold back the
// low-water mark, and it goes when removed.
TEST_F(MemberTest, RequestsForAnotherShardServedHereReachItsServer) {
  MvccStore other_store;
  HybridLogicalClock other_clock;
  Timers other_timers;
  other_timers.SetNow(kT0);
  CapturingTransport other_transport;
  ShardMap map = *ShardMap::OnePerNode({"n0", "n1"});
  Peers other_peers("n0", {"n0", "n1"}, &map, &other_clock, &other_transport, &other_timers,
                    milliseconds(5000));
  auto server = ShardServer::Create(1, 2, &other_store, &other_clock, &other_peers, &other_timers,
                                    /*persist=*/false, ShardServerOptions());
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(member_->AddShardServer(std::move(*server)).ok());
  EXPECT_EQ(member_->ShardsServed(), (std::vector<ShardId>{0, 1}));
  auto again = ShardServer::Create(0, 2, &other_store, &other_clock, &other_peers, &other_timers,
                                   false, ShardServerOptions());
  EXPECT_EQ(member_->AddShardServer(std::move(*again)).code(), StatusCode::kInvalidArgument);

  PrepareRequest request;
  request.txn = TxnId{other_clock.Next()->value(), 1};
  request.start = other_clock.Last();
  request.isolation = Isolation::kSnapshot;
  request.primary = 1;
  request.writes = {{"k", "v"}};
  const PeerReply prepared =
      Ask(ShardPrepare{request, {1}}, HybridLogicalClock::Make(HLC::SystemMillis(), 0), 1);
  ASSERT_TRUE(std::holds_alternative<PrepareReply>(prepared));
  EXPECT_EQ(other_store.GetStats().keys, 0u);  // an intent, not a version
  const Timestamp at = std::get<PrepareReply>(prepared).prepare_timestamp;
  // With this node's clock well past it, the low-water mark stops below
  // the other shard's pending prepare, and passes it once it is resolved.
  Ask(ShardRead{Timestamp(1), {"k"}, std::nullopt, 0},
      HybridLogicalClock::Make(HLC::SystemMillis() + 100, 0));
  ASSERT_GT(member_->LastTimestamp(), at);
  member_->OnRequest("n1", std::nullopt, std::nullopt, LowWaterMarkReport{Timestamp::Max()},
                     [](PeerReply) {});
  ASSERT_TRUE(member_->LowWaterMark().has_value());
  EXPECT_LT(*member_->LowWaterMark(), at);
  ASSERT_TRUE(std::holds_alternative<ResolveReply>(
      Ask(ShardResolve{request.txn, TxnStatus::kAborted, Timestamp()}, std::nullopt, 1)));
  EXPECT_GE(*member_->LowWaterMark(), at);
  const PeerReply compact = Ask(RawCompact{Timestamp(1)}, std::nullopt, 1);
  ASSERT_TRUE(std::holds_alternative<PeerError>(compact));
  EXPECT_FALSE(compacted_at_.has_value()) << "shard 1's compaction ran on this node's store";

  member_->RemoveShardServer(1);
  EXPECT_EQ(member_->ShardsServed(), (std::vector<ShardId>{0}));
  EXPECT_TRUE(std::holds_alternative<PeerError>(
      Ask(ShardRead{at, {"k"}, std::nullopt, 0}, std::nullopt, 1)));
}

TEST_F(MemberTest, ForwardsRunTheFrontEndsHandler) {
  const PeerReply reply = Ask(Forward{"{\"type\":\"mvcc_get\"}"}, std::nullopt);
  EXPECT_EQ(std::get<ForwardReply>(reply).reply, "{\"type\":\"ok\"}");
  EXPECT_EQ(forwarded_, std::vector<std::string>{"{\"type\":\"mvcc_get\"}"});
}

TEST_F(MemberTest, AResentForwardRunsOnceAndEveryCopyGetsItsAnswer) {
  const Timestamp now = HLC::Make(HLC::SystemMillis(), 0);
  const uint64_t first = ForwardedCalls::IdAt(HLC::SystemMillis(), 0);
  // Two copies while the first still runs, one after: one run, three answers.
  hold_forwards_ = true;
  std::vector<PeerReply> replies;
  auto send = [&](uint64_t id) {
    member_->OnRequest("n1", now, std::nullopt, Forward{"{\"type\":\"mvcc_put\"}", id},
                       [&](PeerReply r) { replies.push_back(r); });
  };
  send(first);
  send(first);
  EXPECT_EQ(forwarded_.size(), 1u);
  EXPECT_TRUE(replies.empty());
  ASSERT_EQ(held_.size(), 1u);
  held_[0](ForwardReply{"first"});
  ASSERT_EQ(replies.size(), 2u);
  send(first);
  ASSERT_EQ(replies.size(), 3u);
  for (const PeerReply& r : replies) EXPECT_EQ(std::get<ForwardReply>(r).reply, "first");
  EXPECT_EQ(forwarded_.size(), 1u);
  // Another id, or the same id from another sender, is another forward.
  send(first + 1);
  member_->OnRequest("n0", now, std::nullopt, Forward{"{}", first}, [](PeerReply) {});
  EXPECT_EQ(forwarded_.size(), 3u);
  EXPECT_EQ(member_->forwarded().duplicates(), 2u);
}

TEST_F(MemberTest, CompactionStopsAtTheLowWaterMarkWhichNeedsEveryReport) {
  // n1 has not reported: the mark is unknown, so nothing is collected.
  EXPECT_FALSE(member_->LowWaterMark());
  Ask(RawCompact{Timestamp::Max()}, std::nullopt);
  EXPECT_EQ(compacted_at_, Timestamp(0));
  member_->coordinator().FreshTimestamp();  // this node's own snapshot is now well past 1000
  member_->OnRequest("n1", std::nullopt, std::nullopt, LowWaterMarkReport{Timestamp(1000)},
                     [](PeerReply) { ADD_FAILURE() << "a one-way message is not answered"; });
  ASSERT_TRUE(member_->LowWaterMark());
  EXPECT_EQ(*member_->LowWaterMark(), Timestamp(1000));
  EXPECT_EQ(member_->LowWaterMarkHolder(), "n1");
  Ask(RawCompact{Timestamp::Max()}, std::nullopt);
  EXPECT_EQ(compacted_at_, Timestamp(1000));
  Ask(RawCompact{Timestamp(10)}, std::nullopt);
  EXPECT_EQ(compacted_at_, Timestamp(10)) << "below the mark, as asked";
}

TEST_F(MemberTest, BroadcastsItsOldestSnapshotOnATimer) {
  member_->RunTimers(kT0);
  EXPECT_TRUE(transport_.sent.empty());
  member_->RunTimers(kT0 + milliseconds(100));
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].dest, "n1");
  const auto& report = std::get<LowWaterMarkReport>(transport_.sent[0].request);
  EXPECT_GT(report.oldest_snapshot, Timestamp(0)) << "an idle node's report follows time";
  // A snapshot held by a transaction holds the report back.
  const Timestamp held = member_->coordinator().HoldSnapshot();
  member_->RunTimers(kT0 + milliseconds(200));
  EXPECT_EQ(std::get<LowWaterMarkReport>(transport_.sent.back().request).oldest_snapshot, held);
}

TEST_F(MemberTest, ANodeThatJoinsIsWaitedForAndOneThatLeavesIsNot) {
  member_->coordinator().FreshTimestamp();  // this node's own snapshot is well past 1000
  member_->RunTimers(kT0);
  member_->OnRequest("n1", std::nullopt, std::nullopt, LowWaterMarkReport{Timestamp(1000)},
                     [](PeerReply) {});
  ASSERT_TRUE(member_->LowWaterMark());
  // Not in the cluster yet: its report counts for nothing.
  member_->OnRequest("n2", std::nullopt, std::nullopt, LowWaterMarkReport{Timestamp(5)},
                     [](PeerReply) {});
  EXPECT_EQ(*member_->LowWaterMark(), Timestamp(1000));
  member_->JoinNode("n2");
  EXPECT_TRUE(member_->IsPeer("n2"));
  EXPECT_FALSE(member_->LowWaterMark()) << "n2 may hold an older snapshot: wait for its report";
  member_->OnRequest("n2", std::nullopt, std::nullopt, LowWaterMarkReport{Timestamp(900)},
                     [](PeerReply) {});
  EXPECT_EQ(*member_->LowWaterMark(), Timestamp(900));
  member_->RunTimers(kT0 + milliseconds(100));
  std::vector<std::string> told;
  for (const auto& sent : transport_.sent) told.push_back(sent.dest);
  EXPECT_EQ(told, (std::vector<std::string>{"n1", "n2"}));
  // Gone: no longer waited for nor told.
  member_->LeaveNode("n2");
  EXPECT_FALSE(member_->IsPeer("n2"));
  EXPECT_EQ(*member_->LowWaterMark(), Timestamp(1000));
  transport_.sent.clear();
  member_->RunTimers(kT0 + milliseconds(200));
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].dest, "n1");
}

TEST_F(MemberTest, NodesPastTheShardsNeedReplicatedShards) {
  MemberOptions options;
  options.shard_count = 2;
  auto created = Member::Create("n2", {"n0", "n1", "n2"}, options, &store_, false, Timestamp(),
                                &transport_, nullptr, nullptr, kT0);
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument)
      << "one replica a shard: a node with no shard would serve nothing";
  options.shard_count = 4;
  created = Member::Create("n0", {"n0", "n1", "n2"}, options, &store_, false, Timestamp(),
                           &transport_, nullptr, nullptr, kT0);
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument) << "more shards than nodes";
}

}  // namespace member_test
}  // namespace strata::cluster
