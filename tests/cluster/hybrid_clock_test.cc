// HybridLogicalClock: the rules of a hybrid logical clock, with a fake wall
// clock so every case is exact.
#include "cluster/hybrid_clock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

namespace strata::cluster {
namespace {

using HLC = HybridLogicalClock;

// A wall clock the test moves by hand.
struct FakeClock {
  std::atomic<uint64_t> ms{1'000'000};
  HLC::PhysicalClock Fn() {
    return [this] { return ms.load(); };
  }
};

Timestamp NextOrFail(HLC& clock) {
  Result<Timestamp> next = clock.Next();
  EXPECT_TRUE(next.ok()) << next.status().message();
  return next.ok() ? *next : Timestamp();
}

TEST(HybridLogicalClockTest, FollowsTheWallClock) {
  FakeClock wall;
  HLC clock(wall.Fn());
  EXPECT_EQ(NextOrFail(clock), HLC::Make(1'000'000, 0));
  wall.ms = 1'000'250;
  EXPECT_EQ(NextOrFail(clock), HLC::Make(1'000'250, 0));
}

TEST(HybridLogicalClockTest, CountsWithinOneMillisecond) {
  FakeClock wall;
  HLC clock(wall.Fn());
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(NextOrFail(clock), HLC::Make(1'000'000, i));
}

TEST(HybridLogicalClockTest, NeverGoesBackWhenTheWallClockDoes) {
  FakeClock wall;
  HLC clock(wall.Fn());
  const Timestamp before = NextOrFail(clock);
  wall.ms = 999'000;  // NTP stepped the clock back a second
  const Timestamp after = NextOrFail(clock);
  EXPECT_GT(after, before);
  EXPECT_EQ(HLC::PhysicalMillis(after), 1'000'000u);
}

TEST(HybridLogicalClockTest, AReceivedTimestampMovesTheClockPastIt) {
  FakeClock wall;
  HLC clock(wall.Fn());
  const Timestamp remote = HLC::Make(1'000'100, 7);  // a sender 100 ms ahead
  ASSERT_TRUE(clock.Update(remote).ok());
  const Timestamp next = NextOrFail(clock);
  EXPECT_GT(next, remote);  // causality: the receiver timestamps after the sender
  EXPECT_EQ(next, HLC::Make(1'000'100, 8));
  wall.ms = 1'000'200;  // once the wall clock passes it, physical time leads again
  EXPECT_EQ(NextOrFail(clock), HLC::Make(1'000'200, 0));
}

TEST(HybridLogicalClockTest, RefusesARemoteClockTooFarAhead) {
  FakeClock wall;
  HLC clock(wall.Fn(), {.max_offset = std::chrono::milliseconds(500), .node_index = std::nullopt});
  Status refused = clock.Update(HLC::Make(1'000'501, 0));
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("501 ms ahead"), std::string::npos) << refused.message();
  EXPECT_EQ(NextOrFail(clock), HLC::Make(1'000'000, 0));    // the clock did not move
  EXPECT_TRUE(clock.Update(HLC::Make(1'000'500, 0)).ok());  // at the bound is fine
}

TEST(HybridLogicalClockTest, TheLogicalCounterCarriesIntoThePhysicalPart) {
  FakeClock wall;
  HLC clock(wall.Fn());
  clock.Observe(HLC::Make(1'000'000, (uint64_t{1} << HLC::kLogicalBits) - 1));
  EXPECT_EQ(NextOrFail(clock), HLC::Make(1'000'001, 0));
}

TEST(HybridLogicalClockTest, RunsOutAtTheLastTimestamp) {
  FakeClock wall;
  HLC clock(wall.Fn());
  clock.Observe(Timestamp::Max());
  EXPECT_EQ(clock.Next().status().code(), StatusCode::kUnavailable);
}

TEST(HybridLogicalClockTest, ConcurrentCallersGetDistinctTimestamps) {
  FakeClock wall;
  HLC clock(wall.Fn());
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::vector<uint64_t>> issued(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (i % 1000 == 0) wall.ms += 1;
        Result<Timestamp> next = clock.Next();
        if (next.ok()) issued[t].push_back(next->value());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<uint64_t> all;
  for (const auto& per_thread : issued) {
    EXPECT_TRUE(std::is_sorted(per_thread.begin(), per_thread.end()));
    all.insert(per_thread.begin(), per_thread.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads} * kEach);
}

TEST(HybridLogicalClockTest, NodesInAClusterNeverHandOutTheSameTimestamp) {
  FakeClock wall;
  HLC n0(wall.Fn(), {.max_offset = std::chrono::milliseconds(500), .node_index = 0});
  HLC n3(wall.Fn(), {.max_offset = std::chrono::milliseconds(500), .node_index = 3});
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    Timestamp a = *n0.Next(), b = *n3.Next();
    EXPECT_EQ(a.value() % HLC::kMaxNodes, 0u);
    EXPECT_EQ(b.value() % HLC::kMaxNodes, 3u);
    EXPECT_TRUE(seen.insert(a.value()).second);
    EXPECT_TRUE(seen.insert(b.value()).second);
    if (i % 7 == 0) n0.Observe(b);  // seeing the other's clock keeps them apart too
  }
}

}  // namespace
}  // namespace strata::cluster
