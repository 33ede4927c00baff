// InteractiveTxns: strata.v1's transactions over the etcd model, one rule a
// test: read-your-writes, first committer wins, serializable read and
// phantom conflicts, read-only past snapshots, expiry, and that a commit is
// one etcd revision like any Txn.
#include "service/interactive_txn.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/service/service_test_support.h"

namespace strata::service {
namespace {

using testing::MemoryKv;

struct TxnWorld {
  explicit TxnWorld(InteractiveTxnOptions o = {}) : txns(&kv.kv, o) {}
  uint64_t Begin(TxnIsolation i = TxnIsolation::kSerializable, int64_t rev = 0) {
    auto b = txns.Begin(i, rev);
    EXPECT_TRUE(b.ok());
    return b.ok() ? b.value().id : 0;
  }
  Reply<int64_t> Commit(uint64_t id) {
    return testing::Sync<int64_t>([&](auto done) { txns.Commit(id, done); });
  }
  std::optional<std::string> Read(uint64_t id, const std::string& key) {
    auto r = txns.Get(id, key);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || !r.value().kv) return std::nullopt;
    return r.value().kv->value;
  }
  MemoryKv kv;
  InteractiveTxns txns;
};

TEST(InteractiveTxnTest, ReadsTheSnapshotAndItsOwnWritesAndCommitsAtOneRevision) {
  TxnWorld w;
  ASSERT_TRUE(w.kv.Put("a", "1").ok());
  // Snapshot isolation: b, written after the snapshot, is read but not
  // written, so it is no conflict (serializable would refuse, see below).
  const uint64_t t = w.Begin(TxnIsolation::kSnapshot);
  ASSERT_TRUE(w.kv.Put("b", "later").ok());  // after the snapshot: invisible to t
  EXPECT_EQ(w.Read(t, "a"), "1");
  EXPECT_EQ(w.Read(t, "b"), std::nullopt);
  ASSERT_TRUE(w.txns.Put(t, "a", "2").ok());
  ASSERT_TRUE(w.txns.Put(t, "c", "3").ok());
  EXPECT_EQ(w.Read(t, "a"), "2");
  auto range = w.txns.Range(t, {"a", "z"}, 0);
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range.value().kvs.size(), 2u) << "a and c (b is newer than the snapshot)";
  auto c = w.Commit(t);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value(), 4);
  auto a = w.kv.Get("a").value().kvs[0];
  EXPECT_EQ(a.value, "2");
  EXPECT_EQ(a.mod_revision, 4);
  EXPECT_EQ(a.version, 2);
  EXPECT_EQ(w.kv.Get("c").value().kvs[0].mod_revision, 4) << "one revision for the commit";
}

TEST(InteractiveTxnTest, ATransactionIsItsOwnersAlone) {
  TxnWorld w;
  auto begun = w.txns.Begin(TxnIsolation::kSerializable, 0, "alice");
  ASSERT_TRUE(begun.ok());
  const uint64_t t = begun.value().id;
  EXPECT_TRUE(w.txns.CheckOwner(t, "alice").ok());
  auto bob = w.txns.CheckOwner(t, "bob");
  ASSERT_FALSE(bob.ok());
  EXPECT_EQ(bob.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(bob.error().message,
            "strata: transaction " + std::to_string(t) + " belongs to another user");
  EXPECT_EQ(w.txns.CheckOwner(t + 1, "alice").error().code, ErrorCode::kNotFound);
}

// One node is every replica: a follower read reads the current revision,
// read-only; a min_read_revision ahead of it, a negative one, or one with
// a read revision too is refused.
TEST(InteractiveTxnTest, AFollowerReadOnOneNodeReadsTheCurrentRevisionReadOnly) {
  TxnWorld w;
  ASSERT_TRUE(w.kv.Put("a", "1").ok());
  ASSERT_TRUE(w.kv.Put("a", "2").ok());
  auto begun = w.txns.Begin(TxnIsolation::kSerializable, 0, "", FollowerRead{true, 2});
  ASSERT_TRUE(begun.ok()) << begun.error().message;
  EXPECT_EQ(begun.value().read_revision, 3);
  EXPECT_EQ(w.Read(begun.value().id, "a"), "2");
  EXPECT_EQ(w.txns.Put(begun.value().id, "a", "3").error().code, ErrorCode::kFailedPrecondition);

  auto ahead = w.txns.Begin(TxnIsolation::kSerializable, 0, "", FollowerRead{true, 4});
  ASSERT_FALSE(ahead.ok());
  EXPECT_EQ(ahead.error().message, "etcdserver: mvcc: required revision is a future revision");
  auto negative = w.txns.Begin(TxnIsolation::kSerializable, 0, "", FollowerRead{true, -1});
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalidArgument);
  auto both = w.txns.Begin(TxnIsolation::kSerializable, 2, "", FollowerRead{true, 0});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().code, ErrorCode::kInvalidArgument);
}

TEST(InteractiveTxnTest, FirstCommitterWinsUnderSnapshotIsolation) {
  TxnWorld w;
  ASSERT_TRUE(w.kv.Put("x", "0").ok());
  const uint64_t t1 = w.Begin(TxnIsolation::kSnapshot);
  const uint64_t t2 = w.Begin(TxnIsolation::kSnapshot);
  ASSERT_TRUE(w.txns.Put(t1, "x", "1").ok());
  ASSERT_TRUE(w.txns.Put(t2, "x", "2").ok());
  ASSERT_TRUE(w.Commit(t1).ok());
  auto lost = w.Commit(t2);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kAborted);
  EXPECT_EQ(lost.error().message, "strata: transaction conflict on key 'x'");
  EXPECT_EQ(w.kv.Get("x").value().kvs[0].value, "1");
  EXPECT_EQ(w.txns.Stats().conflicts, 1u);
}

TEST(InteractiveTxnTest, WriteSkewIsAllowedUnderSnapshotAndRefusedWhenSerializable) {
  for (TxnIsolation iso : {TxnIsolation::kSnapshot, TxnIsolation::kSerializable}) {
    TxnWorld w;
    ASSERT_TRUE(w.kv.Put("alice", "on").ok());
    ASSERT_TRUE(w.kv.Put("bob", "on").ok());
    const uint64_t t1 = w.Begin(iso);
    const uint64_t t2 = w.Begin(iso);
    // Each sees the other on call and goes off.
    EXPECT_EQ(w.Read(t1, "bob"), "on");
    EXPECT_EQ(w.Read(t2, "alice"), "on");
    ASSERT_TRUE(w.txns.Put(t1, "alice", "off").ok());
    ASSERT_TRUE(w.txns.Put(t2, "bob", "off").ok());
    ASSERT_TRUE(w.Commit(t1).ok());
    auto second = w.Commit(t2);
    if (iso == TxnIsolation::kSnapshot) {
      EXPECT_TRUE(second.ok()) << "snapshot isolation allows write skew";
    } else {
      ASSERT_FALSE(second.ok());
      EXPECT_EQ(second.error().message, "strata: transaction conflict on key 'alice'");
    }
  }
}

TEST(InteractiveTxnTest, SerializableSeesPhantomsInScannedRanges) {
  TxnWorld w;
  const uint64_t t = w.Begin();
  auto r = w.txns.Range(t, {"job/", "job0"}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().kvs.empty());
  ASSERT_TRUE(w.kv.Put("job/1", "new").ok());  // a phantom in the scanned range
  ASSERT_TRUE(w.txns.Put(t, "count", "0").ok());
  auto c = w.Commit(t);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "strata: transaction conflict on key 'job/1'");
}

TEST(InteractiveTxnTest, PastRevisionsAreReadOnlyAndChecked) {
  TxnWorld w;
  ASSERT_TRUE(w.kv.Put("k", "old").ok());  // 2
  ASSERT_TRUE(w.kv.Put("k", "new").ok());  // 3
  const uint64_t t = w.Begin(TxnIsolation::kSerializable, 2);
  EXPECT_EQ(w.Read(t, "k"), "old");
  EXPECT_EQ(w.txns.Put(t, "k", "x").error().code, ErrorCode::kFailedPrecondition);
  auto c = w.Commit(t);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.value(), 2) << "a read-only commit is at its snapshot";
  EXPECT_EQ(w.txns.Begin(TxnIsolation::kSerializable, 9).error().message,
            "etcdserver: mvcc: required revision is a future revision");
  ASSERT_TRUE(w.kv.Compact(3).ok());
  EXPECT_EQ(w.txns.Begin(TxnIsolation::kSerializable, 2).error().message,
            "etcdserver: mvcc: required revision has been compacted");
}

TEST(InteractiveTxnTest, EndedAndIdleTransactionsDoNotExist) {
  InteractiveTxnOptions o;
  o.idle_timeout = std::chrono::milliseconds(50);
  TxnWorld w(o);
  const uint64_t t = w.Begin();
  ASSERT_TRUE(w.txns.Abort(t).ok());
  EXPECT_EQ(w.txns.Get(t, "k").error().code, ErrorCode::kNotFound);
  const uint64_t idle = w.Begin();
  EXPECT_EQ(w.txns.Stats().active, 1u);
  EXPECT_EQ(w.txns.Stats().oldest_txn_id, idle) << "the holder of the oldest snapshot is named";
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(w.txns.Put(idle, "k", "v").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(w.txns.Stats().expired, 1u);
  EXPECT_EQ(w.txns.Stats().active, 0u);
}

TEST(InteractiveTxnTest, OpenTransactionsAreBounded) {
  InteractiveTxnOptions o;
  o.max_active = 2;
  TxnWorld w(o);
  w.Begin();
  w.Begin();
  EXPECT_EQ(w.txns.Begin(TxnIsolation::kSerializable, 0).error().code,
            ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace strata::service
