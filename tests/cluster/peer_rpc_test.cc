// PeerRpc over a fake PeerTransport: resends with fresh message ids and
// backoff, completion by the first reply, late duplicates ignored, giving
// up at the deadline, and callbacks that start new calls.
#include "cluster/peer_rpc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace strata::cluster {
namespace peer_rpc_test {

using std::chrono::milliseconds;
using Clock = PeerRpc::Clock;

// Requests and replies told apart by a number: a record call on
// transaction `tag`, and a record reply with commit timestamp `tag`.
PeerRequest Request(uint64_t tag) { return RecordCall{RecordOp::kPush, TxnId{tag, 0}, {}}; }
uint64_t TagOf(const PeerRequest& request) { return std::get<RecordCall>(request).txn.stamp; }
PeerReply Reply(uint64_t tag) {
  return RecordReply{RecordOp::kPush, TxnStatus::kCommitted, Timestamp(tag)};
}
uint64_t TagOf(const PeerReply* reply) {
  return std::get<RecordReply>(*reply).commit_timestamp.value();
}

class FakeTransport final : public PeerTransport {
 public:
  struct Sent {
    std::string dest;
    uint64_t tag;
    Timestamp hlc;
    uint64_t msg_id;
    std::optional<ShardId> shard;
  };
  uint64_t Send(std::string_view dest, std::optional<ShardId> shard, const PeerRequest& request,
                Timestamp hlc) override {
    sent.push_back(Sent{std::string(dest), TagOf(request), hlc, next_id, shard});
    return next_id++;
  }
  std::vector<Sent> sent;
  uint64_t next_id = 100;
};

PeerRpc::CallOptions Options(int first, int max, int give_up) {
  PeerRpc::CallOptions o;
  o.first_retry = milliseconds(first);
  o.max_retry = milliseconds(max);
  o.give_up_after = milliseconds(give_up);
  return o;
}

TEST(PeerRpcTest, ResendsWithNewMsgIdsAndDoublingBackoff) {
  FakeTransport transport;
  PeerRpc rpc(&transport);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  int calls = 0;
  rpc.Call("n2", ShardId{4}, Request(5), Timestamp(7), Options(10, 40, 1000), t0,
           [&](const PeerReply*) { ++calls; });
  ASSERT_EQ(transport.sent.size(), 1u);
  EXPECT_EQ(transport.sent[0].dest, "n2");
  EXPECT_EQ(transport.sent[0].tag, 5u);
  EXPECT_EQ(transport.sent[0].hlc, Timestamp(7));
  EXPECT_EQ(rpc.RunTimers(t0 + milliseconds(9)), t0 + milliseconds(10));
  EXPECT_EQ(transport.sent.size(), 1u) << "resent too early";
  // Resends at 10, then +20, +40, +40 (capped).
  std::vector<int> expected_at = {10, 30, 70, 110, 150};
  for (int at : expected_at) {
    rpc.RunTimers(t0 + milliseconds(at - 1));
    const size_t before = transport.sent.size();
    rpc.RunTimers(t0 + milliseconds(at));
    EXPECT_EQ(transport.sent.size(), before + 1) << "no resend at " << at << " ms";
  }
  EXPECT_EQ(rpc.resends(), expected_at.size());
  // Every copy has its own msg_id, and the same content and shard.
  for (size_t i = 1; i < transport.sent.size(); ++i) {
    EXPECT_NE(transport.sent[i].msg_id, transport.sent[i - 1].msg_id);
    EXPECT_EQ(transport.sent[i].shard, ShardId{4});
    EXPECT_EQ(transport.sent[i].tag, 5u);
    EXPECT_EQ(transport.sent[i].hlc, Timestamp(7));
    EXPECT_EQ(transport.sent[i].dest, "n2");
  }
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(rpc.in_flight(), 1u);
}

TEST(PeerRpcTest, FirstReplyCompletesLaterCopiesAreIgnored) {
  FakeTransport transport;
  PeerRpc rpc(&transport);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  std::vector<uint64_t> got;
  rpc.Call("n2", std::nullopt, Request(1), Timestamp(), Options(10, 10, 1000), t0,
           [&](const PeerReply* reply) {
             ASSERT_NE(reply, nullptr);
             got.push_back(TagOf(reply));
           });
  rpc.RunTimers(t0 + milliseconds(10));
  rpc.RunTimers(t0 + milliseconds(20));
  ASSERT_EQ(transport.sent.size(), 3u);
  // A reply to the second copy completes the call.
  EXPECT_TRUE(rpc.OnReply(transport.sent[1].msg_id, Reply(2)));
  EXPECT_EQ(got, std::vector<uint64_t>{2});
  EXPECT_EQ(rpc.in_flight(), 0u);
  // Replies to the other copies, or repeats, change nothing.
  for (size_t i : {0, 1, 2}) {
    EXPECT_FALSE(rpc.OnReply(transport.sent[i].msg_id, Reply(3)));
  }
  EXPECT_FALSE(rpc.OnReply(999, Reply(4)));
  EXPECT_EQ(got.size(), 1u);
  // Nothing more is sent or given up.
  EXPECT_EQ(rpc.RunTimers(t0 + milliseconds(5000)), Clock::time_point::max());
  EXPECT_EQ(transport.sent.size(), 3u);
  EXPECT_EQ(rpc.gave_up(), 0u);
}

TEST(PeerRpcTest, GivesUpAtTheDeadlineWithNullptr) {
  FakeTransport transport;
  PeerRpc rpc(&transport);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  int nulls = 0, replies = 0;
  rpc.Call("n3", std::nullopt, Request(1), Timestamp(), Options(30, 1000, 100), t0,
           [&](const PeerReply* reply) { (reply == nullptr ? nulls : replies)++; });
  rpc.RunTimers(t0 + milliseconds(30));  // one resend
  rpc.RunTimers(t0 + milliseconds(99));
  EXPECT_EQ(nulls, 0);
  // Resent at 30 and 90; the next resend (210) is past the deadline, which
  // is what comes next.
  const auto next = rpc.RunTimers(t0 + milliseconds(99));
  EXPECT_LE(next, t0 + milliseconds(100));
  rpc.RunTimers(t0 + milliseconds(100));
  EXPECT_EQ(nulls, 1);
  EXPECT_EQ(rpc.gave_up(), 1u);
  EXPECT_EQ(rpc.in_flight(), 0u);
  const size_t sends = transport.sent.size();
  // A reply after giving up is not ours any more.
  EXPECT_FALSE(rpc.OnReply(transport.sent.back().msg_id, Reply(1)));
  rpc.RunTimers(t0 + milliseconds(10000));
  EXPECT_EQ(nulls, 1);
  EXPECT_EQ(replies, 0);
  EXPECT_EQ(transport.sent.size(), sends);
}

TEST(PeerRpcTest, CallbacksMayStartNewCalls) {
  FakeTransport transport;
  PeerRpc rpc(&transport);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  int finished = 0;
  // A chain: each reply starts the next call; a give-up starts one too.
  std::function<void(int)> start = [&](int left) {
    rpc.Call("n2", std::nullopt, Request(static_cast<uint64_t>(left)), Timestamp(),
             Options(10, 10, 50), t0, [&, left](const PeerReply* reply) {
               ++finished;
               if (left > 0) start(left - 1);
               (void)reply;
             });
  };
  start(3);
  for (int i = 0; i < 3; ++i) {
    const uint64_t id = transport.sent.back().msg_id;
    EXPECT_TRUE(rpc.OnReply(id, Reply(id)));
    EXPECT_EQ(rpc.in_flight(), 1u);
  }
  EXPECT_EQ(transport.sent.back().tag, 0u);
  // The last call gives up; its callback runs inside RunTimers.
  rpc.RunTimers(t0 + milliseconds(50));
  EXPECT_EQ(finished, 4);
  EXPECT_EQ(rpc.in_flight(), 0u);

  // A callback run by RunTimers (give-up) that starts calls which are due
  // at once must not break the timer loop.
  int chained = 0;
  rpc.Call("n2", std::nullopt, Request(10), Timestamp(), Options(10, 10, 10), t0,
           [&](const PeerReply*) {
             ++chained;
             rpc.Call("n2", std::nullopt, Request(11), Timestamp(), Options(1, 1, 1), t0,
                      [&](const PeerReply* r) {
                        EXPECT_EQ(r, nullptr);
                        ++chained;
                      });
           });
  rpc.RunTimers(t0 + milliseconds(10));
  rpc.RunTimers(t0 + milliseconds(11));
  EXPECT_EQ(chained, 2);
  EXPECT_EQ(rpc.in_flight(), 0u);
}

TEST(PeerRpcTest, ManyConcurrentCallsCompleteIndependently) {
  FakeTransport transport;
  PeerRpc rpc(&transport);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  std::vector<int> done(10, 0);
  for (int i = 0; i < 10; ++i) {
    rpc.Call(std::string("n").append(std::to_string(i % 3)), std::nullopt,
             Request(static_cast<uint64_t>(i)), Timestamp(), Options(10, 20, 1000), t0,
             [&done, i](const PeerReply* r) { done[i] += r != nullptr; });
  }
  rpc.RunTimers(t0 + milliseconds(10));
  ASSERT_EQ(transport.sent.size(), 20u);
  // Answer the odd calls' first copies and the even calls' resends.
  for (int i = 0; i < 10; ++i) {
    const uint64_t id = transport.sent[(i % 2 ? 0 : 10) + i].msg_id;
    EXPECT_TRUE(rpc.OnReply(id, Reply(id)));
  }
  EXPECT_EQ(done, std::vector<int>(10, 1));
  EXPECT_EQ(rpc.in_flight(), 0u);
}

}  // namespace peer_rpc_test
}  // namespace strata::cluster
