// LeaseTable's expiry: renewed leases live on, ended ones leave nothing
// behind, and the expiry queue's rebuild keeps every live lease.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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

}  // namespace
}  // namespace strata::service
