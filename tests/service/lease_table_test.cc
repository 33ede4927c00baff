// LeaseTable's expiry: renewed leases live on, ended ones leave nothing
// behind, and the expiry queue's rebuild keeps every live lease.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "service/lease_rules.h"
#include "service_test_support.h"

namespace strata::service {
namespace {

using testing::MemoryKv;
using namespace std::chrono_literals;

bool WaitUntilGone(MemoryKv& s, const std::string& key, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (s.Get(key).value().count == 0) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(LeaseTableTest, AKeptAliveLeaseOutlivesItsTtlAndExpiresOnceLeftAlone) {
  MemoryKv s;
  const int64_t kept = s.Grant(0, 2).value().id;
  const int64_t left = s.Grant(0, 2).value().id;
  ASSERT_TRUE(s.Put("kept", "1", kept).ok());
  ASSERT_TRUE(s.Put("left", "1", left).ok());
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 3500ms) {
    ASSERT_EQ(s.leases.KeepAlive(kept), 2);
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(s.Get("left").value().count, 0) << "the lease nobody renewed expired";
  EXPECT_EQ(s.Get("kept").value().count, 1) << "renewals pushed the expiry back";
  EXPECT_FALSE(s.leases.KeepAlive(left).has_value());
  EXPECT_TRUE(WaitUntilGone(s, "kept", 4s)) << "once left alone, the renewed lease expires too";
  EXPECT_EQ(s.leases.size(), 0u);
}

TEST(LeaseTableTest, ManyEndedLeasesDoNotDelayOrLoseALiveOne) {
  MemoryKv s;
  // Revoked long leases leave entries in the expiry queue; enough of them
  // force its rebuild, which must keep the live leases (the one granted
  // before and the one granted after).
  const int64_t before = s.Grant(0, 2).value().id;
  ASSERT_TRUE(s.Put("before", "1", before).ok());
  for (int i = 0; i < 3000; ++i) {
    auto g = s.Grant(0, 3600);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(s.Revoke(g.value().id).ok());
  }
  const int64_t after = s.Grant(0, 2).value().id;
  ASSERT_TRUE(s.Put("after", "1", after).ok());
  EXPECT_TRUE(WaitUntilGone(s, "before", 5s));
  EXPECT_TRUE(WaitUntilGone(s, "after", 5s));
  EXPECT_EQ(s.leases.size(), 0u);
}

TEST(LeaseTableTest, GrantsFollowTheRulesAClusterGrantsBy) {
  MemoryKv s;
  // Any id but 0, negative ones too, as etcd's lessor takes them.
  auto negative = s.Grant(-5, 1);
  ASSERT_TRUE(negative.ok()) << negative.error().message;
  EXPECT_EQ(negative.value().id, -5);
  EXPECT_EQ(negative.value().ttl, 2) << "raised to the minimum";
  ASSERT_TRUE(s.Put("k", "1", -5).ok());
  ASSERT_TRUE(s.Revoke(-5).ok());
  EXPECT_EQ(s.Get("k").value().count, 0);
  auto too_long = s.Grant(0, 9'000'000'001);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().message, etcd_errors::LeaseTtlTooLarge().message);
  ASSERT_TRUE(s.Grant(7, 60).ok());
  auto twice = s.Grant(7, 60);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message, etcd_errors::LeaseExist().message);
}

TEST(LeaseRulesTest, TheBoundCountsWhatIsKeptAndChosenIdsArePositiveAndFree) {
  LeaseLimits limits;
  limits.max_leases = 2;
  EXPECT_FALSE(RoomForGrant(1, limits).has_value());
  ASSERT_TRUE(RoomForGrant(2, limits).has_value());
  EXPECT_EQ(RoomForGrant(2, limits)->message, etcd_errors::TooManyRequests().message);
  std::mt19937_64 random(1);
  std::set<int64_t> taken;
  for (int i = 0; i < 1000; ++i) {
    const int64_t id = ChooseLeaseId(&random, [&](int64_t c) { return taken.count(c) > 0; });
    EXPECT_GT(id, 0);
    EXPECT_TRUE(taken.insert(id).second);
  }
}

}  // namespace
}  // namespace strata::service
