// ReplicaLeases: leases as replicated state (which exist, their TTLs and
// keys, told to an observer as they change), and the leader queries' bytes
// on the peer link: every field back, anything cut or foreign refused.
#include "service/replica_leases.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace strata::service {
namespace {

TEST(ReplicaLeasesTest, GrantsKeysAndEndsAsKvServiceMovesThem) {
  ReplicaLeases leases;
  std::vector<std::pair<int64_t, int64_t>> told;
  leases.set_observer([&](int64_t id, int64_t ttl) { told.emplace_back(id, ttl); });
  EXPECT_TRUE(leases.Grant(5, 10));
  EXPECT_FALSE(leases.Grant(5, 20)) << "granted once";
  EXPECT_TRUE(leases.Grant(-3, 2)) << "negative ids are etcd's too";
  leases.Move("a", 0, 5);
  leases.Move("b", 0, 5);
  leases.Move("a", 5, -3);  // re-put under another lease
  leases.Move("c", 0, 99);  // no such lease: nothing
  EXPECT_EQ(leases.Keys(5), std::vector<std::string>{"b"});
  EXPECT_EQ(leases.Keys(-3), std::vector<std::string>{"a"});
  EXPECT_EQ(leases.Ids(), (std::vector<int64_t>{-3, 5}));
  EXPECT_EQ(leases.End(5), std::optional<std::vector<std::string>>({"b"}));
  EXPECT_EQ(leases.End(5), std::nullopt);
  EXPECT_EQ(told, (std::vector<std::pair<int64_t, int64_t>>{{5, 10}, {-3, 2}, {5, 0}}));
  // A restore replaces everything, telling nobody.
  leases.Load({{7, 30}});
  EXPECT_EQ(leases.Granted(), (std::vector<std::pair<int64_t, int64_t>>{{7, 30}}));
  EXPECT_TRUE(leases.Keys(7).empty());
  EXPECT_EQ(told.size(), 3u);
}

TEST(ReplicaLeasesTest, LeaderQueriesAndAnswersRoundTripAndCutsAreRefused) {
  for (const LeaseQuery& q : {LeaseQuery{LeaseQuery::Kind::kRenewal, 42, false},
                              LeaseQuery{LeaseQuery::Kind::kTimeToLive, -7, true}}) {
    const std::string bytes = EncodeLeaseQuery(q);
    auto back = DecodeLeaseQuery(bytes);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->kind, q.kind);
    EXPECT_EQ(back->id, q.id);
    EXPECT_EQ(back->keys, q.keys);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_FALSE(DecodeLeaseQuery(bytes.substr(0, cut)).has_value()) << cut;
    }
    EXPECT_FALSE(DecodeLeaseQuery(bytes + "x").has_value());
  }
  EXPECT_FALSE(DecodeLeaseQuery("W" + EncodeLeaseQuery({}).substr(1)).has_value())
      << "a write is not a query";

  LeaseTimeToLiveResult answer;
  answer.id = 9;
  answer.ttl = -1;
  answer.granted_ttl = 60;
  answer.keys = {"a", std::string("\0b", 2)};
  const std::string bytes = EncodeLeaseAnswer(answer);
  auto back = DecodeLeaseAnswer(bytes, 9);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->ttl, -1);
  EXPECT_EQ(back->granted_ttl, 60);
  EXPECT_EQ(back->keys, answer.keys);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeLeaseAnswer(bytes.substr(0, cut), 9).has_value()) << cut;
  }
}

}  // namespace
}  // namespace strata::service
