// Peers: calls go to the node serving a shard, its leaseholder until a
// replica that does not lead the shard names the one that does; the call
// is then resent there within its own timeout, and later calls for the
// shard go there at once. A call follows a few hints at most, and none
// naming no peer or the node just called. A replica that cannot serve a
// call now (Unavailable: no leader known yet) passes it to the next
// replica after a pause, until the call's timeout; other errors end it.
#include "cluster/peers.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tests/cluster/capturing_transport.h"

namespace strata::cluster {
namespace peers_test {

using std::chrono::milliseconds;

class PeersTest : public ::testing::Test {
 protected:
  PeersTest()
      : map_(*ShardMap::Replicated({"n0", "n1", "n2"}, 3)),
        peers_("n0", {"n0", "n1", "n2"}, &map_, &clock_, &transport_, &timers_,
               milliseconds(1000)) {
    timers_.SetNow(Timers::Clock::time_point() + std::chrono::hours(1));
  }

  // Moves the time on by `ms`, running what is due.
  void Advance(int ms) {
    timers_.SetNow(timers_.now() + milliseconds(ms));
    timers_.RunDue(timers_.now());
    peers_.RunTimers(timers_.now());
  }
  // Answers the last request sent with `reply`.
  void Answer(const PeerReply& reply) {
    ASSERT_FALSE(transport_.sent.empty());
    peers_.OnReply(transport_.sent.back().msg_id, reply);
  }
  static PeerError NotLeader(std::string leader) {
    return PeerError{Status::Unavailable("not the leader"), std::move(leader)};
  }

  HybridLogicalClock clock_;
  Timers timers_;
  CapturingTransport transport_;
  ShardMap map_;
  Peers peers_;
};

TEST_F(PeersTest, ACallFollowsTheLeaderAReplicaNamesAndLaterCallsGoThere) {
  std::optional<bool> ok;
  peers_.Call(1, RecordCall{RecordOp::kPush, TxnId{7, 0}, Timestamp()},
              [&](const PeerReply* reply) { ok = ReplyAs<RecordReply>(reply) != nullptr; });
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].dest, "n1");
  EXPECT_EQ(transport_.sent[0].shard, ShardId{1});
  Answer(NotLeader("n2"));
  EXPECT_FALSE(ok) << "a redirect is not the call's answer";
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(transport_.sent[1].dest, "n2");
  EXPECT_EQ(transport_.sent[1].shard, ShardId{1});
  EXPECT_TRUE(std::holds_alternative<RecordCall>(transport_.sent[1].request));
  Answer(RecordReply{RecordOp::kPush, TxnStatus::kAborted, Timestamp()});
  EXPECT_EQ(ok, true);
  EXPECT_EQ(peers_.redirects(), 1u);
  EXPECT_EQ(peers_.NodeServing(1), "n2");
  EXPECT_EQ(peers_.NodeServing(2), "n2");  // its own leaseholder
  EXPECT_EQ(peers_.NodeServing(0), "n0");

  peers_.Call(1, RecordCall{RecordOp::kPush, TxnId{8, 0}, Timestamp()}, [](const PeerReply*) {});
  EXPECT_EQ(transport_.sent.back().dest, "n2");
}

TEST_F(PeersTest, HintsThatLeadNowhereAreNotFollowedAndTheCallEndsInTime) {
  for (const std::string& hint : {std::string("n1"), std::string("stranger")}) {
    std::optional<Status> failed;
    peers_.Call(1, RecordCall{RecordOp::kPush, TxnId{7, 0}, Timestamp()},
                [&](const PeerReply* reply) { failed = CallFailure(reply, "gave up"); });
    const auto began = timers_.now();
    // Every replica answers with the hint (the node just called, or no
    // peer): tried in turn, never the stranger, until the timeout.
    for (int i = 0; i < 200 && !failed; ++i) {
      const std::string& dest = transport_.sent.back().dest;
      EXPECT_NE(dest, "stranger");
      Answer(NotLeader(hint == "stranger" ? hint : dest));
      Advance(10);
    }
    ASSERT_TRUE(failed.has_value()) << hint;
    EXPECT_EQ(failed->code(), StatusCode::kUnavailable);
    EXPECT_LE(timers_.now() - began, milliseconds(1100)) << hint;
  }
  EXPECT_EQ(peers_.NodeServing(1), "n1");
  EXPECT_EQ(peers_.redirects(), 0u);

  // Two replicas naming each other: a few hops, then retries until the
  // timeout, no more hops.
  std::optional<Status> failed;
  peers_.Call(1, RecordCall{RecordOp::kPush, TxnId{9, 0}, Timestamp()},
              [&](const PeerReply* reply) { failed = CallFailure(reply, "gave up"); });
  for (int i = 0; i < 200 && !failed; ++i) {
    Answer(NotLeader(transport_.sent.back().dest == "n1" ? "n2" : "n1"));
    Advance(10);
  }
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(peers_.redirects(), 3u);
}

TEST_F(PeersTest, AReplicaWithNoLeaderPassesTheCallToTheNextAfterAPause) {
  std::optional<bool> ok;
  peers_.Call(1, RecordCall{RecordOp::kPush, TxnId{7, 0}, Timestamp()},
              [&](const PeerReply* reply) { ok = ReplyAs<RecordReply>(reply) != nullptr; });
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].dest, "n1");
  Answer(PeerError{Status::Unavailable("no leader known yet")});
  EXPECT_FALSE(ok.has_value()) << "not the call's answer while it has time";
  EXPECT_EQ(transport_.sent.size(), 1u) << "not at once: after a pause";
  Advance(25);
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(transport_.sent[1].dest, "n2");
  EXPECT_TRUE(std::holds_alternative<RecordCall>(transport_.sent[1].request));
  Answer(RecordReply{RecordOp::kPush, TxnStatus::kAborted, Timestamp()});
  EXPECT_EQ(ok, true);
  EXPECT_EQ(peers_.retries(), 1u);

  // Another refusal ends the call at once.
  std::optional<Status> failed;
  peers_.Call(1, RecordCall{RecordOp::kPush, TxnId{8, 0}, Timestamp()},
              [&](const PeerReply* reply) { failed = CallFailure(reply, "gave up"); });
  Answer(PeerError{Status::InvalidArgument("no such record")});
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(peers_.retries(), 1u);
}

TEST_F(PeersTest, AReadHereFirstGoesToThisNodesReplicaAndOnToTheLeaderIfItIsBehind) {
  const ShardRead read{Timestamp(100), {"k"}, std::nullopt, 0};
  // Served here: the shard's leader stays the one it was (n1, its
  // leaseholder), however often this node's replica answers.
  for (int i = 0; i < 2; ++i) {
    std::optional<bool> ok;
    peers_.CallHereFirst(
        1, read, [&](const PeerReply* reply) { ok = ReplyAs<ShardReadReply>(reply) != nullptr; });
    ASSERT_EQ(transport_.sent.back().dest, "n0");
    EXPECT_EQ(transport_.sent.back().shard, ShardId{1});
    Answer(ShardReadReply{});
    EXPECT_EQ(ok, true);
  }
  EXPECT_EQ(peers_.reads_here(), 2u);
  EXPECT_EQ(peers_.NodeServing(1), "n1") << "a follower's answer names no leader";

  // Behind the snapshot here: it names the leader, where the read goes.
  std::optional<bool> ok;
  peers_.CallHereFirst(
      1, read, [&](const PeerReply* reply) { ok = ReplyAs<ShardReadReply>(reply) != nullptr; });
  Answer(NotLeader("n2"));
  EXPECT_FALSE(ok.has_value());
  ASSERT_EQ(transport_.sent.back().dest, "n2");
  EXPECT_TRUE(std::holds_alternative<ShardRead>(transport_.sent.back().request));
  Answer(ShardReadReply{});
  EXPECT_EQ(ok, true);
  EXPECT_EQ(peers_.reads_passed_on(), 1u);

  // A refusal of what it asks ends it here: the leader would refuse alike.
  std::optional<Status> failed;
  const size_t sent = transport_.sent.size();
  peers_.CallHereFirst(1, read,
                       [&](const PeerReply* reply) { failed = CallFailure(reply, "gave up"); });
  Answer(PeerError{Status::Compacted("compacted")});
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->code(), StatusCode::kCompacted);
  EXPECT_EQ(transport_.sent.size(), sent + 1);
}

TEST(PeersReplicasTest, AReadHereFirstOfAShardWithNoReplicaHereGoesToItsNode) {
  HybridLogicalClock clock;
  Timers timers;
  CapturingTransport transport;
  const ShardMap map = *ShardMap::Replicated({"n0", "n1", "n2"}, 2);  // shard 1: n1, n2
  Peers peers("n0", {"n0", "n1", "n2"}, &map, &clock, &transport, &timers, milliseconds(1000));
  EXPECT_FALSE(peers.HoldsReplica(1));
  EXPECT_TRUE(peers.HoldsReplica(0));
  peers.CallHereFirst(1, ShardRead{Timestamp(1), {"k"}, std::nullopt, 0}, [](const PeerReply*) {});
  ASSERT_EQ(transport.sent.size(), 1u);
  EXPECT_EQ(transport.sent[0].dest, "n1");
}

// A shard with several replicas: a call its first target does not answer
// is resent to the others in turn, and their answers count; the replica
// that answered gets the shard's next calls first.
TEST(PeersReplicasTest, ResendsTryEveryReplicaInTurn) {
  HybridLogicalClock clock;
  Timers timers;
  timers.SetNow(Timers::Clock::time_point() + std::chrono::hours(1));
  CapturingTransport transport;
  ShardMap map = *ShardMap::Replicated({"n0", "n1", "n2"}, 3);
  Peers peers("n0", {"n0", "n1", "n2"}, &map, &clock, &transport, &timers, milliseconds(5000));
  std::optional<bool> answered;
  peers.Call(1, RecordCall{RecordOp::kPush, TxnId{7, 0}, Timestamp()},
             [&](const PeerReply* reply) { answered = reply != nullptr; });
  for (int i = 0; i < 40; ++i) {  // 2 s of the call's 5
    timers.SetNow(timers.now() + milliseconds(50));
    peers.RunTimers(timers.now());
  }
  std::vector<std::string> dests;
  for (const auto& sent : transport.sent) {
    dests.push_back(sent.dest);
    EXPECT_EQ(sent.shard, ShardId{1});
  }
  ASSERT_GE(dests.size(), 4u);
  EXPECT_EQ((std::vector<std::string>(dests.begin(), dests.begin() + 4)),
            (std::vector<std::string>{"n1", "n2", "n0", "n1"}));
  // n2's copy answers the call.
  peers.OnReply(transport.sent[1].msg_id,
                RecordReply{RecordOp::kPush, TxnStatus::kPending, Timestamp()});
  EXPECT_EQ(answered, true);
  EXPECT_EQ(peers.NodeServing(1), "n2");
  const size_t sent = transport.sent.size();
  peers.Call(1, RecordCall{RecordOp::kPush, TxnId{8, 0}, Timestamp()}, [](const PeerReply*) {});
  ASSERT_EQ(transport.sent.size(), sent + 1);
  EXPECT_EQ(transport.sent.back().dest, "n2");
}

}  // namespace peers_test
}  // namespace strata::cluster
