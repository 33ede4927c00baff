// PeerRpc over a fake Transport: resends with fresh msg_ids and backoff,
// completion by the first reply, late duplicates ignored, giving up at the
// deadline, and callbacks that start new calls.
#include "node/peer_rpc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace strata::node {
namespace {

using std::chrono::milliseconds;
using Clock = PeerRpc::Clock;

class FakeTransport final : public Transport {
 public:
  struct Sent {
    std::string dest, type, fields;
    uint64_t msg_id;
  };
  uint64_t Send(std::string_view dest, std::string_view type, std::string_view fields) override {
    sent.push_back(Sent{std::string(dest), std::string(type), std::string(fields), next_id});
    return next_id++;
  }
  void Reply(const ReplyAddress&, std::string_view, std::string_view) override { ++replies; }
  std::vector<Sent> sent;
  uint64_t next_id = 100;
  int replies = 0;
};

// A reply envelope (kept with its parser, which owns its storage).
struct ParsedReply {
  explicit ParsedReply(uint64_t in_reply_to, std::string_view type = "x_ok") {
    line = R"({"src":"n2","dest":"n1","body":{"type":")" + std::string(type) +
           R"(","in_reply_to":)" + std::to_string(in_reply_to) + R"(,"n":)" +
           std::to_string(in_reply_to) + "}}";
    protocol::ErrorReply error;
    EXPECT_EQ(parser.Parse(line, &envelope, &error), protocol::ParseOutcome::kOk) << error.text;
  }
  std::string line;
  protocol::EnvelopeParser parser;
  protocol::Envelope envelope;
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
  rpc.Call("n2", "shard_read", R"(,"ts":5)", Options(10, 40, 1000), t0,
           [&](const protocol::Envelope*) { ++calls; });
  ASSERT_EQ(transport.sent.size(), 1u);
  EXPECT_EQ(transport.sent[0].dest, "n2");
  EXPECT_EQ(transport.sent[0].type, "shard_read");
  EXPECT_EQ(transport.sent[0].fields, R"(,"ts":5)");
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
  // Every copy has its own msg_id, and the same content.
  for (size_t i = 1; i < transport.sent.size(); ++i) {
    EXPECT_NE(transport.sent[i].msg_id, transport.sent[i - 1].msg_id);
    EXPECT_EQ(transport.sent[i].fields, transport.sent[0].fields);
    EXPECT_EQ(transport.sent[i].dest, "n2");
  }
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(rpc.in_flight(), 1u);
}

TEST(PeerRpcTest, FirstReplyCompletesLaterCopiesAreIgnored) {
  FakeTransport transport;
  PeerRpc rpc(&transport);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  std::vector<std::string> got;
  rpc.Call("n2", "t", "", Options(10, 10, 1000), t0, [&](const protocol::Envelope* reply) {
    ASSERT_NE(reply, nullptr);
    got.push_back(std::string(reply->type));
  });
  rpc.RunTimers(t0 + milliseconds(10));
  rpc.RunTimers(t0 + milliseconds(20));
  ASSERT_EQ(transport.sent.size(), 3u);
  // A reply to the second copy completes the call.
  ParsedReply second(transport.sent[1].msg_id, "second");
  EXPECT_TRUE(rpc.OnReply(transport.sent[1].msg_id, second.envelope));
  EXPECT_EQ(got, std::vector<std::string>{"second"});
  EXPECT_EQ(rpc.in_flight(), 0u);
  // Replies to the other copies, or repeats, change nothing.
  for (size_t i : {0, 1, 2}) {
    ParsedReply late(transport.sent[i].msg_id);
    EXPECT_FALSE(rpc.OnReply(transport.sent[i].msg_id, late.envelope));
  }
  ParsedReply stranger(999);
  EXPECT_FALSE(rpc.OnReply(999, stranger.envelope));
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
  rpc.Call("n3", "t", "", Options(30, 1000, 100), t0,
           [&](const protocol::Envelope* reply) { (reply == nullptr ? nulls : replies)++; });
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
  ParsedReply late(transport.sent.back().msg_id);
  EXPECT_FALSE(rpc.OnReply(transport.sent.back().msg_id, late.envelope));
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
    rpc.Call("n2", std::string("step").append(std::to_string(left)), "", Options(10, 10, 50), t0,
             [&, left](const protocol::Envelope* reply) {
               ++finished;
               if (left > 0) start(left - 1);
               (void)reply;
             });
  };
  start(3);
  for (int i = 0; i < 3; ++i) {
    const uint64_t id = transport.sent.back().msg_id;
    ParsedReply reply(id);
    EXPECT_TRUE(rpc.OnReply(id, reply.envelope));
    EXPECT_EQ(rpc.in_flight(), 1u);
  }
  EXPECT_EQ(transport.sent.back().type, "step0");
  // The last call gives up; its callback runs inside RunTimers.
  rpc.RunTimers(t0 + milliseconds(50));
  EXPECT_EQ(finished, 4);
  EXPECT_EQ(rpc.in_flight(), 0u);

  // A callback run by RunTimers (give-up) that starts calls which are due
  // at once must not break the timer loop.
  int chained = 0;
  rpc.Call("n2", "a", "", Options(10, 10, 10), t0, [&](const protocol::Envelope*) {
    ++chained;
    rpc.Call("n2", "b", "", Options(1, 1, 1), t0, [&](const protocol::Envelope* r) {
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
    rpc.Call(std::string("n").append(std::to_string(i % 3)), "t", "", Options(10, 20, 1000), t0,
             [&done, i](const protocol::Envelope* r) { done[i] += r != nullptr; });
  }
  rpc.RunTimers(t0 + milliseconds(10));
  ASSERT_EQ(transport.sent.size(), 20u);
  // Answer the odd calls' first copies and the even calls' resends.
  for (int i = 0; i < 10; ++i) {
    const uint64_t id = transport.sent[(i % 2 ? 0 : 10) + i].msg_id;
    ParsedReply reply(id);
    EXPECT_TRUE(rpc.OnReply(id, reply.envelope));
  }
  EXPECT_EQ(done, std::vector<int>(10, 1));
  EXPECT_EQ(rpc.in_flight(), 0u);
}

}  // namespace
}  // namespace strata::node
