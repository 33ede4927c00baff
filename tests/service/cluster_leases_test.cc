// ClusterLeases over three in-process members: a lease granted on one
// member, keys put with it through others (their attachments written in
// the same commit), keep-alives and time-to-live answered by the lease's
// home wherever they are asked, expiry and revocation deleting every key
// still attached, on every shard, in one revision.
#include "service/cluster_leases.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "service/cluster_kv.h"
#include "tests/cluster/local_cluster.h"

namespace strata::service {
namespace cluster_leases_test {

class ClusterLeasesTest : public ::testing::Test {
 protected:
  ClusterLeasesTest() : cluster_(3) {
    for (int i = 0; i < 3; ++i) {
      kv_.push_back(std::make_unique<ClusterKv>(&cluster_.member(i).coordinator(),
                                                &cluster_.member(i).router(), ClusterKvOptions{}));
    }
    StartLeases(Options());
    for (int i = 0; i < 3; ++i) {
      serve_[i] = [this, i](const std::string& request, cluster::ShardServer::Respond respond) {
        leases_[i]->ServeForward(request, std::move(respond));
      };
    }
    cluster_.SetForwardHandlers(serve_);
  }

  static ClusterLeasesOptions Options() {
    ClusterLeasesOptions options;
    options.limits.min_ttl_seconds = 1;
    options.expiry_check = std::chrono::milliseconds(20);
    return options;
  }
  // New lease tables on every member, as after a restart: what they know
  // comes from the shards' records.
  void StartLeases(const ClusterLeasesOptions& options) {
    leases_.clear();
    for (int i = 0; i < 3; ++i) {
      leases_.push_back(std::make_unique<ClusterLeases>(&cluster_.member(i), options));
    }
  }
  // The first `n` positive ids whose lease is homed on member `home`.
  std::vector<int64_t> IdsHomedOn(int home, size_t n) {
    std::vector<int64_t> ids;
    for (int64_t id = 1; ids.size() < n; ++id) {
      const cluster::ShardMap& map = cluster_.member(0).map();
      if (map.ShardFor(ClusterLeases::RecordKey(id)).leaseholder() == "n" + std::to_string(home)) {
        ids.push_back(id);
      }
    }
    return ids;
  }

  template <typename T>
  Reply<T> Run(const std::function<void(std::function<void(Reply<T>)>)>& call,
               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::optional<Reply<T>> out;
    cluster_.SetNow();
    call([&](Reply<T> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(cluster_.RunUntil([&] { return out.has_value(); }, limit));
    return out ? std::move(*out) : Reply<T>(ServiceError{ErrorCode::kInternal, "no answer"});
  }
  int64_t Grant(int node, int64_t ttl, int64_t id = 0) {
    auto r = Run<LeaseGrantResult>([&](auto done) { leases_[node]->Grant(id, ttl, done); });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value().id : 0;
  }
  Reply<PutResponse> Put(int node, const std::string& key, int64_t lease) {
    PutRequest p;
    p.key = key;
    p.value = "v";
    p.lease = lease;
    return Run<PutResponse>([&](auto done) { kv_[node]->Put(p, done); });
  }
  std::vector<std::string> Keys(int node) {
    RangeRequest r;
    r.span = {"k", "l"};
    auto got = Run<RangeResponse>([&](auto done) { kv_[node]->Range(r, done); });
    std::vector<std::string> out;
    if (got.ok()) {
      for (const auto& kv : got.value().kvs) out.push_back(kv.key);
    }
    return out;
  }

  cluster::LocalCluster cluster_;
  std::vector<std::unique_ptr<ClusterKv>> kv_;
  std::vector<std::unique_ptr<ClusterLeases>> leases_;
  cluster::Member::ForwardHandler serve_[3];
};

TEST_F(ClusterLeasesTest, KeysPutWithALeaseGoWhenItExpiresUnlessKeptAlive) {
  const int64_t lease = Grant(0, 1);
  ASSERT_NE(lease, 0);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Put(i % 3, "k" + std::to_string(i), lease).ok());
  ASSERT_TRUE(Put(1, "kfree", 0).ok());
  auto ttl = Run<LeaseTimeToLiveResult>([&](auto d) { leases_[2]->TimeToLive(lease, true, d); });
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl.value().granted_ttl, 1);
  EXPECT_EQ(ttl.value().keys.size(), 6u);
  auto all = Run<std::vector<int64_t>>([&](auto d) { leases_[1]->Leases(d); });
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value(), std::vector<int64_t>{lease});

  // Kept alive from another member for longer than its TTL: still there.
  for (int i = 0; i < 6; ++i) {
    cluster_.RunUntil([] { return false; }, std::chrono::milliseconds(300));
    auto left = Run<int64_t>([&](auto d) { leases_[1]->KeepAlive(lease, d); });
    ASSERT_TRUE(left.ok());
    EXPECT_EQ(left.value(), 1);
  }
  EXPECT_EQ(Keys(2).size(), 7u);
  // Left alone, it expires: every key attached to it goes, on every shard.
  ASSERT_TRUE(cluster_.RunUntil([&] { return Keys(0).size() == 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(Keys(1), std::vector<std::string>{"kfree"});
  auto gone = Run<LeaseTimeToLiveResult>([&](auto d) { leases_[0]->TimeToLive(lease, false, d); });
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone.value().ttl, -1);
  auto renewed = Run<int64_t>([&](auto d) { leases_[2]->KeepAlive(lease, d); });
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed.value(), 0) << "etcd's answer for a lease that is gone";
}

TEST_F(ClusterLeasesTest, RevokeDeletesOnlyKeysThatStillNameTheLease) {
  const int64_t a = Grant(1, 60), b = Grant(2, 60);
  ASSERT_TRUE(Put(0, "k1", a).ok());
  ASSERT_TRUE(Put(0, "k2", a).ok());
  ASSERT_TRUE(Put(1, "k2", b).ok());  // moved to b
  ASSERT_TRUE(Put(2, "k3", a).ok());
  ASSERT_TRUE(Put(2, "k3", 0).ok());  // no lease any more
  auto ttl = Run<LeaseTimeToLiveResult>([&](auto d) { leases_[0]->TimeToLive(a, true, d); });
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl.value().keys, std::vector<std::string>{"k1"});
  auto revoked = Run<int64_t>([&](auto d) { leases_[0]->Revoke(a, d); });
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_EQ(Keys(1), (std::vector<std::string>{"k2", "k3"}));
  auto again = Run<int64_t>([&](auto d) { leases_[1]->Revoke(a, d); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, etcd_errors::LeaseNotFound().message);
  auto put = Put(2, "k4", a);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().message, etcd_errors::LeaseNotFound().message);
  auto dup = Run<LeaseGrantResult>([&](auto d) { leases_[0]->Grant(b, 5, d); });
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message, etcd_errors::LeaseExist().message);
}

TEST_F(ClusterLeasesTest, AGrantPastTheHomesBoundIsRefusedWhicheverMemberIsAsked) {
  ClusterLeasesOptions options = Options();
  options.limits.max_leases = 2;
  StartLeases(options);
  const std::vector<int64_t> ids = IdsHomedOn(0, 3);
  EXPECT_EQ(Grant(1, 60, ids[0]), ids[0]);
  EXPECT_EQ(Grant(2, 60, ids[1]), ids[1]);
  auto full = Run<LeaseGrantResult>([&](auto d) { leases_[1]->Grant(ids[2], 60, d); });
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message, etcd_errors::TooManyRequests().message);
  // Another member's home has room of its own.
  const int64_t elsewhere = IdsHomedOn(1, 1)[0];
  EXPECT_EQ(Grant(0, 60, elsewhere), elsewhere);
  // A revocation through any member makes room at once.
  auto revoked = Run<int64_t>([&](auto d) { leases_[2]->Revoke(ids[0], d); });
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_EQ(Grant(1, 60, ids[2]), ids[2]);
  // And the revoked id may be granted again, as etcd allows.
  auto again = Run<LeaseGrantResult>([&](auto d) { leases_[0]->Grant(ids[0], 60, d); });
  ASSERT_FALSE(again.ok()) << "the home is full again";
  ASSERT_TRUE(Run<int64_t>([&](auto d) { leases_[0]->Revoke(ids[1], d); }).ok());
  EXPECT_EQ(Grant(0, 60, ids[0]), ids[0]);
}

TEST_F(ClusterLeasesTest, NegativeIdsAreGrantedAsEtcdGrantsThem) {
  EXPECT_EQ(Grant(2, 60, -5), -5);
  auto ttl = Run<LeaseTimeToLiveResult>([&](auto d) { leases_[0]->TimeToLive(-5, false, d); });
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl.value().granted_ttl, 60);
  ASSERT_TRUE(Put(1, "k1", -5).ok());
  ASSERT_TRUE(Run<int64_t>([&](auto d) { leases_[1]->Revoke(-5, d); }).ok());
  EXPECT_TRUE(Keys(0).empty());
  auto too_long = Run<LeaseGrantResult>([&](auto d) { leases_[0]->Grant(0, 9'000'000'001, d); });
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().message, etcd_errors::LeaseTtlTooLarge().message);
}

TEST_F(ClusterLeasesTest, AHomeThatRestartsLearnsEveryLeaseItKeepsAPageAtATime) {
  const std::vector<int64_t> ids = IdsHomedOn(0, 8);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(Grant(static_cast<int>(i % 3), 1, ids[i]), ids[i]);
    ASSERT_TRUE(Put(static_cast<int>(i % 3), "k" + std::to_string(i), ids[i]).ok());
  }
  // Restarted before any expired, reading 3 records a look: all 8 are
  // found (the first pass reads page after page) and expire.
  ClusterLeasesOptions options = Options();
  options.discover_page = 3;
  StartLeases(options);
  EXPECT_EQ(leases_[0]->homed(), 0u);
  cluster_.RunUntil([] { return false; }, std::chrono::milliseconds(100));
  EXPECT_EQ(leases_[0]->homed(), 8u) << "known well before the first of them expires";
  EXPECT_EQ(Keys(1).size(), 8u);
  ASSERT_TRUE(cluster_.RunUntil([&] { return Keys(2).empty(); }, std::chrono::seconds(5)))
      << Keys(2).size() << " keys left";
  auto all = Run<std::vector<int64_t>>([&](auto d) { leases_[1]->Leases(d); });
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all.value().empty());
}

}  // namespace cluster_leases_test
}  // namespace strata::service
