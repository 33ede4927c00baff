// KvService: etcd's key-value rules, one behaviour a test, each checked
// against what etcd 3.4 answers (the differential test compares the two
// servers end to end; these pin the rules down at the service layer).
#include "service/kv_service.h"

#include <gtest/gtest.h>

#include "tests/service/service_test_support.h"

namespace strata::service {
namespace {

using testing::Cmp;
using testing::DeleteOp;
using testing::GetOp;
using testing::MemoryKv;
using testing::PutOp;

TEST(KvServiceTest, EmptyStoreIsAtRevisionOneAndFirstWriteIsTwo) {
  MemoryKv s;
  auto r = s.Get("a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().header.revision, 1);
  EXPECT_EQ(r.value().count, 0);
  auto p = s.Put("a", "1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().header.revision, 2);
}

TEST(KvServiceTest, PerKeyFieldsFollowEtcd) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("k", "v1").ok());     // rev 2
  ASSERT_TRUE(s.Put("x", "other").ok());  // rev 3
  ASSERT_TRUE(s.Put("k", "v2").ok());     // rev 4
  auto r = s.Get("k");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().kvs.size(), 1u);
  const auto& kv = r.value().kvs[0];
  EXPECT_EQ(kv.create_revision, 2);
  EXPECT_EQ(kv.mod_revision, 4);
  EXPECT_EQ(kv.version, 2);
  EXPECT_EQ(kv.value, "v2");
  EXPECT_EQ(r.value().header.revision, 4);
  // A delete resets the version; the next put creates the key anew.
  ASSERT_TRUE(s.Delete("k").ok());     // rev 5
  ASSERT_TRUE(s.Put("k", "v3").ok());  // rev 6
  r = s.Get("k");
  ASSERT_EQ(r.value().kvs.size(), 1u);
  EXPECT_EQ(r.value().kvs[0].create_revision, 6);
  EXPECT_EQ(r.value().kvs[0].version, 1);
  // The past stays readable.
  r = s.Get("k", "", 4);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().kvs.size(), 1u);
  EXPECT_EQ(r.value().kvs[0].value, "v2");
  EXPECT_EQ(r.value().header.revision, 6) << "the header is the current revision";
  r = s.Get("k", "", 5);
  EXPECT_EQ(r.value().kvs.size(), 0u);
}

TEST(KvServiceTest, RevisionErrors) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("a", "1").ok());
  auto r = s.Get("a", "", 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfRange);
  ASSERT_TRUE(s.Put("a", "2").ok());
  ASSERT_TRUE(s.Compact(3).ok());
  r = s.Get("a", "", 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "etcdserver: mvcc: required revision has been compacted");
  EXPECT_TRUE(s.Get("a", "", 3).ok()) << "the compaction revision itself stays readable";
  auto c = s.Compact(3);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "etcdserver: mvcc: required revision has been compacted");
  c = s.Compact(10);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "etcdserver: mvcc: required revision is a future revision");
}

TEST(KvServiceTest, CompactionKeepsPerVersionFields) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("k", "1").ok());  // 2
  ASSERT_TRUE(s.Put("k", "2").ok());  // 3
  ASSERT_TRUE(s.Put("k", "3").ok());  // 4
  ASSERT_TRUE(s.Compact(4).ok());
  auto r = s.Get("k");
  ASSERT_EQ(r.value().kvs.size(), 1u);
  EXPECT_EQ(r.value().kvs[0].create_revision, 2);
  EXPECT_EQ(r.value().kvs[0].version, 3);
  ASSERT_TRUE(s.Put("k", "4").ok());
  r = s.Get("k");
  EXPECT_EQ(r.value().kvs[0].version, 4) << "versions do not restart after compaction";
}

TEST(KvServiceTest, RangeSpansLimitsAndCounts) {
  MemoryKv s;
  for (const char* k : {"a", "b", "c", "d"}) ASSERT_TRUE(s.Put(k, k).ok());
  auto r = s.Get("b", "d");
  ASSERT_EQ(r.value().kvs.size(), 2u);
  EXPECT_EQ(r.value().kvs[0].key, "b");
  EXPECT_EQ(r.value().kvs[1].key, "c");
  r = s.Get("b", std::string(1, '\0'));
  EXPECT_EQ(r.value().kvs.size(), 3u) << "range_end \\0: every key from b on";
  r = s.Get("d", "b");
  EXPECT_EQ(r.value().kvs.size(), 0u) << "an inverted range is empty";
  RangeRequest req;
  req.span = {"a", "z"};
  req.limit = 2;
  auto limited = s.kv.Range(req);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited.value().kvs.size(), 2u);
  EXPECT_TRUE(limited.value().more);
  EXPECT_EQ(limited.value().count, 4) << "count is the whole range, not the page";
  req.limit = 0;
  req.count_only = true;
  auto counted = s.kv.Range(req);
  EXPECT_EQ(counted.value().kvs.size(), 0u);
  EXPECT_EQ(counted.value().count, 4);
  req.count_only = false;
  req.keys_only = true;
  auto keys = s.kv.Range(req);
  ASSERT_EQ(keys.value().kvs.size(), 4u);
  EXPECT_TRUE(keys.value().kvs[0].value.empty());
  RangeRequest empty;
  auto e = s.kv.Range(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "etcdserver: key is not provided");
}

TEST(KvServiceTest, RangeSortsAndFiltersLikeTheConcurrencyPackageNeeds) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("lock/c", "").ok());  // create 2
  ASSERT_TRUE(s.Put("lock/a", "").ok());  // create 3
  ASSERT_TRUE(s.Put("lock/b", "").ok());  // create 4
  RangeRequest req;
  req.span = {"lock/", "lock0"};
  req.sort_target = SortTarget::kCreate;
  req.sort_order = SortOrder::kAscend;
  req.limit = 1;
  auto first = s.kv.Range(req);
  ASSERT_EQ(first.value().kvs.size(), 1u);
  EXPECT_EQ(first.value().kvs[0].key, "lock/c");
  EXPECT_TRUE(first.value().more);
  req.sort_order = SortOrder::kDescend;
  auto last = s.kv.Range(req);
  EXPECT_EQ(last.value().kvs[0].key, "lock/b");
  req.sort_order = SortOrder::kNone;
  req.limit = 0;
  req.max_create_revision = 3;  // WithMaxCreateRev
  req.sort_target = SortTarget::kKey;
  auto older = s.kv.Range(req);
  ASSERT_EQ(older.value().kvs.size(), 2u);
  EXPECT_EQ(older.value().kvs[0].key, "lock/a");
  EXPECT_EQ(older.value().count, 3) << "count is taken before the filters, as etcd";
}

TEST(KvServiceTest, PutOptions) {
  MemoryKv s;
  auto missing = s.Put(PutRequest{"k", "", 0, false, true, false});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "etcdserver: key not found");
  ASSERT_TRUE(s.Put("k", "v").ok());
  auto kept = s.Put(PutRequest{"k", "", 0, true, true, false});
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(kept.value().prev_kv.has_value());
  EXPECT_EQ(kept.value().prev_kv->value, "v");
  EXPECT_EQ(s.Get("k").value().kvs[0].value, "v");
  EXPECT_EQ(s.Get("k").value().kvs[0].version, 2);
  auto both = s.Put(PutRequest{"k", "x", 0, false, true, false});
  EXPECT_EQ(both.error().message, "etcdserver: value is provided");
  auto lease = s.Put(PutRequest{"k", "x", 5, false, false, true});
  EXPECT_EQ(lease.error().message, "etcdserver: lease is provided");
  auto unknown = s.Put("k", "x", 12345);
  EXPECT_EQ(unknown.error().message, "etcdserver: requested lease not found");
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST(KvServiceTest, DeleteRangeCountsAndReturnsPrevious) {
  MemoryKv s;
  for (const char* k : {"a1", "a2", "b"}) ASSERT_TRUE(s.Put(k, k).ok());
  auto none = s.Delete("zzz");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none.value().deleted, 0);
  EXPECT_EQ(none.value().header.revision, 4) << "a delete of nothing takes no revision";
  auto d = s.Delete("a", "b", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().deleted, 2);
  ASSERT_EQ(d.value().prev_kvs.size(), 2u);
  EXPECT_EQ(d.value().header.revision, 5);
  EXPECT_EQ(s.Get("a", "b").value().count, 0);
  EXPECT_EQ(s.Get("b").value().count, 1);
}

TEST(KvServiceTest, TxnComparesAndBranches) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("k", "v").ok());  // rev 2
  TxnRequest t;
  t.compare = {Cmp("k", CompareTarget::kMod, CompareResult::kEqual, 2)};
  t.success = {PutOp("k", "w"), GetOp("k")};
  t.failure = {GetOp("k")};
  auto r = s.Txn(t);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().succeeded);
  EXPECT_EQ(r.value().header.revision, 3);
  ASSERT_EQ(r.value().responses.size(), 2u);
  const auto& read = std::get<RangeResponse>(r.value().responses[1].response);
  ASSERT_EQ(read.kvs.size(), 1u);
  EXPECT_EQ(read.kvs[0].value, "w") << "a read in a Txn sees the writes before it";
  EXPECT_EQ(read.kvs[0].mod_revision, 3);
  // The same Txn again: the compare fails now, the failure branch runs and
  // takes no revision.
  r = s.Txn(t);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value().succeeded);
  EXPECT_EQ(r.value().header.revision, 3);
  // A compare on a missing key compares with zeros; VALUE never holds.
  TxnRequest absent;
  absent.compare = {Cmp("nope", CompareTarget::kCreate, CompareResult::kEqual, 0)};
  EXPECT_TRUE(s.Txn(absent).value().succeeded);
  absent.compare = {Cmp("nope", CompareTarget::kValue, CompareResult::kEqual, 0, "")};
  EXPECT_FALSE(s.Txn(absent).value().succeeded);
  absent.compare = {Cmp("k", CompareTarget::kValue, CompareResult::kGreater, 0, "a")};
  EXPECT_TRUE(s.Txn(absent).value().succeeded);
}

TEST(KvServiceTest, TxnCompareOverARangeNeedsEveryKey) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("p/a", "1").ok());
  ASSERT_TRUE(s.Put("p/b", "2").ok());
  TxnRequest t;
  Compare c = Cmp("p/", CompareTarget::kVersion, CompareResult::kEqual, 1);
  c.span.range_end = "p0";
  t.compare = {c};
  EXPECT_TRUE(s.Txn(t).value().succeeded);
  ASSERT_TRUE(s.Put("p/b", "3").ok());
  EXPECT_FALSE(s.Txn(t).value().succeeded);
}

TEST(KvServiceTest, NestedTxnComparesSeeTheStateBeforeTheOuterTxn) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("k", "old").ok());
  auto inner = std::make_shared<TxnRequest>();
  inner->compare = {Cmp("k", CompareTarget::kValue, CompareResult::kEqual, 0, "old")};
  inner->success = {PutOp("inner", "yes")};
  inner->failure = {PutOp("inner", "no")};
  TxnRequest outer;
  outer.success = {PutOp("k", "new"), RequestOp{inner}};
  auto r = s.Txn(outer);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s.Get("inner").value().kvs[0].value, "yes");
  EXPECT_EQ(s.Get("inner").value().kvs[0].mod_revision, s.Get("k").value().kvs[0].mod_revision)
      << "every write of a Txn shares one revision";
  const auto& nested = std::get<std::shared_ptr<TxnResponse>>(r.value().responses[1].response);
  EXPECT_TRUE(nested->succeeded);
}

TEST(KvServiceTest, TxnLimitsAndDuplicateKeys) {
  KvServiceOptions options;
  options.max_txn_ops = 2;
  MemoryKv s(options);
  TxnRequest t;
  t.success = {PutOp("a", "1"), PutOp("b", "1"), PutOp("c", "1")};
  auto r = s.Txn(t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "etcdserver: too many operations in txn request");
  t.success = {PutOp("a", "1"), PutOp("a", "2")};
  r = s.Txn(t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "etcdserver: duplicate key given in txn request");
  t.success = {DeleteOp("a", "c"), PutOp("b", "2")};
  EXPECT_EQ(s.Txn(t).error().message, "etcdserver: duplicate key given in txn request");
  t.success = {DeleteOp("a", "c"), DeleteOp("b")};
  EXPECT_TRUE(s.Txn(t).ok()) << "overlapping deletes are allowed";
  // The two branches of a nested Txn may write the same key: only one runs.
  auto inner = std::make_shared<TxnRequest>();
  inner->success = {PutOp("x", "1")};
  inner->failure = {PutOp("x", "2")};
  t.success = {RequestOp{inner}};
  EXPECT_TRUE(s.Txn(t).ok());
  MemoryKv roomy;
  t.success = {RequestOp{inner}, PutOp("x", "3")};
  EXPECT_EQ(roomy.Txn(t).error().message, "etcdserver: duplicate key given in txn request");
  // Nested branches count against what the outer one left (etcd's rule).
  EXPECT_EQ(s.Txn(t).error().message, "etcdserver: too many operations in txn request");
  TxnRequest empty_key;
  empty_key.compare = {Cmp("", CompareTarget::kVersion, CompareResult::kEqual, 0)};
  EXPECT_EQ(s.Txn(empty_key).error().message, "etcdserver: key is not provided");
}

TEST(KvServiceTest, TxnRangeAtAFutureRevisionFailsTheWholeTxn) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("a", "1").ok());
  TxnRequest t;
  RangeRequest future;
  future.span = {"a", ""};
  future.revision = 100;
  t.success = {PutOp("b", "1"), RequestOp{future}};
  auto r = s.Txn(t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(s.Get("b").value().count, 0) << "nothing of a refused Txn is applied";
}

TEST(KvServiceTest, EventsCarryEveryChangeOfARevisionWithPrevious) {
  MemoryKv s;
  ASSERT_TRUE(s.Put("a", "1").ok());
  TxnRequest t;
  t.success = {PutOp("a", "2"), PutOp("b", "1")};
  ASSERT_TRUE(s.Txn(t).ok());
  ASSERT_TRUE(s.Delete("a", "c").ok());
  ASSERT_EQ(s.events.size(), 5u);
  EXPECT_EQ(s.events[1].revision, 3);
  EXPECT_EQ(s.events[2].revision, 3);
  ASSERT_TRUE(s.events[1].event.prev_kv.has_value());
  EXPECT_EQ(s.events[1].event.prev_kv->value, "1");
  EXPECT_EQ(s.events[3].event.type, Event::Type::kDelete);
  EXPECT_EQ(s.events[3].event.kv.mod_revision, 4);
  EXPECT_EQ(s.events[3].revision, 4);
}

TEST(KvServiceTest, LeasesAttachAndRevokeDeletesInOneRevision) {
  MemoryKv s;
  auto g = s.Grant(0, 60);
  ASSERT_TRUE(g.ok());
  const int64_t id = g.value().id;
  EXPECT_GT(id, 0);
  ASSERT_TRUE(s.Put("a", "1", id).ok());
  ASSERT_TRUE(s.Put("b", "1", id).ok());
  ASSERT_TRUE(s.Put("c", "1").ok());
  auto ttl = s.leases.TimeToLive(id, true);
  EXPECT_EQ(ttl.granted_ttl, 60);
  EXPECT_EQ(ttl.keys, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(s.Put("b", "2").ok());  // moves b off the lease
  ttl = s.leases.TimeToLive(id, true);
  EXPECT_EQ(ttl.keys, (std::vector<std::string>{"a"}));
  auto revoked = s.Revoke(id);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(s.Get("a").value().count, 0);
  EXPECT_EQ(s.Get("b").value().count, 1);
  EXPECT_EQ(s.leases.TimeToLive(id, false).ttl, -1);
  EXPECT_EQ(s.Revoke(id).error().message, "etcdserver: requested lease not found");
  EXPECT_EQ(s.Grant(5, 1).value().ttl, 2) << "TTLs below etcd's minimum are raised to it";
  EXPECT_EQ(s.Grant(5, 10).error().message, "etcdserver: lease already exists");
  EXPECT_EQ(s.Grant(6, 9'000'000'001).error().message, "etcdserver: too large lease TTL");
}

TEST(KvServiceTest, ExpiredLeaseDeletesItsKeys) {
  MemoryKv s;
  auto g = s.Grant(0, 2);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(s.Put("short", "lived", g.value().id).ok());
  for (int i = 0; i < 100 && s.Get("short").value().count != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(s.Get("short").value().count, 0) << "the key outlived its lease";
}

}  // namespace
}  // namespace strata::service

namespace strata::service {
namespace {

TEST(KvServiceTest, APutThenADeleteInOneTxnReportsTheKeyBeforeTheTxnAsPrevious) {
  testing::MemoryKv s;
  TxnRequest t;
  // A delete to the end of the keyspace does not count as a duplicate of
  // the put in etcd's check, so both run at one revision.
  DeleteRangeRequest to_end;
  to_end.span = {"a", std::string(1, '\0')};
  to_end.prev_kv = true;
  t.success = {testing::PutOp("a", "new"), RequestOp{to_end}};
  auto r = s.Txn(t);
  ASSERT_TRUE(r.ok());
  const auto& d = std::get<DeleteRangeResponse>(r.value().responses[1].response);
  ASSERT_EQ(d.prev_kvs.size(), 1u) << "the delete itself sees the Txn's put";
  EXPECT_EQ(d.prev_kvs[0].value, "new");
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_FALSE(s.events[1].event.prev_kv.has_value())
      << "a watcher's prev_kv is the key at the revision before, as etcd's";
  EXPECT_EQ(s.Get("a").value().count, 0);
}

}  // namespace
}  // namespace strata::service

namespace strata::service {
namespace {

TEST(KvServiceTest, LiveKeysFollowEveryWriteAndAreRecountedByANewService) {
  testing::MemoryKv s;
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(s.Put(k, "1").ok());
  ASSERT_TRUE(s.Put("a", "2").ok());
  EXPECT_EQ(s.kv.live_keys(), 3);
  ASSERT_TRUE(s.Delete("b").ok());
  TxnRequest t;
  t.success = {testing::PutOp("d", "1"), testing::DeleteOp("a"), testing::DeleteOp("zz")};
  ASSERT_TRUE(s.Txn(t).ok());
  EXPECT_EQ(s.kv.live_keys(), 2) << "c and d";
  auto lease = s.Grant(0, 60);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(s.Put("e", "1", lease.value().id).ok());
  ASSERT_TRUE(s.Revoke(lease.value().id).ok());
  EXPECT_EQ(s.kv.live_keys(), 2) << "the revocation deleted e";
  KvService again(&s.store, &s.pipeline, nullptr);
  EXPECT_EQ(again.live_keys(), 2);
}

}  // namespace
}  // namespace strata::service
