// ResolvedFrontier, message by message through a capturing transport: one
// round of probes serves every wait at or below what the shards answered;
// a round that falls short is followed by another; what a round learned
// answers later waits at once; an unreachable shard is not waited for (and
// is asked again one probe at a time); a wait gives up after its timeout.
#include "cluster/resolved_frontier.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/cluster/capturing_transport.h"

namespace strata::cluster {
namespace resolved_frontier_test {

using std::chrono::milliseconds;

class ResolvedFrontierTest : public ::testing::Test {
 protected:
  ResolvedFrontierTest()
      : map_(*ShardMap::OnePerNode({"n0", "n1", "n2"})),
        peers_("n0", {"n0", "n1", "n2"}, &map_, &clock_, &transport_, &timers_, milliseconds(500)) {
    timers_.SetNow(t0_);
  }

  // The probes sent since the last call, by destination.
  std::map<std::string, uint64_t> Probes() {
    std::map<std::string, uint64_t> out;
    for (const auto& sent : transport_.sent) {
      const auto* probe = std::get_if<ShardWatch>(&sent.request);
      EXPECT_NE(probe, nullptr);
      if (probe == nullptr) continue;
      EXPECT_TRUE(probe->range.end && probe->range.end->empty()) << "a probe reads no range";
      out[sent.dest] = sent.msg_id;
    }
    transport_.sent.clear();
    return out;
  }
  void Answer(uint64_t id, uint64_t resolved) {
    EXPECT_TRUE(peers_.OnReply(id, ShardWatchReply{{}, Timestamp(resolved), 0, {}}));
  }
  void RunFor(milliseconds d) {
    now_ += d;
    timers_.RunDue(t0_ + now_);
    peers_.RunTimers(t0_ + now_);
  }

  const Timers::Clock::time_point t0_ = Timers::Clock::time_point() + std::chrono::hours(1);
  milliseconds now_{0};
  ShardMap map_;
  HybridLogicalClock clock_;
  Timers timers_;
  CapturingTransport transport_;
  Peers peers_;
};

TEST_F(ResolvedFrontierTest, OneRoundServesEveryWaitItCoversAndAShortOneIsFollowed) {
  ResolvedFrontier frontier(&peers_, &timers_);
  std::vector<Status> done;
  for (int i = 0; i < 10; ++i) {
    frontier.WaitFor(Timestamp(100), [&](Status s) { done.push_back(s); });
  }
  auto first = Probes();
  ASSERT_EQ(first.size(), 3u) << "ten waits, one round";
  Answer(first["n0"], 150);
  Answer(first["n1"], 150);
  Answer(first["n2"], 90);  // a prepare still pending below 100
  EXPECT_TRUE(done.empty());
  EXPECT_TRUE(Probes().empty()) << "the next round waits for its pause";
  RunFor(milliseconds(1));
  auto second = Probes();
  ASSERT_EQ(second.size(), 3u);
  for (const auto& [dest, id] : second) Answer(id, 120);
  ASSERT_EQ(done.size(), 10u);
  for (const Status& s : done) EXPECT_TRUE(s.ok());
  // What the rounds learned answers a later wait at once.
  bool at_once = false;
  frontier.WaitFor(Timestamp(110), [&](Status s) { at_once = s.ok(); });
  EXPECT_TRUE(at_once);
  EXPECT_TRUE(Probes().empty());
  EXPECT_EQ(frontier.stats().rounds, 2u);
  EXPECT_EQ(frontier.stats().answered_known, 1u);
  EXPECT_EQ(frontier.known(), Timestamp(120));
}

TEST_F(ResolvedFrontierTest, AnUnreachableShardIsNotWaitedForUntilItAnswers) {
  ResolvedFrontier frontier(&peers_, &timers_);
  std::optional<Status> first_wait;
  frontier.WaitFor(Timestamp(100), [&](Status s) { first_wait = s; });
  auto probes = Probes();
  Answer(probes["n0"], 200);
  Answer(probes["n1"], 200);
  // n2 never answers: the call gives up and the round ends without it.
  for (int i = 0; i < 60 && !first_wait; ++i) RunFor(milliseconds(100));
  ASSERT_TRUE(first_wait.has_value());
  EXPECT_TRUE(first_wait->ok());
  EXPECT_EQ(frontier.stats().unreachable_shards, 1u);
  transport_.sent.clear();  // the resends of the given-up call
  // The next round asks n2 again but does not wait for it.
  std::optional<Status> second_wait;
  frontier.WaitFor(Timestamp(300), [&](Status s) { second_wait = s; });
  auto next = Probes();
  ASSERT_EQ(next.size(), 3u);
  Answer(next["n0"], 400);
  Answer(next["n1"], 400);
  ASSERT_TRUE(second_wait.has_value());
  EXPECT_TRUE(second_wait->ok());
  // Its answer makes it reachable again: it counts from then on.
  Answer(next["n2"], 350);
  EXPECT_EQ(frontier.stats().unreachable_shards, 0u);
  EXPECT_EQ(frontier.known(), Timestamp(350));
}

TEST_F(ResolvedFrontierTest, AWaitGivesUpAfterItsTimeout) {
  ResolvedFrontier frontier(&peers_, &timers_, {milliseconds(1), milliseconds(5)});
  std::optional<Status> wait;
  frontier.WaitFor(Timestamp(100), [&](Status s) { wait = s; });
  for (int i = 0; i < 20 && !wait; ++i) {
    for (const auto& [dest, id] : Probes()) Answer(id, 50);  // stuck below 100
    RunFor(milliseconds(1));
  }
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(wait->code(), StatusCode::kUnavailable);
  EXPECT_EQ(frontier.stats().timeouts, 1u);
}

}  // namespace resolved_frontier_test
}  // namespace strata::cluster
